"""The battery's migrations create exactly the tables its models describe, on every engine.

:class:`transom.db.migrations.Migrations` (what ``transom db migrate`` runs) finds the branch
through the ``transom.migrations`` entry point because the models include the auth tables;
the result is checked against the models. (``tests/db/test_cli.py`` runs the same through the
command line with a project's own migrations beside the battery's.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, create_engine, inspect

from transom.auth.migrations import BRANCH, VERSIONS
from transom.auth.models import auth_tables
from transom.db import Database, DatabaseConfig
from transom.db.config import sync_url
from transom.db.migrations import Migrations
from transom.db.models import NAMING_CONVENTION

from .conftest import AuthDatabases


def _metadata() -> MetaData:
    md = MetaData(naming_convention=NAMING_CONVENTION)
    for table in auth_tables():
        table.to_metadata(md)
    return md


@pytest.fixture
def fresh_url(auth_databases: AuthDatabases, backend: str) -> str:
    return auth_databases.servers.url(backend, fresh=True)


def test_upgrade_matches_models_and_downgrades(fresh_url: str, tmp_path: Path) -> None:
    database = Database(DatabaseConfig(url=fresh_url), metadata=_metadata())
    migrations = Migrations(database, tmp_path / "migrations")
    migrations.ensure_directory()
    assert [b.versions for b in migrations.batteries] == [VERSIONS]
    config = migrations.config()
    migrations.upgrade()
    engine = create_engine(sync_url(fresh_url))
    try:
        with engine.connect() as conn:
            names = set(inspect(conn).get_table_names())
            assert {t.name for t in auth_tables()} <= names
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diffs = [
                d
                for d in compare_metadata(context, _metadata())
                if not (isinstance(d, tuple) and d[0] == "remove_table")
            ]
            assert diffs == []
        command.downgrade(config, f"{BRANCH}@base")
        with engine.connect() as conn:
            assert not {n for n in inspect(conn).get_table_names() if n.startswith("transom_auth_")}
    finally:
        engine.dispose()
