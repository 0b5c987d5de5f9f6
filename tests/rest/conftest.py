"""Fixtures of the REST tests: every test runs on SQLite, PostgreSQL and MariaDB.

The run gets its own database on each server (``transom_test_<run>_rest``, dropped at the end);
the tables are created once per engine and emptied after each test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table, event

import _engines
from _engines import TableDatabases
from transom import App, Settings
from transom.auth import Argon2Hasher, Auth, AuthConfig, JWTConfig, PasswordHashers, User
from transom.auth.models import auth_tables
from transom.db import Database, DatabaseConfig, get_database
from transom.rest import Rest, RestConfig
from transom.security import Security, SecurityConfig

from .models import Label, Reaction, Story, story_labels

SECRET = "rest-tests-secret-key"
CHEAP = PasswordHashers(Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1))


def tables() -> list[Table]:
    return [
        *auth_tables(),
        Label.__table__,  # type: ignore[list-item]
        Story.__table__,  # type: ignore[list-item]
        story_labels,
        Reaction.__table__,  # type: ignore[list-item]
    ]


class RestDatabases(TableDatabases):
    """One database per backend for this run, the REST tests' tables created on first use."""

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp, "rest", tables)


@pytest.fixture(scope="session")
def rest_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestDatabases]:
    registry = RestDatabases(tmp_path_factory.mktemp("rest"))
    yield registry
    registry.close()


# The engine fixtures (tests/_engines.py), for this package's tests.
anyio_backend = _engines.anyio_backend
backend = _engines.backend


@pytest.fixture
def db_url(rest_databases: RestDatabases, backend: str) -> Iterator[str]:
    url = rest_databases.url(backend)
    yield url
    rest_databases.clear(backend)


AppFactory = Callable[..., App]


def build_app(url: str, *resources: Any, rest: RestConfig | None = None, **database: Any) -> App:
    """An app with Security, Auth (JWT) and Rest on ``url``, serving ``resources``."""
    app = App(Settings(secret_key=SECRET))
    app.install(Database(DatabaseConfig(url=url, **database)))
    app.install(Security(SecurityConfig()))
    app.install(
        Auth(AuthConfig(prefix=None, hashers=CHEAP, jwt=JWTConfig(), sync_permissions=False))
    )
    app.install(Rest(rest or RestConfig()))
    for resource in resources:
        app.include(resource)
    return app


@pytest.fixture
def make_app(db_url: str) -> AppFactory:
    """:func:`build_app` on the test database."""

    def build(*resources: Any, rest: RestConfig | None = None) -> App:
        return build_app(db_url, *resources, rest=rest)

    return build


async def add_user(app: App, username: str = "alice", **fields: Any) -> tuple[User, dict[str, str]]:
    """A user and the ``Authorization`` header of a JWT for them."""
    fields.setdefault("email", f"{username}@example.com")
    async with get_database(app).session() as db:
        user = User(username=username, **fields)
        with Auth.of(app).activate():
            user.set_password("correct horse battery staple")
        db.add(user)
        await db.commit()
    token = Auth.of(app).jwt.access_token(str(user.id))
    return user, {"authorization": f"Bearer {token}"}


class QueryCounter:
    """Counts the statements sent to the database while active (``with counter: ...``)."""

    def __init__(self, app: App) -> None:
        self.engine = get_database(app).engine.sync_engine
        self.statements: list[str] = []

    def _count(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)

    def __enter__(self) -> QueryCounter:
        self.statements.clear()
        event.listen(self.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._count)

    @property
    def selects(self) -> list[str]:
        return [s for s in self.statements if s.lstrip().upper().startswith("SELECT")]
