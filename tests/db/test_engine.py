"""Engine set-up per backend; here SQLite's: concurrent writers queue up instead of failing.

SQLite lets one writer at a time. A transaction that read first (every authenticated request
reads its user) and then writes must upgrade its read lock, and SQLite refuses that at once,
without waiting, while another writer is active. So a file database runs in WAL mode (readers
never block), reads before a request's first write run on their own, and the write
transaction starts with ``BEGIN IMMEDIATE`` right before that first write, where the busy
timeout applies: writers wait their turn instead of answering 503.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import ForeignKey, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Mapped, mapped_column

from transom import App, Settings
from transom.db import Database, DatabaseConfig, DbSessionDep, make_base, setup

from .conftest import Servers

pytestmark = pytest.mark.anyio

Base = make_base(name="EngineBase")


class Member(Base):  # type: ignore[misc,valid-type]
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


class Remark(Base):  # type: ignore[misc,valid-type]
    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"))
    body: Mapped[str]


@pytest.fixture
async def sqlite_url(servers: Servers) -> str:
    """A fresh SQLite file with one member and no remarks."""
    url = servers.url("sqlite", fresh=True)
    database = Database(DatabaseConfig(url=url), metadata=Base.metadata)
    await database.create_all()
    async with database.session() as s:
        s.add(Member(id=1, name="ann"))
        await s.commit()
    await database.dispose()
    return url


def _path(url: str) -> str:
    database = make_url(url).database
    assert database
    return database


@pytest.fixture
def writer(sqlite_url: str) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection to the same file, for holding its write lock."""
    connection = sqlite3.connect(_path(sqlite_url), isolation_level=None)
    yield connection
    if connection.in_transaction:
        connection.execute("ROLLBACK")
    connection.close()


def _app(url: str, **config: Any) -> tuple[App, Database]:
    app = App(Settings(secret_key="test-secret"))
    database = app.install(Database(DatabaseConfig(url=url, **config), metadata=Base.metadata))

    @app.post("/remarks")
    async def remark(db: DbSessionDep) -> dict[str, int]:
        # Read (the signed-in user, say), then write: the pattern that must not fail.
        member = await db.get_or_404(Member, 1)
        saved = await db.save(Remark(member_id=member.id, body="hi"))
        return {"id": saved.id}

    @app.get("/members/{member_id}")
    async def member(member_id: int, db: DbSessionDep) -> dict[str, str]:
        found = await db.get_or_404(Member, member_id)
        return {"name": found.name}

    return app, database


async def _remarks(database: Database) -> int:
    async with database.session() as s:
        return int((await s.scalar(select(func.count()).select_from(Remark))) or 0)


async def test_a_file_database_is_in_wal_mode(sqlite_url: str) -> None:
    database = Database(DatabaseConfig(url=sqlite_url), metadata=Base.metadata)
    try:
        async with database.engine.connect() as conn:
            assert (await conn.scalar(text("PRAGMA journal_mode"))) == "wal"
            assert (await conn.scalar(text("PRAGMA busy_timeout"))) == 5000
    finally:
        await database.dispose()


async def test_concurrent_read_then_write_requests_all_succeed(sqlite_url: str) -> None:
    app, database = _app(sqlite_url)
    async with app.async_test_client() as client:
        answers = await asyncio.gather(*(client.post("/remarks") for _ in range(20)))
    assert [r.status_code for r in answers] == [200] * 20, [r.text for r in answers]
    assert len({r.json()["id"] for r in answers}) == 20
    assert await _remarks(database) == 20


async def test_a_writer_waits_for_the_lock_within_the_busy_timeout(
    sqlite_url: str, writer: sqlite3.Connection
) -> None:
    app, database = _app(sqlite_url, sqlite_busy_timeout=30)
    async with app.async_test_client() as client:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO member (id, name) VALUES (2, 'bob')")
        # The writer commits once the request is under way (and then waiting for the lock).
        asyncio.get_running_loop().call_later(0.3, writer.execute, "COMMIT")
        r = await client.post("/remarks")
    assert r.status_code == 200, r.text
    assert await _remarks(database) == 1


async def test_reads_go_on_while_a_write_is_in_progress(
    sqlite_url: str, writer: sqlite3.Connection
) -> None:
    # A short busy timeout: a read that waited for the writer would fail instead of hanging.
    app, _ = _app(sqlite_url, sqlite_busy_timeout=0.2)
    async with app.async_test_client() as client:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE member SET name = 'changing' WHERE id = 1")
        answers = await asyncio.gather(*(client.get("/members/1") for _ in range(5)))
    assert [r.json() for r in answers] == [{"name": "ann"}] * 5  # the last committed state


async def test_a_lock_held_past_the_busy_timeout_is_a_logged_503(
    sqlite_url: str, writer: sqlite3.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    app, database = _app(sqlite_url, sqlite_busy_timeout=0.2, retry_after=3)
    caplog.set_level(logging.WARNING, logger="transom.db")
    async with app.async_test_client() as client:
        writer.execute("BEGIN IMMEDIATE")
        r = await client.post("/remarks")
        writer.execute("ROLLBACK")
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == "3"
        logged = [rec for rec in caplog.records if rec.name.startswith("transom.db")]
        assert any("database is locked" in rec.getMessage() for rec in logged), [
            rec.getMessage() for rec in logged
        ]
        assert (await client.post("/remarks")).status_code == 200  # the lock is gone
    assert await _remarks(database) == 1


async def test_without_lazy_begin_every_transaction_takes_the_write_lock(
    sqlite_url: str,
) -> None:
    app, database = _app(sqlite_url, lazy_begin=False)
    async with app.async_test_client() as client:
        answers = await asyncio.gather(*(client.post("/remarks") for _ in range(20)))
    assert [r.status_code for r in answers] == [200] * 20, [r.text for r in answers]
    assert await _remarks(database) == 20


async def test_an_autocommit_connection_is_left_in_autocommit(sqlite_url: str) -> None:
    database = Database(DatabaseConfig(url=sqlite_url), metadata=Base.metadata)
    try:
        async with database.engine.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await auto.execute(text("INSERT INTO member (id, name) VALUES (3, 'cy')"))
        # No commit, yet written: no BEGIN IMMEDIATE went out for the pool to roll back.
        async with database.session() as s:
            assert await s.get(Member, 3) is not None
    finally:
        await database.dispose()


def test_the_busy_timeout_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRANSOM_DATABASE_SQLITE_BUSY_TIMEOUT", "12.5")
    assert DatabaseConfig().sqlite_busy_timeout == 12.5
    assert (
        DatabaseConfig(
            url=f"sqlite:///{tmp_path / 'x.db'}", sqlite_busy_timeout=0
        ).sqlite_busy_timeout
        == 0
    )


# -- the database battery: installed like every battery -----------------------------------------


def _sqlite(tmp_path: Path) -> DatabaseConfig:
    return DatabaseConfig(url=f"sqlite+aiosqlite:///{tmp_path / 'battery.db'}")


def test_database_installs_like_every_battery(tmp_path: Path) -> None:
    from transom.db import get_database

    app = App()
    database = app.install(Database(_sqlite(tmp_path)))
    assert Database.of(app) is database is get_database(app)
    assert app.extensions["transom.db"] is database
    with pytest.raises(Exception, match="Database is already installed on this app"):
        app.install(Database(_sqlite(tmp_path)))
    shorthand = App()
    installed = Database(shorthand, _sqlite(tmp_path))
    assert Database.of(shorthand) is installed


def test_a_handler_taking_session_gets_a_database_with_its_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'env.db'}")
    app = App()

    @app.get("/one")
    async def one(db: DbSessionDep) -> int:
        return int((await db.execute(text("select 1"))).scalar_one())

    with app.test_client() as client:
        assert client.get("/one").json() == 1
    database = Database.of(app)
    assert app.batteries.was_required(database)
    assert str(database.engine.url).endswith("env.db")


def test_the_defaults_read_the_apps_settings(tmp_path: Path) -> None:
    class MySettings(Settings):
        database_url: str = f"sqlite+aiosqlite:///{tmp_path / 'mine.db'}"

    app = App(MySettings())

    @app.get("/one")
    async def one(db: DbSessionDep) -> int:
        return 1

    app.build()
    assert str(Database.of(app).engine.url).endswith("mine.db")


def test_setup_is_deprecated_but_still_replaces(tmp_path: Path) -> None:
    app = App()
    with pytest.warns(DeprecationWarning, match=r"app\.install\(Database\(config, metadata="):
        first = setup(app, _sqlite(tmp_path))
    other = DatabaseConfig(url=f"sqlite+aiosqlite:///{tmp_path / 'other.db'}")
    with pytest.warns(DeprecationWarning, match="is deprecated"):
        second = setup(app, other)
    assert second is first is Database.of(app)
    assert str(second.engine.url).endswith("other.db")


def test_get_database_on_an_app_that_declares_none_installs_defaults_and_warns() -> None:
    from transom.db import get_database

    app = App()
    with pytest.raises(Exception, match=r"Database is not installed on this app"):
        Database.of(app)
    with pytest.warns(DeprecationWarning, match=r"app\.install\(Database\(DatabaseConfig"):
        database = get_database(app)
    assert Database.of(app) is database
    assert app.batteries.was_required(database)
