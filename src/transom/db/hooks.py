"""Engine and dialect hooks: per-backend connection set-up, lazy BEGIN and the idle ping.

Everything here is SQLAlchemy's documented event API (``connect``, ``checkout``,
``checkin``, ``begin``, ``before_cursor_execute``) on one engine at a time: nothing is
installed process-wide, and nothing is stored on SQLAlchemy's objects except in the
``info`` dictionaries SQLAlchemy provides for that.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
import weakref
from typing import Any

from sqlalchemy import Select, event
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.pool import ConnectionPoolEntry, NullPool, StaticPool
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.selectable import ForUpdateArg

from transom.db.config import DatabaseConfig, is_memory_sqlite

__all__ = ["install_hooks", "locks_rows", "mark_checked_in", "needs_ping"]

# ConnectionPoolEntry.info key: when the connection last went back to the pool.
_CHECKED_IN = "transom.checked_in"


def locks_rows(statement: ClauseElement) -> bool:
    """True for a ``SELECT ... FOR UPDATE`` (or ``FOR SHARE``...): it must run in a transaction.

    Read through the statement's public children (``with_for_update()`` adds one), so it also
    holds on SQLite, whose SQL has no ``FOR UPDATE`` to look for.
    """
    return any(isinstance(child, ForUpdateArg) for child in statement.get_children())


# Compiled statement -> "a plain SELECT?". The lazy BEGIN asks before every statement, and
# the answer depends only on the statement's structure, which is what SQLAlchemy's compiled
# cache keys on: a cached Compiled comes back for every execution of the same query, so the
# walk over its children runs once per distinct statement instead of once per execution.
# Weak keys: an entry leaves with the Compiled (evicted from SQLAlchemy's LRU cache, or an
# uncached one-off), so this never outgrows SQLAlchemy's own cache.
_PLAIN_SELECT: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def _is_plain_select(context: Any) -> bool:
    # ExecutionContext.compiled: None for exec_driver_sql(), which then counts as a write.
    compiled = getattr(context, "compiled", None)
    if compiled is None:
        return False
    plain = _PLAIN_SELECT.get(compiled)
    if plain is None:
        statement = getattr(compiled, "statement", None)
        plain = isinstance(statement, Select) and not locks_rows(statement)
        # A Compiled class without weak references is asked again next time.
        with contextlib.suppress(TypeError):
            _PLAIN_SELECT[compiled] = plain
    return plain


def _autocommits(connection: Any) -> bool:
    # Asked per statement (a connection's options can change); for AUTOCOMMIT the caller
    # wants each statement committed on its own: a BEGIN would leave it to the pool's rollback.
    return bool(connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT")


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
        event.listen(engine, "before_cursor_execute", _begin_immediate, retval=True)
        return

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # The whole transaction takes the write lock: it never has to upgrade a read lock.
        if not _autocommits(connection):
            connection.exec_driver_sql("BEGIN IMMEDIATE")


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
    pooled = conn.connection
    if pooled.driver_connection.in_transaction:  # sqlite3's (or aiosqlite's) own flag
        return statement, parameters
    if _is_plain_select(context) or _autocommits(conn):
        return statement, parameters
    cursor = pooled.dbapi_connection.cursor()
    try:
        cursor.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as error:
        # SQLAlchemy 2.0 lets what a before_cursor_execute hook raises through as it is (2.1
        # wraps it): wrap it here, so "database is locked" is SQLAlchemy's OperationalError on
        # both, which the error handlers answer with 503.
        raise DBAPIError.instance("BEGIN IMMEDIATE", None, error, sqlite3.Error) from error
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


def mark_checked_in(record: ConnectionPoolEntry) -> None:
    """Note that ``record`` just went back to the pool (for the idle ping)."""
    record.info[_CHECKED_IN] = time.monotonic()


def needs_ping(record: ConnectionPoolEntry, idle: float) -> bool:
    """True when ``record`` sat in the pool for more than ``idle`` seconds since its return."""
    since = record.info.get(_CHECKED_IN)
    return since is not None and time.monotonic() - since > idle


def _install_idle_ping(engine: Engine, idle: float) -> None:
    """Ping a pooled connection on checkout when it sat unused for more than ``idle`` seconds.

    A connection that served a request a moment ago is alive as far as anyone can tell, so a
    busy app pays nothing; one that waited in the pool (through a database restart, a
    firewall's idle cut) is tested first, and a dead one is replaced before the request
    sees it. A connection that dies mid-use still fails that request (503) and makes
    SQLAlchemy discard the pool's older connections, as with a ping on every checkout.
    This is SQLAlchemy's documented custom-ping recipe: raising ``DisconnectionError`` in a
    ``checkout`` listener makes the pool replace the connection and retry.
    """

    def _checked_in(_dbapi_connection: Any, record: ConnectionPoolEntry | None) -> None:
        if record is not None:
            mark_checked_in(record)

    def _checkout(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
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


def _begin_before_writes(
    conn: Any, _cursor: Any, statement: str, parameters: Any, context: Any, _many: bool
) -> tuple[str, Any]:
    dbapi_connection = conn.connection.dbapi_connection
    if dbapi_connection.autocommit and not _is_plain_select(context):
        dbapi_connection.autocommit = False  # BEGIN goes out before this statement
    return statement, parameters


def _install_lazy_begin(engine: Engine) -> None:
    """Begin PostgreSQL transactions at the first statement that is not a plain SELECT.

    Under READ COMMITTED every statement sees what was committed when it started, inside a
    transaction or not, so reads that come before any write lose nothing by running on their
    own. A request that only reads then costs one statement instead of BEGIN, SELECT and
    COMMIT; one that writes begins its transaction right before its first write (or
    ``SELECT ... FOR UPDATE``, text SQL, DDL, a savepoint), and everything from there on
    commits or rolls back together, as before.

    The switch is the DBAPI connection's ``autocommit`` attribute (what SQLAlchemy's
    ``AUTOCOMMIT`` isolation level sets on asyncpg): on at checkout, off before the first
    statement that needs the transaction, whereupon the driver sends BEGIN.
    """

    def _lazy(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        dbapi_connection.autocommit = True  # the driver sends no BEGIN yet

    event.listen(engine, "checkout", _lazy)
    event.listen(engine, "before_cursor_execute", _begin_before_writes, retval=True)


def install_hooks(engine: Engine, config: DatabaseConfig, url: URL) -> None:
    """Install the hooks ``config`` asks for on ``engine`` (the sync engine of an async one)."""
    backend = url.get_backend_name()
    if backend == "sqlite":
        _install_sqlite_hooks(
            engine, wal=config.sqlite_wal and not is_memory_sqlite(url), lazy=config.lazy_begin
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
