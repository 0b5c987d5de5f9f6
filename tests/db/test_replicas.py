"""Read replicas: reads go to a replica, writes (and reads after them) to the primary.

The "replica" is a second database on the same server holding different rows, so the test can
tell which one answered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from transom import App, Settings
from transom.db import (
    Database,
    DatabaseConfig,
    DbSessionDep,
    PrimaryDbSessionDep,
    SyncDbSessionDep,
    db_session_options,
)

from .models import Author, Base

pytestmark = pytest.mark.anyio


@pytest.fixture
async def routed(servers: Any, backend: str) -> AsyncIterator[Database]:
    primary_url = servers.url(backend, fresh=True)
    replica_url = servers.url(backend, fresh=True)
    for url, name in ((primary_url, "on-primary"), (replica_url, "on-replica")):
        single = Database(DatabaseConfig(url=url), metadata=Base.metadata)
        await single.create_all()
        async with single.session() as s:
            s.add(Author(email=f"{name}@x", name=name))
            await s.commit()
        await single.dispose()
    config = DatabaseConfig(url=primary_url, replica_urls=[replica_url])
    database = Database(config, metadata=Base.metadata)
    yield database
    await database.dispose()


def names(authors: Any) -> list[str]:
    return sorted(a.name for a in authors)


async def test_reads_use_the_replica_and_writes_the_primary(routed: Database) -> None:
    app = App(Settings(secret_key="test-secret"))
    app.install(Database(routed.config, metadata=routed.metadatas))

    @app.get("/authors")
    async def list_authors(db: DbSessionDep) -> list[str]:
        return names((await db.scalars(select(Author))).all())

    @app.post("/authors")
    async def create(db: DbSessionDep) -> dict[str, list[str]]:
        before = names((await db.scalars(select(Author))).all())
        db.add(Author(email="new@x", name="new"))
        await db.flush()  # a write: this session now sticks to the primary
        after = names((await db.scalars(select(Author))).all())
        return {"before": before, "after": after}

    @app.get("/primary")
    async def from_primary(db: PrimaryDbSessionDep) -> list[str]:
        return names((await db.scalars(select(Author))).all())

    @app.get("/primary-option")
    @db_session_options(primary=True)
    async def from_primary_option(db: DbSessionDep) -> list[str]:
        return names((await db.scalars(select(Author))).all())

    @app.get("/use-primary")
    async def use_primary(db: DbSessionDep) -> dict[str, list[str]]:
        with db.use_primary():
            inside = names((await db.scalars(select(Author))).all())
        return {"inside": inside}

    @app.get("/for-update")
    async def for_update(db: DbSessionDep) -> list[str]:
        return names((await db.scalars(select(Author).with_for_update())).all())

    @app.get("/sync")
    def sync_read(db: SyncDbSessionDep) -> list[str]:
        return names(db.scalars(select(Author)).all())

    async with app.async_test_client() as client:
        assert (await client.get("/authors")).json() == ["on-replica"]
        assert (await client.post("/authors")).json() == {
            "before": ["on-replica"],
            "after": ["new", "on-primary"],
        }
        assert (await client.get("/primary")).json() == ["new", "on-primary"]
        assert (await client.get("/primary-option")).json() == ["new", "on-primary"]
        assert (await client.get("/use-primary")).json() == {"inside": ["new", "on-primary"]}
        assert (await client.get("/for-update")).json() == ["new", "on-primary"]
        assert (await client.get("/sync")).json() == ["on-replica"]
        assert (await client.get("/authors")).json() == ["on-replica"]


async def test_get_by_primary_key_follows_the_same_routing(routed: Database) -> None:
    # Both databases hold an author with id 1, named after the database it lives in.
    app = App(Settings(secret_key="test-secret"))
    app.install(Database(routed.config, metadata=routed.metadatas))

    @app.get("/author")
    async def author(db: DbSessionDep) -> str:
        return (await db.get_or_404(Author, 1)).name

    @app.get("/author/primary")
    async def author_primary(db: PrimaryDbSessionDep) -> str:
        return (await db.get_or_404(Author, 1)).name

    @app.get("/author/use-primary")
    async def author_use_primary(db: DbSessionDep) -> str:
        with db.use_primary():
            return (await db.get_or_404(Author, 1)).name

    @app.post("/author/after-write")
    async def after_write(db: DbSessionDep) -> str:
        db.add(Author(email="writer@x", name="writer"))
        await db.flush()  # the session now sticks to the primary
        return (await db.get_or_404(Author, 1)).name

    async with app.async_test_client() as client:
        assert (await client.get("/author")).text == "on-replica"
        assert (await client.get("/author/primary")).text == "on-primary"
        assert (await client.get("/author/use-primary")).text == "on-primary"
        assert (await client.post("/author/after-write")).text == "on-primary"
        assert (await client.get("/author")).text == "on-replica"
