"""The pools Transom sets up are SQLAlchemy's own, and its idle ping is a checkout listener.

Each engine gets SQLAlchemy's ``AsyncAdaptedQueuePool`` (``StaticPool`` for in-memory SQLite)
with the configured size and timeout; these tests check what a request sees of it: waiting
with the pool's timeout (then 503), pinging a connection that sat idle, recycling an old one,
replacing a dead one, and many concurrent requests on a small pool leaving no connection
behind and logging no failed close.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.pool import AsyncAdaptedQueuePool, StaticPool

from transom import App, Settings
from transom.db import Database, DatabaseConfig, DbSessionDep, make_base

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


async def _name(database: Database) -> str | None:
    async with database.session() as s:
        lamp = await s.get(Lamp, 1)
        return None if lamp is None else lamp.name


async def test_the_pool_class(servers: Servers, backend: str) -> None:
    database = Database(DatabaseConfig(url=servers.url(backend), pool_size=3, pool_timeout=4))
    try:
        pool = database.engine.sync_engine.pool
        assert type(pool) is AsyncAdaptedQueuePool
        assert pool.size() == 3
        assert pool.timeout() == 4
    finally:
        await database.dispose()
    memory = Database(DatabaseConfig(url="sqlite+aiosqlite://"))
    try:
        assert type(memory.engine.sync_engine.pool) is StaticPool
    finally:
        await memory.dispose()


async def test_a_checkout_listener_sees_every_get(open_db: Open) -> None:
    database = open_db()
    checkouts: list[Any] = []
    event.listen(database.engine.sync_engine, "checkout", lambda *a: checkouts.append(a))
    for _ in range(3):
        assert await _name(database) == "desk"
    assert len(checkouts) == 3


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


async def test_a_cancelled_waiter_is_cancelled_not_timed_out(open_db: Open) -> None:
    database = open_db(pool_timeout=5)
    pool = database.engine.sync_engine.pool
    assert isinstance(pool, AsyncAdaptedQueuePool)
    assert await _name(database) == "desk"
    async with database.engine.connect() as holder:
        await holder.execute(text("SELECT 1"))
        waiting = asyncio.ensure_future(_name(database))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert pool.checkedout() == 1  # the holder's only
    assert await _name(database) == "desk"  # the connection went back to the queue


async def test_a_busy_pool_answers_503_through_the_app(lamps: str) -> None:
    app = App(Settings(secret_key="test-secret"))
    database = app.install(
        Database(
            DatabaseConfig(url=lamps, pool_size=1, max_overflow=0, pool_timeout=0.2, retry_after=7),
            metadata=Base.metadata,
        )
    )

    @app.get("/lamp")
    async def show(db: DbSessionDep) -> dict[str, str]:
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


async def test_an_idle_connection_is_pinged_before_it_is_used(open_db: Open) -> None:
    database = open_db(pool_ping_idle=0.05)
    engine = database.engine.sync_engine
    pings: list[Any] = []
    ping = engine.dialect.do_ping

    def counting_ping(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return ping(dbapi_connection)

    engine.dialect.do_ping = counting_ping  # type: ignore[method-assign]
    assert await _name(database) == "desk"
    assert await _name(database) == "desk"  # used a moment ago: no ping
    assert pings == []
    await asyncio.sleep(0.1)
    assert await _name(database) == "desk"  # idle: pinged on checkout
    assert len(pings) == 1


async def test_an_idle_connection_found_dead_is_replaced_unseen(open_db: Open) -> None:
    database = open_db(pool_ping_idle=0.05)
    connects: list[Any] = []
    event.listen(database.engine.sync_engine, "connect", lambda *a: connects.append(a))
    killer = open_db()
    async with database.session() as s:
        pid = (await s.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    async with killer.engine.connect() as conn:
        await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    await asyncio.sleep(0.1)
    assert await _name(database) == "desk"  # the ping failed, a new connection answered
    assert len(connects) == 2


async def test_a_connection_killed_while_pooled_is_replaced(open_db: Open) -> None:
    # No idle ping (60 s): the read itself meets the dead connection and fails (a request
    # answers 503); SQLAlchemy discards it, and the next read gets a new one.
    database = open_db(pool_ping_idle=60)
    connects: list[Any] = []
    event.listen(database.engine.sync_engine, "connect", lambda *a: connects.append(a))
    killer = open_db()
    async with database.session() as s:
        pid = (await s.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    async with killer.engine.connect() as conn:
        await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    await asyncio.sleep(0.1)
    with pytest.raises(DBAPIError) as failed:
        await _name(database)
    assert failed.value.connection_invalidated
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


def _closing_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Log lines of SQLAlchemy failing to close a connection (outside a greenlet, say)."""
    return [
        record.getMessage()
        for record in caplog.records
        if "closing connection" in record.getMessage().lower()
        or "greenlet" in record.getMessage().lower()
        or (record.exc_info is not None and "greenlet" in repr(record.exc_info[1]).lower())
    ]


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
    database = app.install(
        Database(
            DatabaseConfig(
                url=lamps,
                pool_size=1,
                max_overflow=1,
                pool_timeout=30,
                engine_options={"connect_args": {"server_settings": {"application_name": name}}},
            ),
            metadata=Base.metadata,
        )
    )

    @app.get("/lamps/{lamp_id}")
    async def show(lamp_id: int, db: DbSessionDep) -> dict[str, str]:
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
        assert isinstance(pool, AsyncAdaptedQueuePool)
        assert pool.checkedout() == 0
        assert pool.overflow() <= 0
        # No connection left open outside the pool: the server sees the queued one only
        # (counted from a connection of the same pool, which is that one).
        assert await _backends(database, name) == 1
