"""``transom.db.hooks``: per-engine hooks on public events, and nothing installed process-wide."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import sqlalchemy.event.registry
from sqlalchemy import delete, func, select, text
from sqlalchemy.engine import Engine

from transom.db import Database, hooks
from transom.db.hooks import locks_rows

from .models import Author

pytestmark = pytest.mark.anyio


def test_locks_rows_sees_with_for_update() -> None:
    plain = select(Author).where(Author.id == 1)
    assert not locks_rows(plain)
    assert not locks_rows(select(func.count()).select_from(Author))
    assert locks_rows(plain.with_for_update())
    assert locks_rows(plain.with_for_update(read=True))  # FOR SHARE
    assert locks_rows(plain.with_for_update(nowait=True, of=Author))
    assert locks_rows(select(Author.name).with_for_update(skip_locked=True).limit(1))
    assert not locks_rows(delete(Author))  # not a SELECT: a write anyway
    assert not locks_rows(text("SELECT 1 FOR UPDATE"))  # text SQL counts as a write anyway


async def _begun_after(database: Database, stmt: Any) -> bool:
    """Whether the driver's connection is inside a transaction after running ``stmt``."""
    async with database.session() as s:
        await s.execute(stmt)
        raw = await (await s.connection()).get_raw_connection()
        driver: Any = raw.driver_connection
        if database.engine.dialect.name == "postgresql":
            return bool(driver.is_in_transaction())  # asyncpg's
        return bool(driver.in_transaction)  # sqlite3's (aiosqlite's)


async def test_sqlite_begins_at_the_first_write_or_locking_read(database: Database) -> None:
    """SQLite renders no ``FOR UPDATE``; the read must still take the write lock first."""
    if database.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's lazy BEGIN: tests/db/test_sessions.py")
    assert not await _begun_after(database, select(Author))
    assert await _begun_after(database, select(Author).with_for_update())
    assert await _begun_after(database, delete(Author).where(Author.id == -1))


async def test_statement_kind_is_read_once_per_compiled_statement(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lazy BEGIN looks at a statement's structure once, not before every execution.

    SQLAlchemy's compiled cache hands back the same compiled statement for the same query, so
    the walk over its children (``locks_rows``) runs once; a locking read is still told
    apart from the plain one it resembles, and still begins the transaction.
    """
    if database.engine.dialect.name not in {"postgresql", "sqlite"}:
        pytest.skip("the lazy BEGIN is PostgreSQL's (asyncpg) and SQLite's")
    walks: list[Any] = []

    def counting(statement: Any) -> bool:
        walks.append(statement)
        return locks_rows(statement)

    monkeypatch.setattr(hooks, "locks_rows", counting)
    for _ in range(5):
        assert not await _begun_after(database, select(Author).where(Author.id == 1))
    assert len(walks) == 1
    for _ in range(3):
        assert await _begun_after(database, select(Author).where(Author.id == 1).with_for_update())
    assert len(walks) == 2


async def test_no_listener_registry_patched_and_nothing_stored_on_engines(
    database: Database,
) -> None:
    async with database.session() as s:
        await s.get(Author, 1)
        await s.execute(select(Author))
    # Every function of SQLAlchemy's listener registry is SQLAlchemy's own, unwrapped.
    for name, value in vars(sqlalchemy.event.registry).items():
        if inspect.isfunction(value):
            assert not hasattr(value, "__wrapped__"), name  # functools.wraps marks a wrapper
    engine: Engine = database.engine.sync_engine
    for obj in (engine, engine.dialect, engine.pool):
        assert not [key for key in vars(obj) if "transom" in key.lower()], obj
    assert type(engine.pool).__module__.startswith("sqlalchemy.")
