"""Fixtures for the auth battery: every database test runs on SQLite, PostgreSQL and MariaDB.

The run gets its own database on each server (``transom_test_<run>_auth``, dropped at the end),
the battery's tables are created once per engine and emptied after each test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table

import _engines
from _engines import TableDatabases
from transom import App, Settings
from transom.auth import (
    Argon2Hasher,
    Auth,
    AuthConfig,
    CurrentUser,
    JWTConfig,
    MemoryBackend,
    OptionalUser,
    PasswordHashers,
    User,
    login_required,
)
from transom.auth.models import auth_tables
from transom.db import Database, DatabaseConfig, Model, get_database
from transom.security import CSRFToken, Security, SecurityConfig
from transom.testing import AsyncTestClient

from .models import AuthTestArticle

SECRET = "auth-tests-secret-key"
#: Cheap argon2 parameters: the tests hash a lot.
CHEAP = PasswordHashers(Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1))
PASSWORD = "correct horse battery staple"


def tables() -> list[Table]:
    return [*auth_tables(), Model.metadata.tables[AuthTestArticle.__tablename__]]


class AuthDatabases(TableDatabases):
    """One database per backend for this run, the auth tables created on first use."""

    def __init__(self, tmp: Path, name: str = "auth") -> None:
        # Another test package that reuses these fixtures passes its own name: two session
        # fixtures with one database name would drop it under each other's feet.
        super().__init__(tmp, name, tables)


@pytest.fixture(scope="session")
def auth_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthDatabases]:
    registry = AuthDatabases(tmp_path_factory.mktemp("auth"))
    yield registry
    registry.close()


# The engine fixtures (tests/_engines.py), for this package's tests.
anyio_backend = _engines.anyio_backend
backend = _engines.backend


@pytest.fixture
def db_url(auth_databases: AuthDatabases, backend: str) -> Iterator[str]:
    url = auth_databases.url(backend)
    yield url
    auth_databases.clear(backend)


@pytest.fixture
def outbox() -> MemoryBackend:
    return MemoryBackend()


AppFactory = Callable[..., App]


@pytest.fixture
def make_app(db_url: str, outbox: MemoryBackend) -> AppFactory:
    """Build an app with Security + Auth on the test database; kwargs go to Auth()."""
    apps: list[App] = []

    def build(
        settings: Settings | None = None, security: dict[str, Any] | None = None, **kw: Any
    ) -> App:
        app = App(settings or Settings(secret_key=SECRET))
        app.install(Database(DatabaseConfig(url=db_url)))
        app.install(Security(SecurityConfig(**(security or {}))))
        kw.setdefault("hashers", CHEAP)
        kw.setdefault("email_backend", outbox)
        kw.setdefault("jwt", JWTConfig())
        kw.setdefault("sync_permissions", False)
        app.install(Auth(AuthConfig(**kw)))
        add_test_routes(app)
        apps.append(app)
        return app

    return build


async def add_user(
    app: App, username: str = "alice", password: str = PASSWORD, **fields: Any
) -> User:
    """Create a user (defaults: active, email alice@example.com)."""
    fields.setdefault("email", f"{username}@example.com")
    database: Database = get_database(app)
    async with database.session() as db:
        user = User(username=username, **fields)
        with Auth.of(app).activate():  # the app's (cheap) hashers, as its requests use
            user.set_password(password)
        db.add(user)
        await db.commit()
    return user


async def wait_for(predicate: Callable[[], bool]) -> None:
    """Wait (at most 5 s) until ``predicate()``: emails are sent in the background."""
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met within 5 s")


def add_test_routes(app: App) -> None:
    """/csrf (a token), /me (login required), /maybe (optional user), /private (HTML)."""

    @app.get("/csrf")
    async def csrf(token: CSRFToken) -> dict[str, str]:
        return {"token": token}

    @app.get("/me")
    async def me(user: CurrentUser) -> dict[str, Any]:
        return {"username": user.username, "id": user.id}

    @app.get("/maybe")
    async def maybe(user: OptionalUser) -> dict[str, Any]:
        return {"username": user.username if user else None}

    @app.get("/private")
    @login_required
    async def private() -> dict[str, bool]:
        return {"ok": True}


async def post_form(client: AsyncTestClient, url: str, data: dict[str, Any]) -> Any:
    """POST a form with a valid CSRF token (as a browser with the page loaded would)."""
    token = (await client.get("/csrf")).json()["token"]
    origin = f"{client.base_url.scheme}://{client.base_url.netloc.decode()}"
    return await client.post(url, data={**data, "csrf_token": token}, headers={"origin": origin})


async def log_in(
    client: AsyncTestClient, username: str = "alice", password: str = PASSWORD, **extra: Any
) -> Any:
    response = await post_form(
        client, "/auth/login", {"username": username, "password": password, **extra}
    )
    assert response.status_code == 303, response.text
    return response


def tamper(signed: str) -> str:
    """Change one character in the middle of a signed value's signature (never a padding bit)."""
    head, _, sig = signed.rpartition(".")
    i = len(sig) // 2
    return f"{head}.{sig[:i]}{'A' if sig[i] != 'A' else 'B'}{sig[i + 1 :]}"
