"""Fixtures for the data battery: every data test runs on SQLite, PostgreSQL and MariaDB.

Each test run creates its own database on each server (``transom_test_<random>``) and drops it
at the end, so concurrent runs never collide. Server locations can be overridden with
``TRANSOM_TEST_POSTGRES_URL`` / ``TRANSOM_TEST_MARIADB_URL``.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests/_services.py

from _services import require_service
from transom.db import Database, DatabaseConfig
from transom.db.config import sync_url

from .models import Base

BACKENDS = ["sqlite", "postgresql", "mariadb"]
SERVER_URLS = {
    "postgresql": os.environ.get(
        "TRANSOM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
    ),
    "mariadb": os.environ.get("TRANSOM_TEST_MARIADB_URL", "mysql://root@127.0.0.1:3306/test"),
}
SERVER_NAMES = {"postgresql": "PostgreSQL", "mariadb": "MariaDB"}
RUN_ID = uuid.uuid4().hex[:8]


def require_backend(backend: str) -> None:
    """Skip (or fail under CI=true) when the backend's server is unreachable."""
    if backend == "sqlite":
        return
    url = make_url(SERVER_URLS[backend])
    default_port = 5432 if backend == "postgresql" else 3306
    require_service(SERVER_NAMES[backend], url.host or "127.0.0.1", url.port or default_port)


class ServerDatabases:
    """Creates throw-away databases on one server and drops them all at the end of the run."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.admin_url = sync_url(SERVER_URLS[backend])
        self.created: list[str] = []

    def create(self, suffix: str = "") -> URL:
        name = f"transom_test_{RUN_ID}{suffix}"
        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            quoted = f"`{name}`" if self.backend == "mariadb" else f'"{name}"'
            conn.execute(text(f"DROP DATABASE IF EXISTS {quoted}"))
            extra = " CHARACTER SET utf8mb4" if self.backend == "mariadb" else ""
            conn.execute(text(f"CREATE DATABASE {quoted}{extra}"))
        engine.dispose()
        self.created.append(name)
        return make_url(SERVER_URLS[self.backend]).set(database=name)

    def drop_all(self) -> None:
        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            for name in self.created:
                if self.backend == "postgresql":
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                else:
                    conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        engine.dispose()


class Servers:
    """Per-run database URLs for each backend, created on first use."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.servers: dict[str, ServerDatabases] = {}
        self.counter = 0

    def url(self, backend: str, *, fresh: bool = False, name: str = "") -> str:
        """The run's shared database on ``backend``, or a brand-new one with ``fresh``.

        ``name`` picks another shared database (a battery's tests keep theirs apart).
        """
        require_backend(backend)
        if backend == "sqlite":
            self.counter += 1
            file = f"db{self.counter}.sqlite3" if fresh else f"{name or 'shared'}.sqlite3"
            return f"sqlite+aiosqlite:///{self.tmp / file}"
        server = self.servers.get(backend)
        if server is None:
            server = self.servers[backend] = ServerDatabases(backend)
        suffix = f"_{name}" if name else ""
        if fresh:
            self.counter += 1
            suffix = f"_{self.counter}"
        elif f"transom_test_{RUN_ID}{suffix}" in server.created:
            return (
                make_url(SERVER_URLS[backend])
                .set(database=f"transom_test_{RUN_ID}{suffix}")
                .render_as_string(hide_password=False)
            )
        return server.create(suffix).render_as_string(hide_password=False)

    def close(self) -> None:
        for server in self.servers.values():
            server.drop_all()


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """Access to the live database servers for this run."""
    registry = Servers(tmp_path_factory.mktemp("sqlite"))
    yield registry
    registry.close()


@pytest.fixture
def anyio_backend() -> str:
    """Run async tests on asyncio (the drivers are asyncio-only)."""
    return "asyncio"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The engine under test: sqlite, postgresql or mariadb."""
    name: str = request.param
    require_backend(name)
    return name


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
