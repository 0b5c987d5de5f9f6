"""Typed configuration of the channels battery, from ``TRANSOM_CHANNELS_*`` or given in code."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ChannelsConfig"]


class ChannelsConfig(BaseSettings):
    """Where published messages travel and how subscribers are protected from each other.

    Every field can come from the environment with the ``TRANSOM_CHANNELS_`` prefix
    (``TRANSOM_CHANNELS_URL=redis://localhost:6379/0``).

    Example:
        >>> ChannelsConfig(url="redis://localhost:6379/0").url
        'redis://localhost:6379/0'
    """

    model_config = SettingsConfigDict(
        env_prefix="TRANSOM_CHANNELS_", env_file=".env", extra="ignore", populate_by_name=True
    )

    url: str = Field(
        default="memory://",
        validation_alias=AliasChoices("TRANSOM_CHANNELS_URL", "CHANNELS_URL"),
        description="memory:// (one process) or redis://host:port/db (every process sharing it)",
    )
    key_prefix: str = Field(
        default="transom:channels",
        description="Prefixes Redis channel and stream names, so apps can share one server.",
    )
    queue_size: int = Field(
        default=256,
        ge=1,
        description="Messages a subscriber may have waiting; beyond that `overflow` decides.",
    )
    overflow: Literal["drop-oldest", "close"] = Field(
        default="drop-oldest",
        description="A slow subscriber loses its oldest waiting messages (counted in "
        "`dropped`), or is ended (WebSockets are closed with 1013, try again later).",
    )
    history: int = Field(
        default=100,
        ge=0,
        description="Messages kept per channel for replay (SSE Last-Event-ID, resubscribing "
        "after a Redis outage); 0 keeps none (Redis: plain pub/sub, no stream).",
    )
    history_ttl: int = Field(
        default=86_400, ge=1, description="Redis: seconds a quiet channel's history is kept."
    )
    socket_timeout: float = Field(
        default=2.0, gt=0, description="Redis: seconds a publish may take before it fails."
    )
    reconnect_delay: float = Field(
        default=0.1,
        gt=0,
        description="Redis: first wait before a subscriber reconnects; doubled up to 5 s.",
    )
