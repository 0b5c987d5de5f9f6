"""Per-engine test databases, shared by the data, auth and REST tests (and others').

Every database test runs on SQLite, PostgreSQL and MariaDB. Each test run creates its own
databases on each server (``transom_test_<random>``, ``transom_test_<random>_<name>``) and
drops them at the end, so concurrent runs never collide. Server locations can be overridden
with ``TRANSOM_TEST_POSTGRES_URL`` / ``TRANSOM_TEST_MARIADB_URL``.

A conftest imports the fixtures it wants (``from _engines import anyio_backend, backend``)
and, for a battery's tables, subclasses :class:`TableDatabases`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Table, create_engine, delete, text
from sqlalchemy.engine import URL, Engine, make_url

from _services import require_service
from transom.db import Model
from transom.db.config import sync_url

__all__ = [
    "BACKENDS",
    "SERVER_NAMES",
    "SERVER_URLS",
    "ServerDatabases",
    "Servers",
    "TableDatabases",
    "anyio_backend",
    "backend",
    "require_backend",
]

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


class TableDatabases:
    """One database per backend for this run (``name`` keeps it apart from other packages'),
    with the ``tables`` created on first use and emptied by :meth:`clear` after each test."""

    def __init__(self, tmp: Path, name: str, tables: Callable[[], list[Table]]) -> None:
        self.servers = Servers(tmp)
        self.name = name
        self.tables = tables
        self.urls: dict[str, str] = {}
        self.engines: dict[str, Engine] = {}

    def url(self, backend: str) -> str:
        if backend not in self.urls:
            url = self.servers.url(backend, name=self.name)
            engine = create_engine(sync_url(url))
            Model.metadata.create_all(engine, tables=self.tables())
            self.urls[backend], self.engines[backend] = url, engine
        return self.urls[backend]

    def clear(self, backend: str) -> None:
        wanted = self.tables()
        with self.engines[backend].begin() as conn:
            for table in reversed(Model.metadata.sorted_tables):
                if table in wanted:
                    conn.execute(delete(table))

    def close(self) -> None:
        for engine in self.engines.values():
            engine.dispose()
        self.servers.close()


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
