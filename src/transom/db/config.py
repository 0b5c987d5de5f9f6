"""Typed database configuration, read from the environment (``DATABASE_URL``) or given in code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import AsyncAdaptedQueuePool, NullPool, QueuePool, StaticPool

__all__ = [
    "DEFAULT_DATABASE_URL",
    "DatabaseConfig",
    "async_url",
    "engine_kwargs",
    "is_memory_sqlite",
    "sync_url",
]

#: Used when nothing is configured: an SQLite file next to the project, zero setup.
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///db.sqlite3"

# Bare backend names map to the async driver Transom ships with, so users can paste the
# ``postgres://...`` URL their host gives them.
_ASYNC_DRIVERS: dict[str, str] = {
    "sqlite": "aiosqlite",
    "postgresql": "asyncpg",
    "postgres": "asyncpg",
    "mysql": "aiomysql",
    "mariadb": "aiomysql",
}
# Sync handlers and some CLI paths need a blocking driver for the same database.
_SYNC_DRIVERS: dict[str, str] = {
    "sqlite": "pysqlite",
    "postgresql": "psycopg",
    "mysql": "pymysql",
    "mariadb": "pymysql",
}
# asyncpg spells a few connection options differently from libpq/psycopg.
_ASYNCPG_TO_LIBPQ: dict[str, str] = {"ssl": "sslmode"}


def async_url(url: str | URL) -> URL:
    """Return ``url`` with an async driver, filling in Transom's default driver when none is given.

    Args:
        url: A database URL such as ``postgresql://user@host/db`` or ``sqlite:///app.db``.

    Returns:
        The URL with an explicit async driver (``postgresql+asyncpg://...``).
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgres":
        backend = "postgresql"
    driver = parsed.drivername.partition("+")[2]
    if not driver or driver in _SYNC_DRIVERS.values() or driver == "psycopg2":
        driver = _ASYNC_DRIVERS.get(backend, driver)
    parsed = parsed.set(drivername=f"{backend}+{driver}" if driver else backend)
    if backend in {"mysql", "mariadb"} and "charset" not in parsed.query:
        # Without utf8mb4 MySQL silently mangles 4-byte characters (emoji) in VARCHARs.
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return parsed


def sync_url(url: str | URL) -> URL:
    """Return the blocking-driver equivalent of ``url`` (used for sync handlers)."""
    parsed = async_url(url)
    backend = parsed.get_backend_name()
    parsed = parsed.set(drivername=f"{backend}+{_SYNC_DRIVERS.get(backend, '')}".rstrip("+"))
    if backend == "postgresql":
        query = {_ASYNCPG_TO_LIBPQ.get(k, k): v for k, v in parsed.query.items()}
        parsed = parsed.set(query=query)
    return parsed


class DatabaseConfig(BaseSettings):
    """How Transom connects to its databases.

    Every field can be set from the environment with the ``TRANSOM_DATABASE_`` prefix
    (``TRANSOM_DATABASE_POOL_SIZE=20``); the URL also reads the conventional ``DATABASE_URL``.

    Example:
        >>> DatabaseConfig(url="postgresql://app@localhost/app").async_url.drivername
        'postgresql+asyncpg'
    """

    # Field names stay usable in code (``DatabaseConfig(url=...)``); aliases are env var names.
    model_config = SettingsConfigDict(
        env_prefix="TRANSOM_DATABASE_",
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
    )

    url: str = Field(
        default=DEFAULT_DATABASE_URL,
        validation_alias=AliasChoices("TRANSOM_DATABASE_URL", "DATABASE_URL"),
        description="Primary database; writes (and reads, when there are no replicas) go here.",
    )
    replica_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias=AliasChoices("TRANSOM_DATABASE_REPLICA_URLS", "DATABASE_REPLICA_URLS"),
        description="Read replicas; reads are spread over them, writes always go to `url`.",
    )
    replica_retry: float = Field(
        default=5.0,
        gt=0,
        description="Seconds a replica that could not be reached is left out (its reads go to "
        "another replica or the primary) before it is tried again.",
    )
    echo: bool = Field(default=False, description="Log every SQL statement.")
    pool_size: int = Field(default=5, ge=1)
    max_overflow: int = Field(default=10, ge=0)
    pool_timeout: float = Field(
        default=10.0, gt=0, description="Seconds to wait for a free connection before a 503."
    )
    pool_recycle: int = Field(
        default=1800, description="Reconnect connections older than this many seconds (-1: never)."
    )
    pool_pre_ping: bool = Field(
        default=True,
        description="Test pooled connections before use, so the pool heals after a restart.",
    )
    pool_ping_idle: float = Field(
        default=1.0,
        description="Only test connections unused for longer than this many seconds "
        "(0: test on every checkout, a round trip per request).",
    )
    lazy_begin: bool = Field(
        default=True,
        description="PostgreSQL and SQLite: begin a request's transaction at its first write, "
        "so reads before it cost no BEGIN/COMMIT (READ COMMITTED semantics are unchanged) and, "
        "on SQLite, writers wait for each other instead of failing.",
    )
    connect_timeout: float = Field(
        default=5.0, gt=0, description="Seconds before giving up on opening a connection."
    )
    command_timeout: float = Field(
        default=30.0,
        ge=0,
        description="Seconds one statement may take, or the server stay silent, before the "
        "request answers 503 (0: no limit). Migrations are not limited.",
    )
    retry_after: int = Field(
        default=5,
        ge=0,
        description="`Retry-After` seconds sent with 503 when the database is down.",
    )
    sqlite_wal: bool = Field(
        default=True, description="Put file SQLite databases in WAL mode (readers don't block)."
    )
    sqlite_busy_timeout: float = Field(
        default=5.0,
        ge=0,
        description="SQLite: seconds a write waits for another one to finish before a 503.",
    )
    migrations_dir: Path = Field(
        default=Path("migrations"), description="Where `transom db makemigrations` writes files."
    )
    models: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Modules to import before migrations run, for models the app doesn't import.",
    )
    migrations_ignore: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["transom_*"],
        description=(
            "Table name patterns (fnmatch) that autogenerate leaves alone when no model maps "
            "them; `transom_*` tables are created by Transom's batteries themselves."
        ),
    )
    engine_options: dict[str, Any] = Field(
        default_factory=dict, description="Extra keyword arguments for `create_async_engine`."
    )

    @field_validator("replica_urls", "models", "migrations_ignore", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        # Environment variables are flat strings: accept "url1,url2" as well as a JSON list.
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def async_url(self) -> URL:
        """The primary URL with its async driver."""
        return async_url(self.url)

    @property
    def backend(self) -> str:
        """``sqlite``, ``postgresql``, ``mysql`` or ``mariadb``."""
        return self.async_url.get_backend_name()


def is_memory_sqlite(url: URL) -> bool:
    """True for an in-memory SQLite database (one connection, or each sees its own database)."""
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def engine_kwargs(
    config: DatabaseConfig, url: URL, *, is_async: bool, pooled: bool = True
) -> dict[str, Any]:
    """The keyword arguments for ``create_(async_)engine`` that ``config`` means for ``url``.

    Args:
        config: Pool, timeout and driver settings.
        url: The database, with its driver (async or blocking).
        is_async: For ``create_async_engine`` (else ``create_engine``).
        pooled: False for a pool-less engine (one-off work such as migrations).
    """
    # Pinging on *every* checkout costs a round trip per request; the ping after idleness
    # (transom.db.hooks) heals the pool after a restart just the same.
    every_checkout = config.pool_pre_ping and config.pool_ping_idle <= 0
    kwargs: dict[str, Any] = {"echo": config.echo, "pool_pre_ping": every_checkout}
    backend = url.get_backend_name()
    connect_args: dict[str, Any] = {}
    if not pooled and not is_memory_sqlite(url):
        kwargs["poolclass"] = NullPool
    elif is_memory_sqlite(url):
        # One shared connection, or every checkout would see its own empty database.
        kwargs["poolclass"] = StaticPool
        connect_args["check_same_thread"] = False
    else:
        if backend == "sqlite":
            # Named, not left to the dialect: SQLAlchemy before 2.0.38 gave aiosqlite file
            # databases a NullPool, which refuses the pool settings below (and the pool
            # should not depend on which SQLAlchemy is installed).
            kwargs["poolclass"] = AsyncAdaptedQueuePool if is_async else QueuePool
        kwargs.update(
            pool_size=config.pool_size,
            max_overflow=config.max_overflow,
            pool_timeout=config.pool_timeout,
            pool_recycle=config.pool_recycle,
        )
    # Requests get a statement timeout, so a frozen or overloaded server answers 503 instead
    # of holding them; one-off work (migrations, pooled=False) may take as long as it needs.
    command_timeout = config.command_timeout if pooled else 0
    if backend == "postgresql":
        if is_async:
            connect_args["timeout"] = config.connect_timeout
            if command_timeout:
                # Client-side: also ends the wait on a server that stopped answering.
                connect_args["command_timeout"] = command_timeout
        else:
            connect_args["connect_timeout"] = max(1, round(config.connect_timeout))
            if command_timeout and "options" not in url.query:
                # libpq has no read timeout: the server cancels the statement itself.
                connect_args["options"] = f"-c statement_timeout={round(command_timeout * 1000)}"
    elif backend in {"mysql", "mariadb"}:
        connect_args["connect_timeout"] = max(1, round(config.connect_timeout))
        if command_timeout and not is_async:
            # PyMySQL's socket timeouts (aiomysql has none: see transom.db.hooks).
            connect_args["read_timeout"] = connect_args["write_timeout"] = command_timeout
    elif backend == "sqlite":
        connect_args.setdefault("timeout", config.sqlite_busy_timeout)  # seconds
    kwargs["connect_args"] = connect_args
    kwargs.update(config.engine_options)
    return kwargs
