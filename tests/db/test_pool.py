"""The PostgreSQL pool's one-statement checkout (``transom.db._pool``) behaves like a checkout.

A plain ``session.get`` on PostgreSQL borrows a ready connection straight from the queue; each
test checks that what SQLAlchemy's checkout would do still happens: waiting with the pool's
timeout, pinging a connection that sat idle, recycling an old one, replacing a dead one, and
stepping aside for anyone listening to checkouts. The pool is PostgreSQL's (asyncpg); the
other engines keep SQLAlchemy's, which ``test_the_pool_class`` checks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.pool import AsyncAdaptedQueuePool

from transom import App, Settings
from transom.db import Database, DatabaseConfig, Session, make_base, setup
from transom.db._pool import TransomPool

from .conftest import Servers, require_backend

pytestmark = pytest.mark.anyio

Base = make_base(name="PoolBase")


class Lamp(Base):  # type: ignore[misc,valid-type]
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


@pytest.fixture(params=["postgresql"])
def pg_url(request: pytest.FixtureRequest, servers: Servers) -> str:
    require_backend(request.param)
    return servers.url(request.param)


@pytest.fixture
async def lamps(pg_url: str) -> AsyncIterator[str]:
    database = Database(DatabaseConfig(url=pg_url, pool_size=1), metadata=Base.metadata)
    async with database.engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)
        await conn.run_sync(Base.metadata.create_all)
        await conn.execute(Lamp.__table__.insert(), [{"id": 1, "name": "desk"}])
    await database.dispose()
    try:
        yield pg_url
    finally:
        database = Database(DatabaseConfig(url=pg_url, pool_size=1), metadata=Base.metadata)
        async with database.engine.begin() as conn:
            await conn.run_sync(Base.metadata.drop_all)
        await database.dispose()


Open = Callable[..., Database]


@pytest.fixture
async def open_db(lamps: str) -> AsyncIterator[Open]:
    """Open a one-connection Database on the lamps' server (extra config as keywords)."""
    opened: list[Database] = []

    def open_(**config: Any) -> Database:
        options: dict[str, Any] = {"pool_size": 1, "max_overflow": 0, **config}
        database = Database(DatabaseConfig(url=lamps, **options), metadata=Base.metadata)
        opened.append(database)
        return database

    yield open_
    for database in opened:
        await database.dispose()


def _count_borrows(pool: TransomPool) -> list[bool]:
    """Record each borrow's ``ready`` answer (wrapping the method on this one pool)."""
    seen: list[bool] = []
    borrow = pool.borrow

    async def counting() -> Any:
        record, ready = await borrow()
        seen.append(ready)
        return record, ready

    pool.borrow = counting  # type: ignore[method-assign]
    return seen


async def _name(database: Database) -> str | None:
    async with database.session() as s:
        lamp = await s.get(Lamp, 1)
        return None if lamp is None else lamp.name


async def test_the_pool_class(servers: Servers, backend: str) -> None:
    database = Database(DatabaseConfig(url=servers.url(backend)))
    try:
        pool = database.engine.sync_engine.pool
        if backend == "postgresql":
            assert isinstance(pool, TransomPool)
        elif backend == "mariadb":
            assert type(pool) is AsyncAdaptedQueuePool
        else:
            assert not isinstance(pool, TransomPool)
    finally:
        await database.dispose()


async def test_a_get_borrows_a_ready_connection_and_returns_it(open_db: Open) -> None:
    database = open_db()
    pool = database.engine.sync_engine.pool
    assert isinstance(pool, TransomPool)
    borrows = _count_borrows(pool)
    assert await _name(database) == "desk"  # first use: the pool opens the connection
    assert await _name(database) == "desk"
    assert await _name(database) == "desk"
    assert borrows == [False, True, True]
    assert pool.checkedout() == 0
    assert pool.checkedin() == 1


async def test_a_checkout_listener_sees_every_get(open_db: Open) -> None:
    database = open_db()
    checkouts: list[Any] = []
    event.listen(database.engine.sync_engine, "checkout", lambda *a: checkouts.append(a))
    for _ in range(3):
        assert await _name(database) == "desk"
    assert len(checkouts) == 3


async def test_a_checkout_listener_added_later_and_removed_again(open_db: Open) -> None:
    database = open_db()
    pool = database.engine.sync_engine.pool
    assert isinstance(pool, TransomPool)
    assert await _name(database) == "desk"
    assert await _name(database) == "desk"  # borrowed: the pool's verdict is cached now
    borrows = _count_borrows(pool)
    checkouts: list[Any] = []

    def on_checkout(*args: Any) -> None:
        checkouts.append(args)

    engine = database.engine.sync_engine
    event.listen(engine, "checkout", on_checkout)
    assert await _name(database) == "desk"
    assert len(checkouts) == 1
    assert borrows == []  # the listener's checkout, not a borrow
    event.remove(engine, "checkout", on_checkout)
    assert await _name(database) == "desk"
    assert borrows == [True]  # borrowing again
    assert len(checkouts) == 1


async def test_waiting_for_a_busy_pool_honours_its_timeout(open_db: Open) -> None:
    database = open_db(pool_timeout=0.3)
    assert await _name(database) == "desk"
    async with database.engine.connect() as holder:  # the pool's only connection
        await holder.execute(text("SELECT 1"))
        with pytest.raises(PoolTimeout, match="QueuePool limit"):
            await _name(database)
        # A waiter that gets the connection once it is returned.
        waiting = asyncio.ensure_future(_name(database))
        await asyncio.sleep(0.05)
        assert not waiting.done()
    assert await asyncio.wait_for(waiting, timeout=5) == "desk"


async def test_waiters_time_out_in_turn_on_one_timer(open_db: Open) -> None:
    database = open_db(pool_timeout=0.3)
    pool = database.engine.sync_engine.pool
    assert isinstance(pool, TransomPool)
    assert await _name(database) == "desk"
    loop = asyncio.get_running_loop()
    async with database.engine.connect() as holder:
        await holder.execute(text("SELECT 1"))

        async def wait_and_time() -> float:
            started = loop.time()
            with pytest.raises(PoolTimeout):
                await _name(database)
            task = asyncio.current_task()
            assert task is not None
            assert task.cancelling() == 0
            return loop.time() - started

        first = asyncio.ensure_future(wait_and_time())
        await asyncio.sleep(0.1)
        second = asyncio.ensure_future(wait_and_time())
        await asyncio.sleep(0.05)
        assert len(pool._waiters) == 2
        waited = await asyncio.gather(first, second)
        # Each one waited its own pool_timeout, not the first one's deadline.
        assert all(0.28 <= w < 1.5 for w in waited), waited
        assert not pool._waiters
        assert pool._watchdog is None


async def test_a_waiter_served_in_time_is_left_alone(open_db: Open) -> None:
    database = open_db(pool_timeout=0.4)
    pool = database.engine.sync_engine.pool
    assert isinstance(pool, TransomPool)
    assert await _name(database) == "desk"
    holder = await database.engine.connect()
    await holder.execute(text("SELECT 1"))
    first = asyncio.ensure_future(pool.borrow())  # deadline 0.4
    await asyncio.sleep(0.2)
    second = asyncio.ensure_future(pool.borrow())  # deadline 0.6
    await asyncio.sleep(0.05)
    await holder.close()
    record, ready = await asyncio.wait_for(first, timeout=5)
    assert ready
    assert record is not None
    # Hold it past the first deadline: the timer fires there and must leave the second
    # waiter alone until its own deadline, by which time it has the connection.
    await asyncio.sleep(0.25)
    assert not second.done()
    await pool.give_back(record)
    record, ready = await asyncio.wait_for(second, timeout=5)
    assert ready
    assert record is not None
    await pool.give_back(record)
    assert not pool._waiters
    assert await _name(database) == "desk"


async def test_a_cancelled_waiter_is_cancelled_not_timed_out(open_db: Open) -> None:
    database = open_db(pool_timeout=5)
    pool = database.engine.sync_engine.pool
    assert isinstance(pool, TransomPool)
    assert await _name(database) == "desk"
    async with database.engine.connect() as holder:
        await holder.execute(text("SELECT 1"))
        waiting = asyncio.ensure_future(_name(database))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert not pool._waiters
    assert await _name(database) == "desk"  # the connection went back to the queue


async def test_a_busy_pool_answers_503_through_the_app(lamps: str) -> None:
    app = App(Settings(secret_key="test-secret"))
    database = setup(
        app,
        DatabaseConfig(url=lamps, pool_size=1, max_overflow=0, pool_timeout=0.2, retry_after=7),
        metadata=Base.metadata,
    )

    @app.get("/lamp")
    async def show(db: Session) -> dict[str, str]:
        lamp = await db.get_or_404(Lamp, 1)
        return {"name": lamp.name}

    async with app.async_test_client() as client:
        assert (await client.get("/lamp")).json() == {"name": "desk"}
        async with database.engine.connect() as holder:
            await holder.execute(text("SELECT 1"))
            r = await client.get("/lamp")
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"] == "7"
        assert (await client.get("/lamp")).json() == {"name": "desk"}


async def test_an_idle_connection_is_pinged_before_it_is_borrowed(open_db: Open) -> None:
    database = open_db(pool_ping_idle=0.05)
    engine = database.engine.sync_engine
    pool = engine.pool
    assert isinstance(pool, TransomPool)
    assert pool.ping_idle == 0.05
    pings: list[Any] = []
    ping = engine.dialect.do_ping

    def counting_ping(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return ping(dbapi_connection)

    engine.dialect.do_ping = counting_ping  # type: ignore[method-assign]
    borrows = _count_borrows(pool)
    assert await _name(database) == "desk"
    assert await _name(database) == "desk"  # used a moment ago: borrowed, no ping
    assert pings == []
    await asyncio.sleep(0.1)
    assert await _name(database) == "desk"  # idle: the ordinary checkout pings it
    assert len(pings) == 1
    assert borrows == [False, True, False]


async def test_a_connection_killed_while_pooled_is_replaced(open_db: Open) -> None:
    # No idle ping (60 s): the borrowed read itself meets the dead connection, then the
    # ordinary path runs it again on a new one and the caller sees only the answer.
    database = open_db(pool_ping_idle=60)
    connects: list[Any] = []
    event.listen(database.engine.sync_engine, "connect", lambda *a: connects.append(a))
    killer = open_db()
    async with database.session() as s:
        pid = (await s.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    async with killer.engine.connect() as conn:
        await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    await asyncio.sleep(0.1)
    assert await _name(database) == "desk"
    assert len(connects) == 2
    assert await _name(database) == "desk"
    assert len(connects) == 2  # the replacement is pooled and reused


async def test_an_old_connection_is_recycled(open_db: Open) -> None:
    database = open_db(pool_recycle=1, pool_ping_idle=60)  # no ping to hide behind
    connects: list[Any] = []
    event.listen(database.engine.sync_engine, "connect", lambda *a: connects.append(a))
    assert await _name(database) == "desk"
    assert await _name(database) == "desk"
    assert len(connects) == 1
    await asyncio.sleep(1.1)
    assert await _name(database) == "desk"
    assert len(connects) == 2


async def test_a_disposed_pool_is_rebuilt_with_the_shortcut(open_db: Open) -> None:
    database = open_db(pool_ping_idle=0.5)
    assert await _name(database) == "desk"
    await database.engine.dispose()
    pool = database.engine.sync_engine.pool
    assert isinstance(pool, TransomPool)
    assert pool.ping_idle == 0.5
    borrows = _count_borrows(pool)
    assert await _name(database) == "desk"
    assert await _name(database) == "desk"
    assert borrows == [False, True]


def _closing_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Log lines of SQLAlchemy failing to close a connection (outside a greenlet, say)."""
    return [
        record.getMessage()
        for record in caplog.records
        if "closing connection" in record.getMessage().lower()
        or "greenlet" in record.getMessage().lower()
        or (record.exc_info is not None and "greenlet" in repr(record.exc_info[1]).lower())
    ]


async def test_a_borrowed_connection_returned_to_a_full_queue_is_closed_quietly(
    open_db: Open, caplog: pytest.LogCaptureFixture
) -> None:
    # The queue holds one connection; a second one is the pool's overflow. A borrowed
    # connection that comes back while the queue is full again must be closed, an asyncio
    # operation: through SQLAlchemy's greenlet, or it fails and logs "Exception closing".
    database = open_db(max_overflow=1)
    pool = database.engine.sync_engine.pool
    assert isinstance(pool, TransomPool)
    assert await _name(database) == "desk"  # the pool's first connection, in the queue now
    record, ready = await pool.borrow()
    assert ready
    assert record is not None
    async with database.engine.connect() as other:  # the queue is empty: an overflow one
        await other.execute(text("SELECT 1"))
        assert pool.overflow() == 1
    assert pool.checkedin() == 1  # the overflow connection filled the queue again
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.pool")
    closed = record.dbapi_connection
    assert closed is not None
    await pool.give_back(record)
    assert _closing_errors(caplog) == []
    assert closed.driver_connection.is_closed()  # closed, not left open and forgotten
    assert pool.checkedout() == 0
    assert pool.overflow() == 0
    assert pool.checkedin() == 1
    assert await _name(database) == "desk"


async def _backends(database: Database, name: str) -> int:
    """How many server connections carry ``application_name`` ``name`` right now."""
    async with database.engine.connect() as conn:
        count = await conn.scalar(
            text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"),
            {"name": name},
        )
    return int(count or 0)


async def test_many_gets_on_a_small_pool_answer_and_leave_nothing_behind(
    lamps: str, caplog: pytest.LogCaptureFixture
) -> None:
    name = f"transom-pool-{id(caplog)}"
    app = App(Settings(secret_key="test-secret"))
    database = setup(
        app,
        DatabaseConfig(
            url=lamps,
            pool_size=1,
            max_overflow=1,
            pool_timeout=30,
            engine_options={"connect_args": {"server_settings": {"application_name": name}}},
        ),
        metadata=Base.metadata,
    )

    @app.get("/lamps/{lamp_id}")
    async def show(lamp_id: int, db: Session) -> dict[str, str]:
        lamp = await db.get_or_404(Lamp, lamp_id)
        return {"name": lamp.name}

    caplog.set_level(logging.WARNING)
    async with app.async_test_client() as client:
        for _ in range(5):  # rounds: the overflow connection comes and goes
            answers = await asyncio.gather(*(client.get("/lamps/1") for _ in range(40)))
            assert [r.status_code for r in answers] == [200] * 40
            assert {r.json()["name"] for r in answers} == {"desk"}
        assert _closing_errors(caplog) == []
        pool = database.engine.sync_engine.pool
        assert isinstance(pool, TransomPool)
        assert pool.checkedout() == 0
        assert pool.overflow() <= 0
        # No connection left open outside the pool: the server sees the queued one only
        # (counted from a connection of the same pool, which is that one).
        assert await _backends(database, name) == 1


async def test_a_discarded_connection_leaves_a_full_queue_quietly(
    open_db: Open, caplog: pytest.LogCaptureFixture
) -> None:
    database = open_db(max_overflow=1)
    pool = database.engine.sync_engine.pool
    assert isinstance(pool, TransomPool)
    assert await _name(database) == "desk"
    record, ready = await pool.borrow()
    assert ready
    assert record is not None
    async with database.engine.connect() as other:
        await other.execute(text("SELECT 1"))
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.pool")
    dropped = record.dbapi_connection
    assert dropped is not None
    pool.discard(record, ConnectionResetError("gone"))  # as after a cancelled statement
    assert _closing_errors(caplog) == []
    assert dropped.driver_connection.is_closed()
    assert (pool.checkedout(), pool.overflow(), pool.checkedin()) == (0, 0, 1)
    assert await _name(database) == "desk"
