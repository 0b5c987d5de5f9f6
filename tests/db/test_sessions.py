"""The per-request session: injection, commit/rollback, options, savepoints, sync handlers."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from sqlalchemy import String, func, select, text
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.orm import Session as OrmSession

from transom import App, Depends, HTTPException, Settings
from transom.db import (
    Database,
    DatabaseConfig,
    DbSession,
    DbSessionDep,
    ManualDbSessionDep,
    SyncDbSessionDep,
    db_session_options,
    make_base,
    to_dict,
)

from .conftest import Servers
from .models import Author

pytestmark = pytest.mark.anyio


def make_app(database: Database) -> App:
    app = App(Settings(secret_key="test-secret"))
    app.install(Database(database.config, metadata=database.metadatas))
    return app


async def count_authors(database: Database) -> int:
    async with database.session() as s:
        return int((await s.execute(select(func.count()).select_from(Author))).scalar_one())


async def test_session_is_injected_by_type_and_commits_on_success(database: Database) -> None:
    app = make_app(database)

    @app.post("/authors")
    async def create(db: DbSessionDep) -> dict[str, Any]:
        assert isinstance(db, DbSession)
        author = await db.save(Author(email="a@example.com", name="Ann"))
        return to_dict(author)

    async with app.async_test_client() as client:
        r = await client.post("/authors")
    assert r.status_code == 200, r.text
    assert r.json()["id"] >= 1
    assert await count_authors(database) == 1


async def test_rollback_on_http_exception_and_on_crash(database: Database) -> None:
    app = make_app(database)

    @app.post("/refuse")
    async def refuse(db: DbSessionDep) -> None:
        db.add(Author(email="b@example.com", name="Bob"))
        await db.flush()
        raise HTTPException(400, "no")

    @app.post("/crash")
    async def crash(db: DbSessionDep) -> None:
        db.add(Author(email="c@example.com", name="Cy"))
        await db.flush()
        raise RuntimeError("boom")

    async with app.async_test_client() as client:
        assert (await client.post("/refuse")).status_code == 400
        assert (await client.post("/crash")).status_code == 500
    assert await count_authors(database) == 0


async def test_autocommit_off_per_route(database: Database) -> None:
    app = make_app(database)

    @app.post("/draft")
    @db_session_options(autocommit=False)
    async def draft(db: DbSessionDep) -> None:
        db.add(Author(email="d@example.com", name="Di"))

    @app.post("/manual")
    async def manual(db: ManualDbSessionDep) -> None:
        db.add(Author(email="e@example.com", name="Ed"))
        await db.commit()
        db.add(Author(email="f@example.com", name="Flo"))  # never committed

    async with app.async_test_client() as client:
        assert (await client.post("/draft")).status_code == 204
        assert await count_authors(database) == 0
        assert (await client.post("/manual")).status_code == 204
    assert await count_authors(database) == 1


async def test_commit_on_listed_exception(database: Database) -> None:
    app = make_app(database)

    @app.post("/then-redirect")
    @db_session_options(commit_on=[HTTPException])
    async def then_redirect(db: DbSessionDep) -> None:
        db.add(Author(email="g@example.com", name="Gil"))
        raise HTTPException(409, "saved, but tell the client something")

    async with app.async_test_client() as client:
        assert (await client.post("/then-redirect")).status_code == 409
    assert await count_authors(database) == 1


async def test_savepoint_rolls_back_only_inner_work(database: Database) -> None:
    app = make_app(database)

    @app.post("/nested")
    async def nested(db: DbSessionDep) -> dict[str, int]:
        db.add(Author(email="outer@example.com", name="Outer"))
        await db.flush()
        try:
            async with db.begin_nested():
                db.add(Author(email="inner@example.com", name="Inner"))
                await db.flush()
                raise ValueError("undo the inner block only")
        except ValueError:
            pass
        return {"n": int((await db.execute(select(func.count()).select_from(Author))).scalar_one())}

    async with app.async_test_client() as client:
        r = await client.post("/nested")
    assert r.status_code == 200, r.text
    assert r.json() == {"n": 1}
    assert await count_authors(database) == 1


seen: list[DbSession] = []


async def current_user(db: DbSessionDep) -> str:
    seen.append(db)
    return "ann"


async def test_one_session_per_request_shared_with_dependencies(database: Database) -> None:
    app = make_app(database)
    seen.clear()

    @app.get("/who")
    async def who(user: Annotated[str, Depends(current_user)], db: DbSessionDep) -> dict[str, bool]:
        return {"same": seen[0] is db}

    async with app.async_test_client() as client:
        assert (await client.get("/who")).json() == {"same": True}


async def test_sync_handler_gets_a_blocking_session(database: Database) -> None:
    app = make_app(database)

    @app.post("/sync")
    def create_sync(db: SyncDbSessionDep) -> dict[str, Any]:
        assert isinstance(db, OrmSession)
        author = Author(email="sync@example.com", name="Syd")
        db.add(author)
        db.flush()
        return {"id": author.id}

    @app.post("/sync-fail")
    def fail_sync(db: SyncDbSessionDep) -> None:
        db.add(Author(email="nope@example.com", name="No"))
        db.flush()
        raise HTTPException(400)

    async with app.async_test_client() as client:
        r = await client.post("/sync")
        assert r.status_code == 200, r.text
        assert (await client.post("/sync-fail")).status_code == 400
    assert await count_authors(database) == 1


async def test_get_or_404_helpers(database: Database) -> None:
    app = make_app(database)

    @app.get("/authors/{author_id:int}")
    async def by_id(author_id: int, db: DbSessionDep) -> dict[str, Any]:
        return to_dict(await db.get_or_404(Author, author_id))

    @app.get("/authors/by-email/{email}")
    async def by_email(email: str, db: DbSessionDep) -> dict[str, Any]:
        return to_dict(await db.get_one_or_404(Author, email=email))

    async with database.session() as s:
        s.add(Author(email="h@example.com", name="Hal"))
        await s.commit()
    async with app.async_test_client() as client:
        assert (await client.get("/authors/by-email/h@example.com")).json()["name"] == "Hal"
        missing = await client.get("/authors/999")
        assert missing.status_code == 404
        assert missing.json() == {"detail": "Author not found"}
        assert (await client.get("/authors/by-email/x@example.com")).status_code == 404


async def test_app_shutdown_disposes_engines(database: Database) -> None:
    app = make_app(database)

    @app.get("/ping")
    async def ping(db: DbSessionDep) -> dict[str, int]:
        return {"one": int((await db.execute(select(1))).scalar_one())}

    async with app.async_test_client() as client:
        assert (await client.get("/ping")).json() == {"one": 1}
    db = app.extensions["transom.db"]
    assert db.engine.pool.checkedout() == 0


async def test_postgresql_begins_the_transaction_at_the_first_write(database: Database) -> None:
    """Reads before any write run on their own; from the first write on, one transaction."""
    if database.engine.dialect.name != "postgresql":
        pytest.skip("txid_current() is PostgreSQL's; SQLite's lazy BEGIN: tests/db/test_engine.py")
    app = make_app(database)
    txid = select(func.txid_current())

    @app.get("/txids")
    async def txids(db: DbSessionDep, write: bool = False, lock: bool = False) -> list[int]:
        ids = [int(await db.scalar(txid) or 0)]
        if lock:
            await db.execute(select(Author).with_for_update())
        if write:
            await db.save(Author(email="lazy@example.com", name="Lazy"))
        ids += [int(await db.scalar(txid) or 0), int(await db.scalar(txid) or 0)]
        if write and lock:
            raise HTTPException(409, "roll it back")
        return ids

    async with app.async_test_client() as client:
        reads = (await client.get("/txids")).json()
        assert len(set(reads)) == 3  # three statements, three transactions of their own
        writes = (await client.get("/txids?write=true")).json()
        assert writes[0] != writes[1] == writes[2]  # the INSERT began the transaction
        locked = (await client.get("/txids?lock=true")).json()
        assert locked[0] != locked[1] == locked[2]  # so did SELECT ... FOR UPDATE
        assert await count_authors(database) == 1
        assert (await client.get("/txids?write=true&lock=true")).status_code == 409
        assert await count_authors(database) == 1  # the write after the lock rolled back


async def test_lazy_begin_can_be_turned_off(database: Database) -> None:
    if database.engine.dialect.name != "postgresql":
        pytest.skip("the lazy BEGIN is PostgreSQL's (asyncpg)")
    app = App(Settings(secret_key="test-secret"))
    config = database.config.model_copy(update={"lazy_begin": False})
    app.install(Database(config, metadata=database.metadatas))

    @app.get("/txids")
    async def txids(db: DbSessionDep) -> list[int]:
        return [int(await db.scalar(select(func.txid_current())) or 0) for _ in range(2)]

    async with app.async_test_client() as client:
        first, second = (await client.get("/txids")).json()
        assert first == second  # one transaction from the first statement


ThingBase = make_base(name="ThingBase")


class Thing(ThingBase):  # type: ignore[misc,valid-type]
    """A table that exists twice: ``public.thing`` and ``tenant_a.thing``, with other rows."""

    id: Mapped[int] = mapped_column(primary_key=True)
    owner: Mapped[str] = mapped_column(String(20))


_TENANT = {"schema_translate_map": {None: "tenant_a"}}


@pytest.fixture
async def tenant_url(servers: Servers) -> str:
    """A fresh PostgreSQL database with ``thing`` in ``public`` and in ``tenant_a``."""
    url = servers.url("postgresql", fresh=True)
    database = Database(DatabaseConfig(url=url), metadata=ThingBase.metadata)
    async with database.engine.begin() as conn:
        await conn.execute(text("CREATE SCHEMA tenant_a"))
        for schema in ("public", "tenant_a"):
            await conn.execute(
                text(f"CREATE TABLE {schema}.thing (id integer PRIMARY KEY, owner varchar(20))")
            )
            await conn.execute(text(f"INSERT INTO {schema}.thing VALUES (1, '{schema}')"))
    await database.dispose()
    return url


async def _both_ways(db: DbSession, **execution_options: Any) -> tuple[str, str]:
    """``get`` and ``select`` of row 1, each in a session of its own (no identity-map hits)."""
    got = await db.get(Thing, 1, execution_options=execution_options)
    assert got is not None
    by_get = got.owner
    db.expunge_all()
    stmt = select(Thing).where(Thing.id == 1).execution_options(**execution_options)
    by_select = (await db.execute(stmt)).scalar_one().owner
    return by_get, by_select


async def test_get_reads_what_select_reads_under_each_execution_option(tenant_url: str) -> None:
    """``schema_translate_map`` set on the engine, the connection or the call: one answer."""
    plain = Database(DatabaseConfig(url=tenant_url), metadata=ThingBase.metadata)
    tenant_engine = Database(
        DatabaseConfig(url=tenant_url, engine_options={"execution_options": _TENANT}),
        metadata=ThingBase.metadata,
    )
    try:
        async with plain.session() as db:
            assert await _both_ways(db) == ("public", "public")
        async with plain.session() as db:
            assert await _both_ways(db, **_TENANT) == ("tenant_a", "tenant_a")
        async with plain.session() as db:
            await db.connection(execution_options=_TENANT)
            assert await _both_ways(db) == ("tenant_a", "tenant_a")
        async with tenant_engine.session() as db:
            assert await _both_ways(db) == ("tenant_a", "tenant_a")
        async with tenant_engine.session() as db:  # the first read of a fresh session
            got = await db.get(Thing, 1)
            assert got is not None
            assert got.owner == "tenant_a"
        async with plain.session() as db:
            await db.connection(execution_options=_TENANT)
            got = await db.get(Thing, 1)
            assert got is not None
            assert got.owner == "tenant_a"
    finally:
        await plain.dispose()
        await tenant_engine.dispose()
