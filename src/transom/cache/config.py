"""Typed cache configuration, from ``TRANSOM_CACHE_*`` environment variables or given in code."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from transom.requests import Request

__all__ = ["CacheConfig", "Identity"]

#: ``async def identity(request) -> str | None``: who the request is, for ``vary_on_user``.
Identity = Callable[[Request], Awaitable[str | None]]


class CacheConfig(BaseSettings):
    """Where the cache lives and how it behaves.

    Every field can be set from the environment with the ``TRANSOM_CACHE_`` prefix
    (``TRANSOM_CACHE_URL=redis://localhost:6379/0``).

    URLs: ``memory://`` (the default: this process, bounded), ``dummy://`` (stores nothing),
    ``redis://`` / ``rediss://`` / ``unix://`` (one server), ``redis+sentinel://h1:26379,h2:26379/
    <service>/<db>`` and ``redis+cluster://h1:7000,h2:7000``.

    Example:
        >>> CacheConfig(url="redis://localhost:6379/1").url
        'redis://localhost:6379/1'
    """

    model_config = SettingsConfigDict(
        env_prefix="TRANSOM_CACHE_",
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
        arbitrary_types_allowed=True,
    )

    url: str = Field(
        default="memory://",
        validation_alias=AliasChoices("TRANSOM_CACHE_URL", "CACHE_URL"),
        description="Backend: memory://, dummy://, redis://, redis+sentinel://, redis+cluster://",
    )
    key_prefix: str = Field(
        default="transom", description="Prepended to every key, so apps can share one server."
    )
    version: int = Field(
        default=1, description="Part of every key: bump it to start from an empty cache."
    )
    default_ttl: float | None = Field(
        default=300.0, description="Seconds an entry lives when no ttl is given (None: forever)."
    )
    max_entries: int = Field(default=10_000, ge=1, description="memory://: entries kept (LRU).")
    max_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1, description="memory://: bytes of keys and values kept."
    )
    socket_timeout: float = Field(
        default=0.25, gt=0, description="Seconds a Redis command may take before it is a miss."
    )
    connect_timeout: float = Field(
        default=0.25, gt=0, description="Seconds to open a connection to Redis."
    )
    retry_interval: float = Field(
        default=1.0,
        ge=0,
        description="After a failure, seconds the server is left alone (reads miss at once) "
        "before it is tried again, so an outage costs no timeout per request.",
    )
    lock_timeout: float = Field(
        default=10.0,
        gt=0,
        description="get_or_set on Redis: seconds one process may compute a value while the "
        "others wait for it; after that another process computes it too.",
    )
    early_refresh_beta: float = Field(
        default=1.0,
        ge=0,
        description="get_or_set: how eagerly a value is recomputed before it expires "
        "(probabilistic early expiration; 0 turns it off).",
    )
    ignore_cookies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Cookie names (fnmatch patterns) that say nothing about who the user is "
        "(analytics); any other cookie makes a request private to @cached views.",
    )
    identity: Identity | None = Field(
        default=None,
        exclude=True,
        description="Who a request is, for @cached(vary_on_user=True); by default the auth "
        "battery's user when it is installed, else a digest of the request's credentials.",
    )

    @field_validator("ignore_cookies", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value
