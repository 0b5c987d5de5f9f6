"""Read routing on a real streaming replica (bench/replica.py builds a primary and a
pg_basebackup replica on this machine): reads go to the replica, a request's writes and the
reads after them to the primary; the replica stopped, reads fall back to the primary without
an error, and go back to it once it returns."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import MetaData, func, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from transom import App, Settings
from transom.db import Database, DatabaseConfig, DbSessionDep

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import replica as replica_script  # type: ignore[import-not-found]

pytestmark = pytest.mark.anyio


class Base(DeclarativeBase):
    metadata = MetaData()


class Note(Base):
    __tablename__ = "replica_note"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str]


@pytest.fixture(scope="module")
def clusters() -> Iterator[tuple[replica_script.Cluster, replica_script.Cluster]]:
    reason = replica_script.available()
    if reason:
        pytest.skip(reason)
    with replica_script.pair() as (primary, replica):
        yield primary, replica


def _app(primary: str, replica: str) -> App:
    app = App(Settings(secret_key="x" * 50))
    config = DatabaseConfig(url=primary, replica_urls=[replica], retry_after=1)
    app.install(Database(config, metadata=Base.metadata))

    @app.get("/where")
    async def where(db: DbSessionDep) -> dict[str, object]:
        on_replica = await db.scalar(text("SELECT pg_is_in_recovery()"))
        return {"replica": on_replica, "notes": await db.scalar(select(func.count(Note.id)))}

    @app.post("/notes")
    async def add(db: DbSessionDep) -> dict[str, object]:
        db.add(Note(text="hello"))
        await db.flush()
        # Read your writes: after a write the session stays on the primary.
        on_replica = await db.scalar(text("SELECT pg_is_in_recovery()"))
        return {"replica": on_replica, "notes": await db.scalar(select(func.count(Note.id)))}

    return app


async def test_reads_on_the_replica_writes_and_fallback_on_the_primary(
    clusters: tuple[replica_script.Cluster, replica_script.Cluster],
    caplog: pytest.LogCaptureFixture,
) -> None:
    primary, replica = clusters
    app = _app(primary.url, replica.url)
    database = Database.of(app)
    await database.create_all()  # on the primary; streamed to the replica
    replica_script.wait_replicated(primary.url, replica.url)
    caplog.set_level(logging.WARNING, "transom.db")
    async with app.async_test_client() as client:
        read = (await client.get("/where")).json()
        wrote = (await client.post("/notes")).json()
        replica_script.wait_replicated(primary.url, replica.url)
        after = (await client.get("/where")).json()
        replica.stop()
        fallback = [await client.get("/where") for _ in range(5)]
        replica.start()
        deadline = time.monotonic() + 30
        back = None
        while time.monotonic() < deadline:
            back = (await client.get("/where")).json()
            if back["replica"]:
                break
            await asyncio.sleep(0.2)
    await database.dispose()
    assert read == {"replica": True, "notes": 0}
    assert wrote == {"replica": False, "notes": 1}  # the write and the read after it: primary
    assert after == {"replica": True, "notes": 1}  # streamed to the replica
    assert [r.status_code for r in fallback] == [200] * 5
    assert [r.json() for r in fallback] == [{"replica": False, "notes": 1}] * 5
    assert back == {"replica": True, "notes": 1}
    warnings = [r.getMessage() for r in caplog.records if "Read replica" in r.getMessage()]
    assert len(warnings) >= 1
    assert "reading from the primary" in warnings[0]
