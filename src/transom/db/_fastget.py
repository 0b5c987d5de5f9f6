"""``session.get()`` by primary key on asyncpg without the ORM's query pipeline.

``Session.get`` on an identity-map miss compiles a cache key, builds an ORM compile state and a
query context, runs the statement through ``Connection.execute`` (execution context, cursor
adapter, result metadata) and then the ORM's row loader: several times the CPU of the asyncpg
round trip itself. This module does the same load with what is left once all of that is known
in advance: a ``SELECT`` compiled once per model and dialect, ``fetchrow`` on an asyncpg
connection, SQLAlchemy's own type processors, and an instance registered in the session's
identity map exactly as the ORM registers a freshly loaded row.

Which connection: the one the session holds for the model's bind (same transaction, so it
reads the request's own writes); or, when it holds none yet and the engine begins lazily (a
plain SELECT would run outside any transaction anyway), a pooled connection borrowed for that
one statement: for every such read while the pool lends without SQLAlchemy's checkout,
otherwise for the session's first read only.

It steps aside (the caller then runs the ordinary ``Session.get``) whenever anything could make
the two differ: loader options, ``populate_existing``, ``with_for_update``, an identity token,
an identity-map hit, pending changes to autoflush, an event listener that would have seen the
query, the connection or the load, ``echo``, a driver other than asyncpg, a connection that
has not sent its BEGIN yet, and models that are not one plain table (inheritance, deferred or
SQL-expression columns, composites, eager relationships). When the driver fails, the ordinary
path runs the load again and raises, translates and invalidates as it always does; only a
server error inside a transaction, which aborted it, is raised from here, as SQLAlchemy's own
``DBAPIError`` for that error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, cast

from sqlalchemy import Column, Float, Numeric, Table, and_, bindparam, select
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import ColumnProperty, Mapper, RelationshipProperty, SynonymProperty
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm.base import instance_state
from sqlalchemy.util import await_only

from transom.db._listeners import changes, is_transom_listener
from transom.db._pool import TransomPool
from transom.db.engine import begins_lazily, has_begun

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession
    from sqlalchemy.pool.base import _ConnectionRecord

__all__ = ["FALLBACK", "fast_get", "transaction_watched"]

#: Returned when the fast path does not apply; the caller runs ``Session.get`` instead.
FALLBACK: Any = object()
_UNKNOWN: Any = object()
_BORROWED = "transom.db.borrowed"  # Session.info: this session has had a borrowed read

# Relationship loaders that leave a freshly loaded instance's attribute untouched (the first
# access loads or raises, as after an ordinary get); any other strategy loads with the row.
_LAZY_STRATEGIES = frozenset({"select", "raise", "raise_on_sql", "write_only", "dynamic"})


@dataclass(frozen=True, slots=True)
class _Plan:
    """What loading one model by primary key needs, worked out once per model and dialect."""

    sql: str
    keys: tuple[str, ...]  # attribute names, in SELECT order
    processors: tuple[Callable[[Any], Any] | None, ...]
    pk_positions: tuple[int, ...]  # where each primary-key column sits in the row
    param_order: tuple[int, ...]  # which primary-key value each positional parameter takes
    param_binds: tuple[Callable[[Any], Any] | None, ...]
    identity_class: type


def _eligible_columns(mapper: Mapper[Any]) -> list[tuple[str, Column[Any]]] | None:
    """The (attribute, column) pairs an ordinary get would load, or None if it does more."""
    table = mapper.local_table
    if (
        not isinstance(table, Table)
        or mapper.persist_selectable is not table
        or mapper.inherits is not None
        or mapper.polymorphic_on is not None
        or mapper.polymorphic_map
        or mapper.with_polymorphic
        or mapper.always_refresh
    ):
        return None
    columns: list[tuple[str, Column[Any]]] = []
    for prop in mapper.iterate_properties:
        if isinstance(prop, ColumnProperty):
            if prop.deferred or len(prop.columns) != 1:
                return None
            column = prop.columns[0]
            if not isinstance(column, Column) or column.table is not table:
                return None
            columns.append((prop.key, column))
        elif isinstance(prop, RelationshipProperty):
            if prop.lazy not in _LAZY_STRATEGIES:
                return None
        elif not isinstance(prop, SynonymProperty):
            return None  # composites, concrete-inheritance stand-ins, custom properties
    return columns


def _compile(
    mapper: Mapper[Any], dialect: Dialect, columns: list[tuple[str, Column[Any]]]
) -> tuple[str, tuple[int, ...]] | None:
    """The SELECT by primary key in the dialect's SQL, and which key value each $n takes."""
    criteria = [column == bindparam(f"pk_{i}") for i, column in enumerate(mapper.primary_key)]
    stmt = select(*(column for _, column in columns)).where(and_(*criteria))
    compiled = stmt.compile(dialect=dialect)
    order = tuple(int(name[3:]) for name in compiled.positiontup or ())
    if sorted(order) != list(range(len(criteria))):
        return None  # a dialect that repeats or renames parameters: not worth special-casing
    return str(compiled), order


def _build_plan(
    mapper: Mapper[Any],
    dialect: Dialect,
    columns: list[tuple[str, Column[Any]]],
    compiled: tuple[str, tuple[int, ...]],
    oids: Sequence[int] | None,
) -> _Plan:
    sql, order = compiled
    by_column: dict[Any, int] = {column: i for i, (_, column) in enumerate(columns)}
    return _Plan(
        sql=sql,
        keys=tuple(key for key, _ in columns),
        processors=tuple(
            column.type._cached_result_processor(dialect, oids[i] if oids else None)
            for i, (_, column) in enumerate(columns)
        ),
        pk_positions=tuple(by_column[column] for column in mapper.primary_key),
        param_order=order,
        param_binds=tuple(
            mapper.primary_key[i].type._cached_bind_processor(dialect) for i in order
        ),
        identity_class=mapper._identity_class,
    )


def _connection(session: OrmSession, mapper: Mapper[Any]) -> Connection:
    # Runs inside run_sync's greenlet: checking out a connection may need the event loop.
    return session.connection(bind_arguments={"mapper": mapper})


_QUIET = "_transom_quiet"  # on the engine: (listener changes() seen, verdict)


def _quiet(engine: Engine) -> bool:
    """True when no listener or logger would observe a statement on ``engine``.

    Checked on every get (loggers and listeners come and go at run time); the listeners'
    verdict is kept on the engine until any listener anywhere changes.
    """
    if engine._should_log_info():
        return False  # echo / SQL logging
    seen = changes()
    cached: tuple[int, bool] | None = engine.__dict__.get(_QUIET)
    if cached is not None and cached[0] == seen:
        return cached[1]
    verdict = _no_listeners(engine)
    setattr(engine, _QUIET, (seen, verdict))
    return verdict


def _no_listeners(engine: Engine) -> bool:
    if engine._has_events:
        # Statement listeners (logging, tracing, a test's counter) would miss the SELECT. A
        # borrowed connection also skips the Connection's own events, so begin and connect
        # listeners (a tenant's SET LOCAL, say) mean the ordinary path too.
        events = engine.dispatch
        if (
            events.before_execute
            or events.after_execute
            or events.after_cursor_execute
            or events.engine_connect
            or events.begin
        ):
            return False
        for fn in events.before_cursor_execute:
            if not is_transom_listener(fn):  # lazy BEGIN's hook never acts on a plain SELECT
                return False
    dialect_events = engine.dialect.dispatch
    return not (
        dialect_events.do_execute or dialect_events.do_setinputsizes or dialect_events.handle_error
    )


_PlanCache = dict[Mapper[Any], "_Plan | None"]
# Per dialect (one per engine), kept on the dialect itself so it goes with the engine (tests
# and scripts create engines by the dozen) and costs one attribute read per get.
_PLANS = "_transom_plans"


def _plans_of(dialect: Dialect) -> _PlanCache:
    plans: _PlanCache | None = dialect.__dict__.get(_PLANS)
    if plans is None:
        plans = {}
        setattr(dialect, _PLANS, plans)
    return plans


def _identity(ident: Any, size: int) -> list[Any] | None:
    if isinstance(ident, dict):
        return None  # attribute names: the ordinary path maps them (synonyms included)
    values = list(ident) if isinstance(ident, (tuple, list)) else [ident]
    if len(values) != size or any(value is None for value in values):
        return None  # the ordinary path raises or warns as it should
    return values


async def fast_get(session: AsyncSession, mapper: Mapper[Any], ident: Any) -> Any:
    """Load ``mapper``'s row with primary key ``ident`` into ``session``, or return FALLBACK."""
    sync = session.sync_session
    values = _identity(ident, len(mapper.primary_key))
    if values is None:
        return FALLBACK
    bind = sync.get_bind(mapper)
    dialect = bind.dialect
    if dialect.driver != "asyncpg" or not isinstance(bind, Engine) or not _quiet(bind):
        return FALLBACK
    plans = _plans_of(dialect)
    plan = plans.get(mapper, _UNKNOWN)
    if plan is None:
        return FALLBACK  # a model this path does not serve (decided on its first get)
    mapper._check_configure()
    if (mapper._identity_class, tuple(values), None) in sync.identity_map:
        return FALLBACK  # a hit (maybe expired, maybe deleted): the ordinary path is cheap here
    manager = mapper.class_manager
    if (
        (sync.autoflush and not sync._is_clean())
        or sync.dispatch.do_orm_execute
        or sync.dispatch.loaded_as_persistent
        or manager.dispatch.load
        or manager.dispatch.refresh
    ):
        return FALLBACK
    root = sync.get_transaction()
    if (
        (root is None or bind not in root._connections)
        and begins_lazily(bind)
        and (_borrows_cheaply(bind) or not sync.info.get(_BORROWED))
        and not transaction_watched(sync)
    ):
        # The session has no connection here yet, so nothing of its own to read back: under
        # lazy BEGIN this read would run on its own anyway. Borrow a pooled connection for
        # just this statement and give it straight back (raw asyncpg's pattern): no
        # Connection, no session transaction to open now and close at the end. Every read
        # does so until the session holds a connection (its first write or ordinary query),
        # as long as the pool lends without SQLAlchemy's checkout: that costs less than
        # checking out, beginning and ending the session's own connection. Otherwise (a ping
        # on every checkout, checkout listeners) only the first read borrows. Not when the
        # session's transaction has listeners: they see the transaction an ordinary get
        # begins (and the commit that ends the request), as without this shortcut.
        sync.info[_BORROWED] = True
        row = await _load_pooled(session, bind, mapper, plans, values)
    else:
        # The connection the session's current transaction (or savepoint) holds, if any:
        # reusing it needs no trip through the greenlet.
        current = sync._transaction
        held = None
        if current is not None and current.is_active:
            held = current._connections.get(bind)
        row = await _load_in_session(session, held[0] if held else None, mapper, plans, values)
    plan = plans.get(mapper)
    if row is FALLBACK or row is None or plan is None:
        return row
    return _register(sync, mapper, plan, row)


def transaction_watched(session: OrmSession) -> bool:
    """True when a listener on ``session`` would see its transaction begin or end.

    Then the fast ``get`` reads in the session's own transaction instead of borrowing, and
    the request's session commits instead of just closing: those listeners see what they
    would without either shortcut.
    """
    events = session.dispatch
    return bool(
        events.after_transaction_create
        or events.after_begin
        or events.before_commit
        or events.after_commit
        or events.after_rollback
        or events.after_soft_rollback
        or events.after_transaction_end
    )


def _borrows_cheaply(engine: Engine) -> bool:
    pool = engine.pool
    return isinstance(pool, TransomPool) and pool.borrowable()


def _params(plan: _Plan, values: list[Any]) -> list[Any]:
    return [
        values[i] if bind is None else bind(values[i])
        for i, bind in zip(plan.param_order, plan.param_binds, strict=True)
    ]


async def _plan(
    mapper: Mapper[Any], dialect: Dialect, plans: _PlanCache, driver: Any, in_transaction: bool
) -> Any:
    """The model's plan worked out now, on its first get (cached); None or _UNKNOWN."""
    plan = await _prepare(mapper, dialect, driver, in_transaction=in_transaction)
    if plan is not _UNKNOWN:
        plans[mapper] = plan
    return plan


async def _load_pooled(
    session: AsyncSession, engine: Engine, mapper: Mapper[Any], plans: _PlanCache, values: list[Any]
) -> Any:
    """Run the SELECT on a connection borrowed from the pool for just this statement."""
    pool = engine.pool
    if not isinstance(pool, TransomPool) or not pool.borrowable():
        return await session.run_sync(_load_borrowed, engine, mapper, plans, values, None)
    record, ready = await pool.borrow()
    if not ready:
        # The pool must open a connection, or this one needs reconnecting, recycling or a
        # ping: SQLAlchemy's checkout (in a greenlet) does that, with this very record.
        return await session.run_sync(_load_borrowed, engine, mapper, plans, values, record)
    assert record is not None
    assert record.dbapi_connection is not None
    driver = record.dbapi_connection.driver_connection
    try:
        plan = plans.get(mapper, _UNKNOWN)
        if plan is _UNKNOWN:
            plan = await _plan(mapper, engine.dialect, plans, driver, in_transaction=False)
        if plan is None or plan is _UNKNOWN:
            row = FALLBACK
        else:
            row = await driver.fetchrow(plan.sql, *_params(plan, values))
    except Exception as error:
        # A server error left the connection as it was; anything else may have killed it.
        # Either way the ordinary path runs the load again and raises, translates and
        # invalidates as it always does (in autocommit, a failed statement left nothing).
        if _is_server_error(error):
            await pool.give_back(record)
        else:
            pool.discard(record, error)
        return FALLBACK
    except BaseException as error:
        # Cancelled mid-statement: the server may still be answering on this connection,
        # so the next borrower must not get it as it is.
        pool.discard(record, error)
        raise
    await pool.give_back(record)
    return row


def _load_borrowed(
    _session: OrmSession,
    engine: Engine,
    mapper: Mapper[Any],
    plans: _PlanCache,
    values: list[Any],
    record: _ConnectionRecord | None,
) -> Any:
    # In run_sync's greenlet: the pool may connect or ping, and the return may close.
    if record is not None:
        cast(TransomPool, engine.pool).hand_over(record)  # the checkout below takes it
    pooled = engine.raw_connection()
    try:
        adapted = pooled.dbapi_connection
        if adapted is None or not adapted.autocommit:
            return FALLBACK  # lazy BEGIN's checkout hook did not run: not ours to judge
        driver = adapted.driver_connection
        plan = plans.get(mapper, _UNKNOWN)
        if plan is _UNKNOWN:
            plan = await_only(_plan(mapper, engine.dialect, plans, driver, in_transaction=False))
        if plan is None or plan is _UNKNOWN:
            return FALLBACK
        return await_only(driver.fetchrow(plan.sql, *_params(plan, values)))
    except Exception as error:
        if not _is_server_error(error):
            pooled.invalidate(error)  # it may be dead: the pool must not hand it out again
        # The ordinary path runs the load again and raises, translates and invalidates as
        # it always does (in autocommit, a failed statement left nothing behind).
        return FALLBACK
    finally:
        pooled.close()


async def _load_in_session(
    session: AsyncSession,
    connection: Connection | None,
    mapper: Mapper[Any],
    plans: _PlanCache,
    values: list[Any],
) -> Any:
    if connection is None or connection.closed or connection.invalidated:
        # Checking out (and beginning the session's transaction) may need the event loop.
        connection = await session.run_sync(_connection, mapper)
    if connection._has_events:
        return FALLBACK  # listeners on this one connection
    adapted = connection.connection.dbapi_connection
    # Outside autocommit, the adapter sends BEGIN with a connection's first statement; leave
    # that statement to the ordinary path, then every later get here runs in its transaction.
    if adapted is None:
        return FALLBACK
    in_transaction = has_begun(adapted)
    if not adapted.autocommit and not in_transaction:
        return FALLBACK
    driver = adapted.driver_connection
    params: list[Any] = []
    plan: Any = None
    try:
        async with adapted._execute_mutex:
            plan = plans.get(mapper, _UNKNOWN)
            if plan is _UNKNOWN:
                plan = await _plan(mapper, connection.dialect, plans, driver, in_transaction)
            if plan is None or plan is _UNKNOWN:
                return FALLBACK
            params = _params(plan, values)
            return await driver.fetchrow(plan.sql, *params)
    except Exception as error:
        if in_transaction and plan is not None and _is_server_error(error):
            # The server aborted the transaction: running the load again could only report
            # "current transaction is aborted". Raise what the ordinary path would have.
            _raise_as_sqlalchemy(adapted, connection.dialect, error, plan.sql, params)
        # Nothing changed on the server (a bad parameter, a dead connection): the ordinary
        # path runs the load again and raises, translates and invalidates as it always does.
        return FALLBACK


def _is_server_error(error: Exception) -> bool:
    import asyncpg  # type: ignore[import-untyped]

    return isinstance(error, asyncpg.PostgresError)


def _raise_as_sqlalchemy(
    adapted: Any, dialect: Dialect, error: Exception, sql: str, params: Sequence[Any]
) -> NoReturn:
    dbapi_error = dialect.loaded_dbapi.Error
    try:
        adapted._handle_exception(error)  # the adapter's DBAPI-style error, as a cursor raises
    except dbapi_error as translated:
        raise DBAPIError.instance(
            sql, tuple(params), translated, dbapi_error, dialect=dialect
        ) from error
    raise error  # pragma: no cover - _handle_exception always raises


def _server_typed(column: Column[Any]) -> bool:
    affinity = column.type._type_affinity
    return affinity is not None and issubclass(affinity, (Numeric, Float))


async def _prepare(
    mapper: Mapper[Any], dialect: Dialect, driver: Any, *, in_transaction: bool
) -> _Plan | None:
    """The model's plan, None if the fast path never serves it, _UNKNOWN to decide later."""
    columns = _eligible_columns(mapper)
    compiled = None if columns is None else _compile(mapper, dialect, columns)
    if columns is None or compiled is None:
        return None
    if not any(_server_typed(column) for _, column in columns):
        return _build_plan(mapper, dialect, columns, compiled, None)
    # asyncpg's NUMERIC result processor depends on the type the server reports for the
    # column (float8 vs numeric), as SQLAlchemy's cursor reads it on every execution: ask the
    # server once. Not inside a transaction, where a failed PREPARE would abort it.
    if in_transaction:
        return _UNKNOWN  # type: ignore[no-any-return]
    statement = await driver.prepare(compiled[0])
    oids = [attribute.type.oid for attribute in statement.get_attributes()]
    return _build_plan(mapper, dialect, columns, compiled, oids)


def _register(sync: OrmSession, mapper: Mapper[Any], plan: _Plan, row: Sequence[Any]) -> Any:
    """Make the row a persistent instance of the session, as the ORM's loader does."""
    row_values = [
        value if process is None else process(value)
        for value, process in zip(row, plan.processors, strict=True)
    ]
    identity = tuple(row_values[i] for i in plan.pk_positions)
    identity_key = (plan.identity_class, identity, None)
    existing = sync.identity_map.get(identity_key)
    if existing is not None:
        return existing  # loaded meanwhile under this key: the identity map wins, as in the ORM
    instance = mapper.class_manager.new_instance()
    state = instance_state(instance)
    state.dict.update(zip(plan.keys, row_values, strict=True))
    state.key = identity_key
    state.identity_token = None
    state.load_path = mapper._path_registry
    state.session_id = sync.hash_key
    sync.identity_map.add(state)
    return instance
