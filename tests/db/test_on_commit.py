"""``DbSession.on_commit``: callbacks that run if and only if the transaction commits, on
SQLite, PostgreSQL and MariaDB, through an explicit ``commit()`` and the request's own."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import func, select

from transom import App, HTTPException, Settings
from transom.db import Database, DbSession, DbSessionDep

from .models import Author

pytestmark = pytest.mark.anyio


async def count_authors(db: Database) -> int:
    async with db.session() as s:
        return int((await s.execute(select(func.count()).select_from(Author))).scalar_one())


async def test_runs_after_the_commit_in_order_plain_and_async(database: Database) -> None:
    calls: list[object] = []

    async def later() -> None:
        await asyncio.sleep(0)
        calls.append(("async", await count_authors(database)))  # the row is visible

    async with database.session() as db:
        db.add(Author(email="a@example.com", name="Ann"))
        await db.flush()
        db.on_commit(lambda: calls.append("plain"))
        db.on_commit(later)
        assert calls == []  # not at registration, not at the flush
        await db.commit()
        # commit() returns once they ran.
        assert calls == ["plain", ("async", 1)]
        # The next transaction starts with none.
        db.add(Author(email="b@example.com", name="Bob"))
        await db.commit()
    assert calls == ["plain", ("async", 1)]


async def test_a_rollback_drops_them(database: Database) -> None:
    calls: list[str] = []
    async with database.session() as db:
        db.add(Author(email="a@example.com", name="Ann"))
        await db.flush()
        db.on_commit(lambda: calls.append("rolled back"))
        await db.rollback()
        db.add(Author(email="b@example.com", name="Bob"))
        await db.flush()
        db.on_commit(lambda: calls.append("committed"))
        await db.commit()
    assert calls == ["committed"]
    # Closing a session without committing drops them too.
    async with database.session() as db:
        db.add(Author(email="c@example.com", name="Cid"))
        await db.flush()
        db.on_commit(lambda: calls.append("closed"))
    await asyncio.sleep(0.01)
    assert calls == ["committed"]


async def test_savepoints_released_wait_for_the_outer_commit(database: Database) -> None:
    calls: list[str] = []
    async with database.session() as db:
        db.add(Author(email="a@example.com", name="Ann"))
        await db.flush()
        db.on_commit(lambda: calls.append("outer"))
        async with db.begin_nested():
            db.on_commit(lambda: calls.append("released"))
        assert calls == []  # a savepoint's release is not the commit
        try:
            async with db.begin_nested():
                db.on_commit(lambda: calls.append("rolled back savepoint"))
                raise ValueError("undo this savepoint")
        except ValueError:
            pass
        db.on_commit(lambda: calls.append("after"))
        await db.commit()
    assert calls == ["outer", "released", "after"]


async def test_outside_a_transaction_it_runs_at_once(database: Database) -> None:
    calls: list[str] = []
    async with database.session() as db:
        assert not db.in_transaction()
        db.on_commit(lambda: calls.append("now"))
        for _ in range(10):
            if calls:
                break
            await asyncio.sleep(0)
    assert calls == ["now"]


async def test_a_failing_callback_is_logged_and_the_next_runs(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    def broken() -> None:
        raise RuntimeError("the mail server refused")

    async with database.session() as db:
        db.add(Author(email="a@example.com", name="Ann"))
        await db.flush()
        db.on_commit(broken)
        db.on_commit(lambda: calls.append("next"))
        with caplog.at_level(logging.ERROR, logger="transom.db"):
            await db.commit()  # the commit itself succeeded: no exception here
    assert calls == ["next"]
    failed = [r for r in caplog.records if "on_commit callback" in r.getMessage()]
    assert failed
    assert failed[0].exc_info is not None
    assert "the mail server refused" in str(failed[0].exc_info[1])
    assert await count_authors(database) == 1


async def test_the_request_commit_runs_them_and_an_error_does_not(database: Database) -> None:
    app = App(Settings(secret_key="test-secret"))
    app.install(Database(database.config, metadata=database.metadatas))
    calls: list[str] = []

    @app.post("/authors/{email}")
    async def create(email: str, db: DbSessionDep, fail: bool = False) -> dict[str, str]:
        assert isinstance(db, DbSession)
        await db.save(Author(email=email, name="x"))

        async def announce() -> None:
            calls.append(email)

        db.on_commit(announce)
        if fail:
            raise HTTPException(409, detail="refused")
        return {"email": email}

    async with app.async_test_client() as client:
        assert (await client.post("/authors/a@example.com")).status_code == 200
        # The response comes after the request's commit and its callbacks.
        assert calls == ["a@example.com"]
        assert (await client.post("/authors/b@example.com?fail=true")).status_code == 409
    assert calls == ["a@example.com"]
    assert await count_authors(database) == 1
