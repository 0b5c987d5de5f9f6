"""``DbSession.get`` by primary key: SQLAlchemy's own ``get``, on the three engines.

``DbSession.get`` adds one thing to ``AsyncSession.get`` (a key the column cannot hold finds
nothing, see test_errors.py); everything else must be what the ORM does: values and types,
the identity map, relationships and deferred columns, listeners, transactions, errors,
cancellation and outages. (There was a private fast path here once; these tests stay as the
contract any future one must keep.)
"""

from __future__ import annotations

import asyncio
import enum
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Numeric,
    String,
    event,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from _services import TcpProxy
from transom import App, Settings
from transom.db import Database, DatabaseConfig, DbSessionDep, make_base

pytestmark = pytest.mark.anyio

Base = make_base(name="GetBase")


class Shouting(TypeDecorator[str]):
    """Stores text as given, loads it upper-cased: a result processor every load must run."""

    impl = String(40)
    cache_ok = True

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else value.upper()


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Gadget(Base):  # type: ignore[misc,valid-type]
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    weight: Mapped[float] = mapped_column(Float)
    made_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    colour: Mapped[Colour]
    specs: Mapped[dict[str, Any]] = mapped_column(JSON)
    label: Mapped[str] = mapped_column(Shouting)
    note: Mapped[str | None] = mapped_column(String(40))
    parts: Mapped[list[Part]] = relationship(back_populates="gadget")


class Part(Base):  # type: ignore[misc,valid-type]
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    gadget_id: Mapped[int] = mapped_column(ForeignKey("gadget.id"))
    gadget: Mapped[Gadget] = relationship(back_populates="parts", lazy="selectin")


class Pair(Base):  # type: ignore[misc,valid-type]
    left: Mapped[int] = mapped_column(primary_key=True)
    right: Mapped[str] = mapped_column(String(10), primary_key=True)
    value: Mapped[int]


class Document(Base):  # type: ignore[misc,valid-type]
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = deferred(mapped_column(String(200)))


class Missing(Base):  # type: ignore[misc,valid-type]
    """Mapped, but its table is never created."""

    id: Mapped[int] = mapped_column(primary_key=True)


MADE_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture
async def database(db_url: str) -> AsyncIterator[Database]:
    database = Database(DatabaseConfig(url=db_url), metadata=Base.metadata)
    tables = [t for t in Base.metadata.sorted_tables if t.name != "missing"]
    async with database.engine.begin() as conn:
        await conn.run_sync(lambda sync: Base.metadata.drop_all(sync, tables=tables))
        await conn.run_sync(lambda sync: Base.metadata.create_all(sync, tables=tables))
    async with database.session() as s:
        for i in (1, 2):
            s.add(
                Gadget(
                    id=i,
                    name=f"gadget {i}",
                    price=Decimal("12.30") * i,
                    weight=1.5 * i,
                    made_at=MADE_AT,
                    colour=Colour.BLUE,
                    specs={"volts": 12, "tags": ["a", "b"]},
                    label="quiet",
                )
            )
        s.add(Pair(left=1, right="x", value=10))
        s.add(Document(id=1, title="t", body="long body"))
        await s.commit()
        s.add(Part(gadget_id=1))
        await s.commit()
    try:
        yield database
    finally:
        async with database.engine.begin() as conn:
            await conn.run_sync(lambda sync: Base.metadata.drop_all(sync, tables=tables))
        await database.dispose()


async def test_values_and_types_match_a_query(database: Database) -> None:
    async with database.session() as s:
        gadget = await s.get(Gadget, 2)
    async with database.session() as s:
        queried = (await s.execute(select(Gadget).where(Gadget.id == 2))).scalar_one()
    assert gadget is not None
    for column in Gadget.__table__.columns:
        assert getattr(gadget, column.key) == getattr(queried, column.key), column.key
    assert gadget.price == Decimal("24.60")
    assert isinstance(gadget.price, Decimal)
    assert gadget.weight == 3.0
    assert isinstance(gadget.weight, float)
    assert gadget.made_at.replace(tzinfo=None) == MADE_AT.replace(tzinfo=None)
    assert gadget.colour is Colour.BLUE
    assert gadget.specs == {"volts": 12, "tags": ["a", "b"]}
    assert gadget.label == "QUIET"  # the TypeDecorator's result processor ran
    assert gadget.note is None


async def test_reads_see_the_sessions_own_writes_until_rolled_back(database: Database) -> None:
    async with database.session() as s:
        for ident in (1, 2, 1):
            assert await s.get(Gadget, ident) is not None
        await s.execute(update(Gadget).where(Gadget.id == 2).values(note="pending"))
        s.expunge_all()
        gadget = await s.get(Gadget, 2)  # in the session's transaction: sees its own write
        assert gadget is not None
        assert gadget.note == "pending"
        await s.rollback()
        s.expunge_all()
        gadget = await s.get(Gadget, 2)
        assert gadget is not None
        assert gadget.note is None


async def test_the_instance_is_persistent_in_the_session(database: Database) -> None:
    async with database.session() as s:
        gadget = await s.get(Gadget, 1)
        assert gadget is not None
        assert gadget in s
        assert await s.get(Gadget, 1) is gadget  # the identity map answers the second time
        same = (await s.execute(select(Gadget).where(Gadget.id == 1))).scalar_one()
        assert same is gadget
        assert not s.dirty
        gadget.name = "renamed"
        assert gadget in s.dirty
        await s.commit()
    async with database.session() as s:
        reloaded = await s.get(Gadget, 1)
        assert reloaded is not None
        assert reloaded.name == "renamed"


async def test_lazy_and_eager_relationships_load_as_usual(database: Database) -> None:
    async with database.session() as s:
        gadget = await s.get(Gadget, 1)
        assert gadget is not None
        parts = await s.run_sync(lambda _: list(gadget.parts))  # a lazy load, on first access
        assert len(parts) == 1
        part = await s.get(Part, parts[0].id)  # a UUID key, through its bind processor
        assert part is parts[0]
    async with database.session() as s:
        (part_id,) = (await s.execute(select(Part.id))).scalars()
        part = await s.get(Part, part_id)
        assert part is not None
        assert "gadget" in part.__dict__  # lazy="selectin": loaded with the row
        assert part.gadget.name == "gadget 1"


async def test_deferred_columns_stay_deferred(database: Database) -> None:
    async with database.session() as s:
        document = await s.get(Document, 1)
        assert document is not None
        assert document.title == "t"
        assert "body" not in document.__dict__
        assert await s.run_sync(lambda _: document.body) == "long body"


async def test_composite_keys_as_tuple_and_dict(database: Database) -> None:
    async with database.session() as s:
        pair = await s.get(Pair, (1, "x"))
        assert pair is not None
        assert pair.value == 10
        assert await s.get(Pair, {"left": 1, "right": "x"}) is pair
        assert await s.get(Pair, (1, "y")) is None


async def test_missing_rows_and_404(database: Database) -> None:
    app = App(Settings(secret_key="test-secret"))
    app.install(Database(database.config, metadata=database.metadatas))

    @app.get("/gadgets/{gadget_id}")
    async def show(gadget_id: int, db: DbSessionDep) -> dict[str, Any]:
        gadget = await db.get_or_404(Gadget, gadget_id)
        return {"name": gadget.name}

    async with app.async_test_client() as client:
        assert (await client.get("/gadgets/2")).json() == {"name": "gadget 2"}
        r = await client.get("/gadgets/99")
        assert r.status_code == 404
        assert r.json()["detail"] == "Gadget not found"


async def test_reads_after_a_write_see_the_transaction(database: Database) -> None:
    async with database.session() as s:
        await s.execute(update(Gadget).where(Gadget.id == 2).values(note="pending"))
        gadget = await s.get(Gadget, 2)
        assert gadget is not None
        assert gadget.note == "pending"
        await s.rollback()
    async with database.session() as s:
        gadget = await s.get(Gadget, 2)
        assert gadget is not None
        assert gadget.note is None


async def test_pending_changes_are_flushed_first(database: Database) -> None:
    async with database.session() as s:
        s.add(
            Gadget(
                id=3,
                name="new",
                price=Decimal(1),
                weight=1.0,
                made_at=MADE_AT,
                colour=Colour.RED,
                specs={},
                label="x",
            )
        )
        found = await s.get(Gadget, 3)  # autoflush, as with any query
        assert found is not None
        assert found.name == "new"
        await s.rollback()


async def test_an_expired_instance_is_refreshed(database: Database) -> None:
    async with database.session() as s:
        gadget = await s.get(Gadget, 1)
        assert gadget is not None
        async with database.session() as other:
            await other.execute(update(Gadget).where(Gadget.id == 1).values(name="changed"))
            await other.commit()
        await s.rollback()  # MariaDB's and SQLite's snapshot would hide the other commit
        s.expire(gadget)
        assert await s.get(Gadget, 1) is gadget
        assert gadget.name == "changed"


async def test_statement_and_load_listeners_see_every_get(database: Database) -> None:
    statements: list[str] = []
    loads: list[int] = []
    orm_executes: list[Any] = []

    def on_statement(*args: Any) -> None:
        statements.append(args[2])

    def on_load(target: Gadget, _context: Any) -> None:
        loads.append(target.id)

    event.listen(database.engine.sync_engine, "before_cursor_execute", on_statement)
    try:
        async with database.session() as s:
            await s.get(Gadget, 1)
        assert any("gadget" in sql.lower() for sql in statements)
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", on_statement)

    begins: list[Any] = []

    def on_begin(connection: Any) -> None:
        begins.append(connection)

    event.listen(database.engine.sync_engine, "begin", on_begin)
    try:
        async with database.session() as s:
            await s.get(Gadget, 1)  # e.g. a tenant's SET LOCAL must run before every read
        assert len(begins) == 1
    finally:
        event.remove(database.engine.sync_engine, "begin", on_begin)

    event.listen(Gadget, "load", on_load)
    try:
        async with database.session() as s:
            await s.get(Gadget, 2)
        assert loads == [2]
    finally:
        event.remove(Gadget, "load", on_load)

    async with database.session() as s:
        event.listen(s.sync_session, "do_orm_execute", orm_executes.append)
        await s.get(Gadget, 1)
        assert len(orm_executes) == 1


async def test_statement_listeners_added_after_a_get_see_the_next_one(
    database: Database,
) -> None:
    async with database.session() as s:
        await s.get(Gadget, 1)  # a get before the listener exists
    statements: list[str] = []

    def on_statement(*args: Any) -> None:
        statements.append(args[2])

    for target in (database.engine.sync_engine, Engine):  # this engine, then every engine
        event.listen(target, "before_cursor_execute", on_statement)
        try:
            async with database.session() as s:
                await s.get(Gadget, 2)
            assert any("gadget" in sql.lower() for sql in statements), target
        finally:
            event.remove(target, "before_cursor_execute", on_statement)
        statements.clear()
        async with database.session() as s:
            assert (await s.get(Gadget, 1)) is not None
        assert statements == []


async def test_a_missing_table_raises_the_database_error(database: Database) -> None:
    # Outside a transaction, and inside one (after a write), where the failed statement
    # aborts the transaction: the error must still be the database's own, not "aborted".
    async with database.session() as s:
        with pytest.raises(DBAPIError) as outside:
            await s.get(Missing, 1)
    assert "missing" in str(outside.value.orig)  # the driver's own message names the table
    async with database.session() as s:
        await s.execute(update(Gadget).where(Gadget.id == 1).values(note="x"))
        with pytest.raises(DBAPIError) as inside:
            await s.get(Missing, 1)
        await s.rollback()
    assert "missing" in str(inside.value.orig)


async def test_a_bad_key_type_raises_and_the_session_goes_on(
    database: Database, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite and MariaDB compare a string key with an integer column")
    async with database.session() as s:
        with pytest.raises(DBAPIError):
            await s.get(Gadget, "not a number")
    async with database.session() as s:
        assert await s.get(Gadget, 1) is not None


async def test_one_connection_is_enough(db_url: str, database: Database) -> None:
    """A session reads and writes on the one connection it holds (a pool of one suffices)."""
    small = Database(
        DatabaseConfig(url=db_url, pool_size=1, max_overflow=0, pool_timeout=2),
        metadata=Base.metadata,
    )
    try:

        async def request() -> str:
            async with small.session() as s:
                gadget = await s.get(Gadget, 1)
                assert gadget is not None
                gadget.note = "seen"
                await s.flush()
                other = await s.get(Gadget, 2)
                assert other is not None
                await s.commit()
                return other.name

        assert await asyncio.wait_for(request(), timeout=10) == "gadget 2"
        results = await asyncio.wait_for(asyncio.gather(*(request() for _ in range(4))), 20)
        assert results == ["gadget 2"] * 4
    finally:
        await small.dispose()


async def test_after_commit_listeners_still_see_a_read_only_request(
    database: Database,
) -> None:
    app = App(Settings(secret_key="test-secret"))
    app.install(Database(database.config, metadata=database.metadatas))
    commits: list[str] = []

    @app.get("/read/{count}")
    async def read(db: DbSessionDep, count: int) -> dict[str, Any]:
        event.listen(db.sync_session, "after_commit", lambda _s: commits.append(f"{count}"))
        for ident in range(1, count + 1):
            await db.get(Gadget, ident)
            assert db.in_transaction()
        return {}

    async with app.async_test_client() as client:
        assert (await client.get("/read/1")).status_code == 200
        assert (await client.get("/read/2")).status_code == 200
    assert commits == ["1", "2"]


@pytest.fixture(params=["postgresql"])
def server_url(request: pytest.FixtureRequest, servers: Any) -> str:
    url: str = servers.url(request.param)
    return url


async def test_an_outage_during_a_get_gives_503_then_recovers(server_url: str) -> None:
    from sqlalchemy.engine import make_url

    real = make_url(server_url)
    proxy = TcpProxy(real.host or "127.0.0.1", real.port or 0)
    await proxy.start()
    url = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    app = App(Settings(secret_key="test-secret"))
    # A pool that is never pinged: the request itself meets the dead connections.
    database = app.install(
        Database(
            DatabaseConfig(url=url, connect_timeout=2, pool_ping_idle=60), metadata=Base.metadata
        )
    )

    @app.get("/gadget")
    async def show(db: DbSessionDep) -> dict[str, Any]:
        gadget = await db.get(Gadget, 1)
        return {"found": gadget is not None}

    tables = [Gadget.__table__]
    async with database.engine.begin() as conn:
        await conn.run_sync(lambda sync: Base.metadata.create_all(sync, tables=tables))
    try:
        async with app.async_test_client() as client:
            assert (await client.get("/gadget")).json() == {"found": False}
            await proxy.cut()  # the server is down
            r = await client.get("/gadget")
            assert r.status_code == 503, r.text
            assert "retry-after" in r.headers
            await proxy.restore()
            r = await client.get("/gadget")
            assert r.status_code == 200, r.text
            # A restart while the pool is busy (no idle ping to catch it): the request that
            # meets the dead connection answers 503, and SQLAlchemy replaces the pool's
            # connections, so the next one is served.
            await proxy.cut()
            await proxy.restore()
            r = await client.get("/gadget")
            assert r.status_code == 503, r.text
            r = await client.get("/gadget")
            assert r.status_code == 200, r.text
            assert r.json() == {"found": False}
    finally:
        async with database.engine.begin() as conn:
            await conn.run_sync(lambda sync: Base.metadata.drop_all(sync, tables=tables))
        await proxy.cut()


async def test_a_get_cancelled_mid_read_leaves_a_usable_pool(
    db_url: str, database: Database, backend: str
) -> None:
    """A read cut off by cancellation (a client gone, a timeout) must not pool a busy link."""
    if backend != "postgresql":
        pytest.skip("LOCK TABLE ... ACCESS EXCLUSIVE is PostgreSQL's")
    small = Database(
        DatabaseConfig(url=db_url, pool_size=1, max_overflow=0, pool_timeout=5),
        metadata=Base.metadata,
    )
    try:
        async with small.session() as s:
            assert await s.get(Gadget, 2) is not None  # the pool's connection is open
        for first_write in (False, True):  # outside a transaction (lazy BEGIN), then inside
            async with database.engine.connect() as locker:
                await locker.execute(text("LOCK TABLE gadget IN ACCESS EXCLUSIVE MODE"))
                async with small.session() as s:
                    if first_write:
                        await s.execute(update(Pair).values(value=11))
                    with pytest.raises(TimeoutError):
                        await asyncio.wait_for(s.get(Gadget, 1), timeout=0.3)
                await locker.rollback()
            async with small.session() as s:
                gadget = await asyncio.wait_for(s.get(Gadget, 1), timeout=5)
                assert gadget is not None
                assert gadget.name == "gadget 1"
    finally:
        await small.dispose()
