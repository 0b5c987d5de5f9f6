"""Engines, connection pools and the per-app :class:`Database` object."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Select, event
from sqlalchemy.engine import URL, Engine, create_engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import NullPool, StaticPool
from sqlalchemy.sql.schema import MetaData

from transom.db._listeners import transom_listener
from transom.db._pool import TransomPool, mark_checked_in, needs_ping
from transom.db.cli_errors import driver_required
from transom.db.config import DatabaseConfig, async_url, sync_url

if TYPE_CHECKING:
    from transom.db._session_factory import SessionFactory
    from transom.db.sessions import DbSession

__all__ = ["EXTENSION_KEY", "Database", "get_database", "setup"]

logger = logging.getLogger("transom.db")

#: Where the per-app :class:`Database` lives: ``app.extensions[EXTENSION_KEY]``.
EXTENSION_KEY = "transom.db"


def _is_memory_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def _engine_kwargs(
    config: DatabaseConfig, url: URL, *, is_async: bool, pooled: bool = True
) -> dict[str, Any]:
    # Pinging on *every* checkout costs a round trip per request; the ping after idleness
    # (see _install_idle_ping) heals the pool after a restart just the same.
    every_checkout = config.pool_pre_ping and config.pool_ping_idle <= 0
    kwargs: dict[str, Any] = {"echo": config.echo, "pool_pre_ping": every_checkout}
    backend = url.get_backend_name()
    connect_args: dict[str, Any] = {}
    if not pooled and not _is_memory_sqlite(url):
        kwargs["poolclass"] = NullPool
    elif _is_memory_sqlite(url):
        # One shared connection, or every checkout would see its own empty database.
        kwargs["poolclass"] = StaticPool
        connect_args["check_same_thread"] = False
    else:
        if is_async and backend == "postgresql":
            # SQLAlchemy's asyncio pool, plus the one-statement checkout the primary-key fast
            # path uses (transom.db._pool).
            kwargs["poolclass"] = TransomPool
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
            # PyMySQL's socket timeouts (aiomysql has none: see _install_mysql_hooks).
            connect_args["read_timeout"] = connect_args["write_timeout"] = command_timeout
    elif backend == "sqlite":
        connect_args.setdefault("timeout", config.sqlite_busy_timeout)  # seconds
    kwargs["connect_args"] = connect_args
    kwargs.update(config.engine_options)
    return kwargs


def _install_sqlite_hooks(engine: Engine, *, wal: bool, lazy: bool) -> None:
    """Connection set-up, and when SQLite transactions begin (see :func:`_begin_immediate`)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions start: otherwise
        # SAVEPOINT and BEGIN handling is broken (documented pysqlite quirk).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")  # off by default in SQLite
        if wal:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    if lazy:
        # retval=True registers the function itself, as for PostgreSQL's lazy BEGIN.
        event.listen(engine, "before_cursor_execute", _begin_immediate, retval=True)
        return

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # The whole transaction takes the write lock: it never has to upgrade a read lock.
        if not _autocommits(connection):
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def _autocommits(connection: Any) -> bool:
    # Asked per statement (a connection's options can change); for AUTOCOMMIT the caller
    # wants each statement committed on its own: a BEGIN would leave it to the pool's rollback.
    return bool(connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT")


@transom_listener
def _begin_immediate(
    conn: Any, _cursor: Any, statement: str, parameters: Any, context: Any, _many: bool
) -> tuple[str, Any]:
    """SQLite's lazy BEGIN: ``BEGIN IMMEDIATE`` right before a transaction's first write.

    A deferred transaction that has read cannot wait for the write lock: while another
    connection writes, SQLite refuses its upgrade at once ("database is locked", the busy
    timeout unused, as waiting could deadlock). So reads before the first write run on their
    own (in WAL mode they never wait for a writer, and see what was committed when they run,
    as under PostgreSQL's READ COMMITTED), and the first statement that is not a plain SELECT
    first takes the write lock with ``BEGIN IMMEDIATE``, which does wait, up to the busy
    timeout, for the writer ahead of it. SQLAlchemy's COMMIT or ROLLBACK ends it as usual.
    """
    if _is_plain_select(context) or _autocommits(conn):
        return statement, parameters
    pooled = conn.connection
    if not pooled.driver_connection.in_transaction:  # sqlite3's (or aiosqlite's) own flag
        cursor = pooled.dbapi_connection.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE")
        finally:
            cursor.close()
    return statement, parameters


def _install_mysql_hooks(engine: Engine, command_timeout: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # DATETIME has no zone: make NOW()/CURRENT_TIMESTAMP defaults UTC like the app's values.
        cursor = dbapi_connection.cursor()
        cursor.execute("SET time_zone = '+00:00'")
        if command_timeout:
            # aiomysql has no read timeout: the server at least ends a statement that runs
            # too long (MariaDB: any statement, seconds; MySQL: SELECTs, milliseconds).
            if engine.dialect.is_mariadb:  # type: ignore[attr-defined]
                cursor.execute(f"SET SESSION max_statement_time = {float(command_timeout)}")
            else:
                cursor.execute(f"SET SESSION max_execution_time = {round(command_timeout * 1000)}")
        cursor.close()


def _install_idle_ping(engine: Engine, idle: float) -> None:
    """Ping a pooled connection on checkout when it sat unused for more than ``idle`` seconds.

    A connection that served a request a moment ago is alive as far as anyone can tell, so a
    busy app pays nothing; one that waited in the pool (through a database restart, a
    firewall's idle cut) is tested first, and a dead one is replaced before the request
    sees it. A connection that dies mid-use still fails that request (503) and makes
    SQLAlchemy discard the pool's older connections, as with a ping on every checkout.
    """

    @transom_listener
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            mark_checked_in(record)

    @transom_listener
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if not needs_ping(record, idle):
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool discards this connection and checks out (or opens) another.
            raise DisconnectionError(f"stale pooled connection: {exc}") from exc
        if alive is False:
            raise DisconnectionError("stale pooled connection")

    event.listen(engine, "checkin", _checked_in)
    event.listen(engine, "checkout", _checkout)
    if isinstance(engine.pool, TransomPool):
        engine.pool.ping_idle = idle  # its one-statement checkout pings the same way


def _is_plain_select(context: Any) -> bool:
    compiled = getattr(context, "compiled", None)
    statement = getattr(compiled, "statement", None)
    return isinstance(statement, Select) and statement._for_update_arg is None


@transom_listener
def _begin_before_writes(
    conn: Any, _cursor: Any, statement: str, parameters: Any, context: Any, _many: bool
) -> tuple[str, Any]:
    dbapi_connection = conn.connection.dbapi_connection
    if dbapi_connection.autocommit and not _is_plain_select(context):
        dbapi_connection.autocommit = False  # BEGIN goes out before this statement
    return statement, parameters


# Marks an engine whose connections begin lazily (an attribute: read on every fast get).
_LAZY = "_transom_lazy_begin"


def begins_lazily(engine: Engine) -> bool:
    """True when ``engine``'s connections send BEGIN only before their first write."""
    return bool(engine.__dict__.get(_LAZY))


def has_begun(dbapi_connection: Any) -> bool:
    """True when SQLAlchemy's asyncpg adapter has sent BEGIN on this connection."""
    return dbapi_connection._transaction is not None


def _install_lazy_begin(engine: Engine) -> None:
    """Begin PostgreSQL transactions at the first statement that is not a plain SELECT.

    Under READ COMMITTED every statement sees what was committed when it started, inside a
    transaction or not, so reads that come before any write lose nothing by running on their
    own. A request that only reads then costs one statement instead of BEGIN, SELECT and
    COMMIT; one that writes begins its transaction right before its first write (or
    ``SELECT ... FOR UPDATE``, text SQL, DDL, a savepoint), and everything from there on
    commits or rolls back together, as before.
    """

    @transom_listener
    def _lazy(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        # The driver sends no BEGIN yet. (A borrowed connection skips this hook: it runs one
        # statement on the driver's connection, in autocommit whatever this flag says.)
        dbapi_connection.autocommit = True

    event.listen(engine, "checkout", _lazy)
    # retval=True registers the function itself (not a wrapper), so is_transom_listener
    # can recognise it among an engine's listeners.
    event.listen(engine, "before_cursor_execute", _begin_before_writes, retval=True)
    setattr(engine, _LAZY, True)


def _install_hooks(engine: Engine, config: DatabaseConfig, url: URL) -> None:
    backend = url.get_backend_name()
    if backend == "sqlite":
        _install_sqlite_hooks(
            engine, wal=config.sqlite_wal and not _is_memory_sqlite(url), lazy=config.lazy_begin
        )
    elif backend in {"mysql", "mariadb"}:
        pooled = not isinstance(engine.pool, NullPool)
        _install_mysql_hooks(engine, config.command_timeout if pooled else 0)
    elif (
        backend == "postgresql"
        and url.get_driver_name() == "asyncpg"
        and config.lazy_begin
        and "isolation_level" not in config.engine_options  # a stricter level needs BEGIN first
        and not isinstance(engine.pool, NullPool)
    ):
        _install_lazy_begin(engine)
    # After lazy_begin's checkout hook, so an idle connection is pinged outside a transaction.
    if (
        config.pool_pre_ping
        and config.pool_ping_idle > 0
        and not isinstance(engine.pool, (NullPool, StaticPool))
    ):
        _install_idle_ping(engine, config.pool_ping_idle)


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
            target, **_engine_kwargs(config, target, is_async=True, pooled=pooled)
        )
    _install_hooks(engine.sync_engine, config, target)
    return engine


class Database:
    """Everything one app needs to talk to its databases: engines, pools and session factories.

    Created lazily per app (see :func:`get_database`); tests and scripts may build one
    directly: ``Database(DatabaseConfig(url="sqlite+aiosqlite://"))``.

    Args:
        config: Connection settings; read from the environment when omitted.
        metadata: Model metadata for error mapping and migrations (default ``Model.metadata``).
    """

    def __init__(
        self,
        config: DatabaseConfig | None = None,
        *,
        metadata: MetaData | Sequence[MetaData] | None = None,
    ) -> None:
        from transom.db.models import Model
        from transom.db.sessions import DbSession, RoutingSession

        self.config = config if config is not None else DatabaseConfig()
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
        # Built on the first session; False: call the sessionmaker instead.
        self._session_factory: SessionFactory | Literal[False] | None = None
        self._sync_sessionmaker: sessionmaker[RoutingSession] | None = None

    @property
    def metadata(self) -> MetaData:
        """The primary model metadata (what migrations compare against)."""
        return self.metadatas[0]

    @property
    def sessionmaker(self) -> async_sessionmaker[DbSession]:
        """The ``async_sessionmaker`` behind :meth:`session`.

        Reading it means it may be reconfigured, so from then on :meth:`session` calls it
        instead of copying the sessions it made before.
        """
        self._session_factory = False
        return self._sessionmaker

    def session(self, **info: Any) -> DbSession:
        """Open a new async session; the caller closes it (``async with db.session() as s``)."""
        factory = self._session_factory
        if factory is None:
            from transom.db._session_factory import SessionFactory

            built = SessionFactory(self._sessionmaker)
            factory = self._session_factory = built if built.ok else False
        if factory is False:
            session = self._sessionmaker()
            session.info.update(info)
            return session
        return factory(info)

    def pick_replica(self, *, sync: bool = False) -> Engine | None:
        """Choose the replica one session will read from, or ``None`` when there is none."""
        if sync:
            pool = self.sync_replicas
            return random.choice(pool) if pool else None
        return random.choice(self.replicas).sync_engine if self.replicas else None

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
        return self._sync_replicas

    def _make_sync_engine(self, url: str) -> Engine:
        target = sync_url(url)
        if _is_memory_sqlite(target):
            raise RuntimeError(
                "an in-memory SQLite database can't be shared between async and sync code; "
                "use a file database for sync handlers"
            )
        with driver_required(target):
            engine = create_engine(target, **_engine_kwargs(self.config, target, is_async=False))
        _install_hooks(engine, self.config, target)
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


def _config_from_app(app: Any) -> DatabaseConfig:
    # A project may put `database_url` on its own Settings subclass; honour it, else env/.env.
    settings = getattr(app, "settings", None)
    url = getattr(settings, "database_url", None)
    if url:
        return DatabaseConfig(url=str(url))
    return DatabaseConfig()


def setup(
    app: Any,
    config: DatabaseConfig | None = None,
    *,
    metadata: MetaData | Sequence[MetaData] | None = None,
) -> Database:
    """Attach the database battery to ``app`` explicitly (optional: it attaches itself).

    Registers the error handlers and closes the pools on shutdown. Calling it again replaces
    the configuration.

    Args:
        app: The Transom app.
        config: Connection settings; default read from ``app.settings`` and the environment.
        metadata: Model metadata (default ``Model.metadata``).

    Returns:
        The app's :class:`Database`.
    """
    from transom.db.handlers import install_handlers

    database = Database(config or _config_from_app(app), metadata=metadata)
    previous = app.extensions.get(EXTENSION_KEY)
    app.extensions[EXTENSION_KEY] = database
    if previous is None:
        install_handlers(app)

        async def _dispose() -> None:
            current = app.extensions.get(EXTENSION_KEY)
            if isinstance(current, Database):
                await current.dispose()

        app.on_shutdown(_dispose)
    return database


_setup_lock = threading.Lock()


def get_database(app: Any) -> Database:
    """Return the app's :class:`Database`, creating it from settings on first use."""
    database = app.extensions.get(EXTENSION_KEY)
    if database is None:
        # Sync handlers resolve their session in worker threads: create the Database once.
        with _setup_lock:
            database = app.extensions.get(EXTENSION_KEY)
            if database is None:
                database = setup(app)
    if not isinstance(database, Database):
        raise TypeError(f"app.extensions[{EXTENSION_KEY!r}] is {database!r}, not a Database")
    return database
