"""The per-app :class:`Database`: its engines, pools and session factories.

What the settings mean for an engine is in :mod:`transom.db.config`, the per-backend hooks
installed on each engine in :mod:`transom.db.hooks`, the session class in
:mod:`transom.db.sessions` and the per-request session in :mod:`transom.db.lifecycle`.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, overload

from sqlalchemy.engine import URL, Engine, create_engine
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import sessionmaker
from sqlalchemy.sql.schema import MetaData

from transom.batteries import Battery
from transom.db.cli_errors import driver_required
from transom.db.config import DatabaseConfig, async_url, engine_kwargs, is_memory_sqlite, sync_url
from transom.db.hooks import install_hooks
from transom.db.replicas import ReplicaSet
from transom.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from transom.app import App
    from transom.db.sessions import DbSession

__all__ = ["EXTENSION_KEY", "Database", "get_database", "setup"]

logger = logging.getLogger("transom.db")

#: Where the per-app :class:`Database` lives: ``app.extensions[EXTENSION_KEY]``.
EXTENSION_KEY = "transom.db"


def make_async_engine(
    config: DatabaseConfig, url: str | URL | None = None, *, pooled: bool = True
) -> AsyncEngine:
    """Create an async engine for ``url`` (default: the primary) with Transom's settings.

    Args:
        config: Pool, timeout and driver settings.
        url: The database; default the primary ``config.url``.
        pooled: False for a pool-less engine (one-off work such as migrations).
    """
    target = async_url(url if url is not None else config.url)
    with driver_required(target):
        engine = create_async_engine(
            target, **engine_kwargs(config, target, is_async=True, pooled=pooled)
        )
    install_hooks(engine.sync_engine, config, target)
    return engine


class Database(Battery):
    """The database battery: everything one app needs to talk to its databases (engines,
    pools, session factories), its error handlers, and a start-up check of its migrations.

    Install it like every battery (:mod:`transom.batteries`)::

        app.install(Database(DatabaseConfig(url="postgresql+asyncpg://...")))
        Database(app)            # shorthand: installs at once, config from the app's settings
        Database.of(app)         # the installed one

    Anything that needs it declares it (``Auth``, ``Admin``, and the ``Session`` /
    ``SyncSession`` dependencies), so an app that only uses ``Session`` in a handler gets one
    with its defaults when it is built. Tests and scripts may also use one standalone, never
    installed: ``Database(DatabaseConfig(url="sqlite+aiosqlite://"))``.

    Args:
        config: Connection settings. When omitted: the app's ``settings.database_url`` if
            the project's Settings has one (once installed), else the environment.
        metadata: Model metadata for error mapping and migrations (default ``Model.metadata``).
    """

    name = EXTENSION_KEY

    @overload
    def __init__(
        self,
        config: DatabaseConfig | None = None,
        /,
        *,
        metadata: MetaData | Sequence[MetaData] | None = None,
    ) -> None: ...

    @overload
    def __init__(
        self,
        app: App,
        config: DatabaseConfig | None = None,
        /,
        *,
        metadata: MetaData | Sequence[MetaData] | None = None,
    ) -> None: ...

    def __init__(
        self,
        first: Any = None,
        second: Any = None,
        /,
        *,
        metadata: MetaData | Sequence[MetaData] | None = None,
    ) -> None:
        from transom.batteries import split_arguments

        super().__init__()
        app, config = split_arguments(Database, DatabaseConfig, (first, second), {})
        # Without a config of its own, an installed Database reads the app's settings.
        self._config_given = any(
            arg is not None and isinstance(arg, DatabaseConfig) for arg in (first, second)
        )
        self._metadata_argument = metadata
        self.configure(config, metadata=metadata)
        if app is not None:
            self.install(app)

    def configure(
        self,
        config: DatabaseConfig,
        *,
        metadata: MetaData | Sequence[MetaData] | None = None,
    ) -> None:
        """(Re)create the engines and session factories for ``config``.

        Used when the battery is set up from the app's settings, and by the deprecated
        :func:`setup`, whose second call replaced the configuration. Engines connect lazily,
        so replacing ones that never served costs nothing.
        """
        from transom.db.models import Model
        from transom.db.sessions import DbSession, RoutingSession

        self.config = config
        if metadata is None:
            self.metadatas: list[MetaData] = [Model.metadata]
        elif isinstance(metadata, MetaData):
            self.metadatas = [metadata]
        else:
            self.metadatas = list(metadata)
        self.engine: AsyncEngine = make_async_engine(self.config)
        self.replicas: list[AsyncEngine] = [
            make_async_engine(self.config, url) for url in self.config.replica_urls
        ]
        self.replica_set = ReplicaSet(
            self.config.replica_urls,
            retry=self.config.replica_retry,
            fresh=max(self.config.pool_ping_idle, 0.0),
        )
        for index, replica in enumerate(self.replicas):
            self.replica_set.watch(index, replica.sync_engine)
        self._sync_engine: Engine | None = None
        self._sync_replicas: list[Engine] | None = None
        # expire_on_commit=False: handlers return objects that are serialized after the
        # commit; expiring them would force a lazy load, impossible outside the session.
        self._sessionmaker: async_sessionmaker[DbSession] = async_sessionmaker(
            self.engine,
            class_=DbSession,
            sync_session_class=RoutingSession,
            expire_on_commit=False,
            info={"transom.db": self},
        )
        self._sync_sessionmaker: sessionmaker[RoutingSession] | None = None

    def setup(self, app: App) -> None:
        """Register the database error handlers, close the pools on shutdown, and check at
        build time that the migrations are applied (see :mod:`transom.db.migrations.status`)."""
        from transom.db.handlers import install_handlers
        from transom.db.migrations.status import check_migrations

        if not self._config_given:
            url = _settings_url(app)
            if url is not None:
                self.configure(DatabaseConfig(url=url), metadata=self._metadata_argument)
        install_handlers(app)
        app.on_shutdown(self.dispose)
        app.add_check(lambda: check_migrations(self, debug=app.settings.debug))

    @property
    def metadata(self) -> MetaData:
        """The primary model metadata (what migrations compare against)."""
        return self.metadatas[0]

    @property
    def sessionmaker(self) -> async_sessionmaker[DbSession]:
        """The ``async_sessionmaker`` behind :meth:`session` (reconfigure it with ``configure``)."""
        return self._sessionmaker

    def session(self, **info: Any) -> DbSession:
        """Open a new async session; the caller closes it (``async with db.session() as s``).

        Args:
            **info: Added to the session's ``info`` dict.
        """
        session = self._sessionmaker()
        session.info.update(info)
        return session

    def pick_replica(self, *, sync: bool = False) -> Engine | None:
        """Choose the replica one session will read from, or ``None`` when there is none."""
        if not self.replicas:
            return None
        if sync:
            return self.replica_set.choose(self.sync_replicas)
        return self.replica_set.choose([r.sync_engine for r in self.replicas])

    # --- blocking access, for sync handlers, the shell and migrations ---------------------

    @property
    def sync_engine(self) -> Engine:
        """A blocking engine on the primary database (created on first use).

        It uses the blocking driver for the same database (sqlite3, psycopg, PyMySQL), so sync
        handlers get real connections instead of a bridge to the event loop.
        """
        if self._sync_engine is None:
            self._sync_engine = self._make_sync_engine(self.config.url)
        return self._sync_engine

    @property
    def sync_replicas(self) -> list[Engine]:
        """Blocking engines on the read replicas (created on first use)."""
        if self._sync_replicas is None:
            self._sync_replicas = [self._make_sync_engine(u) for u in self.config.replica_urls]
            for index, replica in enumerate(self._sync_replicas):
                self.replica_set.watch(index, replica)
        return self._sync_replicas

    def _make_sync_engine(self, url: str) -> Engine:
        target = sync_url(url)
        if is_memory_sqlite(target):
            raise RuntimeError(
                "an in-memory SQLite database can't be shared between async and sync code; "
                "use a file database for sync handlers"
            )
        with driver_required(target):
            engine = create_engine(target, **engine_kwargs(self.config, target, is_async=False))
        install_hooks(engine, self.config, target)
        return engine

    def sync_session(self, **info: Any) -> OrmSession:
        """Open a blocking session (same routing rules as the async one)."""
        from transom.db.sessions import RoutingSession

        if self._sync_sessionmaker is None:
            self._sync_sessionmaker = sessionmaker(
                self.sync_engine,
                class_=RoutingSession,
                expire_on_commit=False,
                info={"transom.db": self, "transom.db.sync": True},
            )
        session = self._sync_sessionmaker()
        session.info.update(info)
        return session

    async def create_all(self) -> None:
        """Create every table of the metadata (tests and prototypes; use migrations otherwise)."""
        async with self.engine.begin() as conn:
            for md in self.metadatas:
                await conn.run_sync(md.create_all)

    async def drop_all(self) -> None:
        """Drop every table of the metadata."""
        async with self.engine.begin() as conn:
            for md in reversed(self.metadatas):
                await conn.run_sync(md.drop_all)

    async def dispose(self) -> None:
        """Close every pooled connection (called on app shutdown)."""
        await self.engine.dispose()
        for replica in self.replicas:
            await replica.dispose()
        if self._sync_engine is not None:
            self._sync_engine.dispose()
        for engine in self._sync_replicas or ():
            engine.dispose()

    def __repr__(self) -> str:
        return f"<Database {self.engine.url.render_as_string(hide_password=True)}>"


def _settings_url(app: Any) -> str | None:
    # A project may put `database_url` on its own Settings subclass; honour it, else env/.env.
    url = getattr(getattr(app, "settings", None), "database_url", None)
    return str(url) if url else None


def setup(
    app: App,
    config: DatabaseConfig | None = None,
    *,
    metadata: MetaData | Sequence[MetaData] | None = None,
) -> Database:
    """Deprecated: write ``app.install(Database(config, metadata=...))``.

    Kept for one release. As before, a second call replaces the configuration (of the same
    :class:`Database`, which stays installed).

    Returns:
        The app's :class:`Database`.
    """
    warnings.warn(
        "transom.db.setup(app, config, metadata=...) is deprecated: write "
        "app.install(Database(config, metadata=...))",
        DeprecationWarning,
        stacklevel=2,
    )
    existing: Database | None = app.batteries.find(Database)
    if existing is None:
        installed: Database = app.install(Database(config, metadata=metadata))
        return installed
    url = _settings_url(app)
    existing.configure(
        config or (DatabaseConfig(url=url) if url else DatabaseConfig()), metadata=metadata
    )
    return existing


_setup_lock = threading.Lock()


def get_database(app: Any) -> Database:
    """The app's :class:`Database`: an alias of ``Database.of(app)``.

    One difference, so code written when the database attached itself on first use keeps
    working (scripts and test fixtures that call ``get_database(app).create_all()`` on an app
    that never installed one): on an app where nothing installed or declared a Database, it
    installs one with its defaults and warns (``DeprecationWarning``) instead of raising.
    """
    database = app.extensions.get(EXTENSION_KEY)  # the hot path: one dict lookup
    if isinstance(database, Database):
        return database
    # Sync handlers resolve their session in worker threads: install the Database once.
    with _setup_lock:
        try:
            found: Database = Database.of(app)
            return found
        except ImproperlyConfigured:
            pass
        warnings.warn(
            "get_database(app) installed a Database with its defaults because nothing "
            "installed or declared one: write app.install(Database(DatabaseConfig(...))); "
            "a later release raises like Database.of(app)",
            DeprecationWarning,
            stacklevel=2,
        )
        app.batteries.install_requirements((Database,))
        installed: Database = Database.of(app)
        return installed
