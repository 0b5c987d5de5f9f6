"""Fixtures for the data battery: every data test runs on SQLite, PostgreSQL and MariaDB.

Each test run creates its own database on each server (``transom_test_<random>``) and drops it
at the end, so concurrent runs never collide (tests/_engines.py, shared with the auth and REST
tests).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests/_engines.py

import _engines
from _engines import BACKENDS, Servers, require_backend
from transom.db import Database, DatabaseConfig

from .models import Base

__all__ = ["BACKENDS", "Servers", "require_backend"]  # other test packages import them here

# The engine fixtures, for this package's tests.
anyio_backend = _engines.anyio_backend
backend = _engines.backend


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """Access to the live database servers for this run."""
    registry = Servers(tmp_path_factory.mktemp("sqlite"))
    yield registry
    registry.close()


@pytest.fixture
def db_url(servers: Servers, backend: str) -> str:
    """The run's database URL on the current backend."""
    return servers.url(backend)


@pytest.fixture
async def database(db_url: str) -> AsyncIterator[Database]:
    """A :class:`Database` on the current backend with the test models' tables created."""
    database = Database(DatabaseConfig(url=db_url), metadata=Base.metadata)
    await database.drop_all()
    await database.create_all()
    try:
        yield database
    finally:
        await database.drop_all()
        await database.dispose()
