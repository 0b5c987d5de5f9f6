"""Names of the per-request session (transom.db.lifecycle): the renamed ones still work, warn."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from sqlalchemy import func, select

from transom import App, Settings
from transom.db import (
    Database,
    DbSession,
    DbSessionDep,
    RoutingSession,
    SyncDbSessionDep,
    db_session_options,
    get_db_session,
)
from transom.db.lifecycle import RENAMES

from .models import Author

pytestmark = pytest.mark.anyio

OLD_TO_NEW = [
    ("Session", "DbSessionDep"),
    ("ManualSession", "ManualDbSessionDep"),
    ("PrimarySession", "PrimaryDbSessionDep"),
    ("SyncSession", "SyncDbSessionDep"),
    ("SessionOptions", "DbSessionOptions"),
    ("session_options", "db_session_options"),
    ("session_dependency", "db_session_dependency"),
    ("get_session", "get_db_session"),
    ("get_sync_session", "get_sync_db_session"),
]


def test_the_table_covers_every_renamed_name() -> None:
    assert sorted(RENAMES.items()) == sorted(OLD_TO_NEW)


@pytest.mark.parametrize("module_name", ["transom.db", "transom.db.lifecycle"])
@pytest.mark.parametrize(("old", "new"), OLD_TO_NEW)
def test_old_names_warn_naming_the_new_one(module_name: str, old: str, new: str) -> None:
    module = importlib.import_module(module_name)
    pattern = rf"{module_name}\.{old} is deprecated, use {module_name}\.{new} instead"
    with pytest.warns(DeprecationWarning, match=pattern) as w:
        value = getattr(module, old)
    assert value is getattr(module, new)
    assert w[0].filename == __file__
    assert new in module.__all__
    assert old not in module.__all__


def test_unknown_names_are_still_attribute_errors() -> None:
    module = importlib.import_module("transom.db")
    with pytest.raises(AttributeError, match="has no attribute 'Sesion'"):
        module.Sesion  # noqa: B018


async def count_authors(database: Database) -> int:
    async with database.session() as s:
        return int((await s.execute(select(func.count()).select_from(Author))).scalar_one())


async def test_old_and_new_names_inject_the_same_session(database: Database) -> None:
    with pytest.warns(DeprecationWarning, match="use transom.db.DbSessionDep"):
        from transom.db import Session
    with pytest.warns(DeprecationWarning, match="use transom.db.db_session_options"):
        from transom.db import session_options
    with pytest.warns(DeprecationWarning, match="use transom.db.get_db_session"):
        from transom.db import get_session
    assert get_session is get_db_session
    app = App(Settings(secret_key="test-secret"))
    app.install(Database(database.config, metadata=database.metadatas))

    @app.post("/old")
    async def old(db: Session) -> dict[str, Any]:
        assert isinstance(db, DbSession)
        await db.save(Author(email="old@example.com", name="Old"))
        return {"ok": True}

    @app.post("/old-manual")
    @session_options(autocommit=False)
    async def old_manual(db: Session) -> dict[str, Any]:
        await db.save(Author(email="never@example.com", name="Never"))
        return {"ok": True}

    @app.post("/new")
    @db_session_options(commit_on=[LookupError])
    async def new(db: DbSessionDep) -> dict[str, Any]:
        await db.save(Author(email="new@example.com", name="New"))
        raise LookupError("committed anyway")

    @app.get("/sync")
    def sync(db: SyncDbSessionDep) -> dict[str, Any]:
        assert isinstance(db, RoutingSession)
        return {"n": db.scalar(select(func.count()).select_from(Author))}

    async with app.async_test_client() as client:
        assert (await client.post("/old")).status_code == 200
        assert (await client.post("/old-manual")).status_code == 200
        assert (await client.post("/new")).status_code == 500
        assert (await client.get("/sync")).json() == {"n": 2}
    assert await count_authors(database) == 2
