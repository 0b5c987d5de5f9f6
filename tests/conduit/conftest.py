"""Fixtures for the Conduit example (examples/conduit): its app on SQLite and PostgreSQL.

The app module is imported once (its models join the shared metadata). Each backend (SQLite,
PostgreSQL, MariaDB) gets one database per test run, built by the example's own migrations as
`make conduit` builds it (on the servers: ``conduit_test_<random>``, dropped at the end, so
concurrent runs never collide);
every test starts from empty tables. Responses are checked against the RealWorld spec
(examples/conduit/realworld-openapi.yml) with :func:`check`.
"""

from __future__ import annotations

import importlib
import os
import sys
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import yaml
from jsonschema import Draft202012Validator
from sqlalchemy import create_engine, delete, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests/_services.py


from _services import require_service
from transom import App
from transom.db import Database, DatabaseConfig
from transom.db.config import sync_url
from transom.db.migrations import Migrations
from transom.security import Security
from transom.security.ratelimit import MemoryRateLimitBackend
from transom.testing import TestClient

# The example is a project of its own, with its own `User` model: in the suite's process the
# auth battery's built-in `User` is imported by other tests, and two models named `User` in one
# registry is an error the framework reports on purpose. So these tests run in an interpreter
# of their own (tests/test_example_conduit.py starts it), as the project's tests would.
ISOLATED = "TRANSOM_CONDUIT_ISOLATED"
if os.environ.get(ISOLATED) != "1":
    collect_ignore_glob = ["test_*.py"]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "conduit"
SPEC_FILE = EXAMPLE / "realworld-openapi.yml"
PASSWORD = "violet tractor umbrella"
SERVER_URLS = {
    "postgresql": os.environ.get(
        "TRANSOM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
    ),
    "mariadb": os.environ.get("TRANSOM_TEST_MARIADB_URL", "mysql://root@127.0.0.1:3306/test"),
}
SERVER_NAMES = {"postgresql": "PostgreSQL", "mariadb": "MariaDB"}
RUN_ID = uuid.uuid4().hex[:8]
#: Children first, so foreign keys never stop the clean-up.
TABLES = [
    "conduit_favorite",
    "conduit_article_tag",
    "conduit_comment",
    "conduit_article",
    "conduit_tag",
    "conduit_follow",
    "conduit_user",
    "transom_auth_revoked_token",
]


@pytest.fixture(scope="session")
def conduit() -> ModuleType:
    """The example's app module (``examples/conduit/conduit_api/main.py``)."""
    sys.path.insert(0, str(EXAMPLE))
    return importlib.import_module("conduit_api.main")


class Databases:
    """One migrated database per backend for this run; the servers' are dropped at the end."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.urls: dict[str, str] = {}
        self.name = f"conduit_test_{RUN_ID}"

    def url(self, backend: str) -> str:
        if backend not in self.urls:
            if backend == "sqlite":
                self.urls[backend] = f"sqlite+aiosqlite:///{self.tmp / 'conduit.sqlite3'}"
            else:
                quoted = f'"{self.name}"' if backend == "postgresql" else f"`{self.name}`"
                charset = " CHARACTER SET utf8mb4" if backend == "mariadb" else ""
                self._run(backend, f"DROP DATABASE IF EXISTS {quoted}")
                self._run(backend, f"CREATE DATABASE {quoted}{charset}")
                url = make_url(SERVER_URLS[backend]).set(database=self.name)
                self.urls[backend] = url.render_as_string(hide_password=False)
        return self.urls[backend]

    def _run(self, backend: str, sql: str) -> None:
        engine = create_engine(sync_url(SERVER_URLS[backend]), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(sql))
        engine.dispose()

    def close(self) -> None:
        if "postgresql" in self.urls:
            self._run("postgresql", f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        if "mariadb" in self.urls:
            self._run("mariadb", f"DROP DATABASE IF EXISTS `{self.name}`")


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    registry = Databases(tmp_path_factory.mktemp("conduit"))
    yield registry
    registry.close()


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def backend(request: pytest.FixtureRequest) -> str:
    """The engine under test; a server that is down is skipped (a failure under CI=true)."""
    name: str = request.param
    if name != "sqlite":
        url = make_url(SERVER_URLS[name])
        default_port = 5432 if name == "postgresql" else 3306
        require_service(SERVER_NAMES[name], url.host or "127.0.0.1", url.port or default_port)
    return name


_migrated: set[str] = set()


@pytest.fixture
def app(conduit: ModuleType, databases: Databases, backend: str) -> Iterator[App]:
    """The Conduit app on ``backend``, migrated, with empty tables and fresh rate limits."""
    application: App = conduit.app
    database = Database.of(application)
    url = databases.url(backend)
    database.configure(DatabaseConfig(url=url))
    if url not in _migrated:
        Migrations(database, EXAMPLE / "migrations").upgrade()
        _migrated.add(url)
    # The login budgets would otherwise carry over from test to test (one client address).
    Security.of(application).rate_limit_backend = MemoryRateLimitBackend()
    yield application
    with database.sync_engine.begin() as conn:
        for table in TABLES:
            conn.execute(delete(database.metadata.tables[table]))
    database.sync_engine.dispose()


@pytest.fixture
def client(app: App) -> Iterator[TestClient]:
    with app.test_client() as test_client:
        yield test_client


# --- the spec ---


@cache
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(SPEC_FILE.read_text())
    return loaded


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        found: Any = spec()
        for part in node["$ref"].removeprefix("#/").split("/"):
            found = found[part]
        node = found
    return node


def check(response: httpx.Response, method: str, path: str, status: int) -> Any:
    """Assert the status, and that the body is what the spec documents for it; return the JSON.

    ``path`` is the spec's template (``/articles/{slug}``). Statuses the spec doesn't list for
    the operation (403, 404) must carry its error shape, ``{"errors": {"body": [...]}}``.
    """
    assert response.status_code == status, response.text
    operation = spec()["paths"][path][method.lower()]
    documented = operation["responses"].get(str(status))
    if status == 204:
        assert response.content == b""
        return None
    body = response.json()
    if documented is None:
        schema: dict[str, Any] = {"$ref": "#/components/schemas/GenericErrorModel"}
    else:
        content = _resolve(documented).get("content") or {}
        if "application/json" not in content:
            assert "errors" in body  # 401: the spec shows no body; ours is the error shape
            return body
        schema = content["application/json"]["schema"]
    # The spec is the root, so its #/components/... references resolve.
    Draft202012Validator({**spec(), **schema}).validate(body)
    return body


def error_messages(response: httpx.Response) -> list[str]:
    body = response.json()
    assert set(body) == {"errors"}, body
    assert set(body["errors"]) == {"body"}, body
    messages: list[str] = body["errors"]["body"]
    assert messages, body
    assert all(isinstance(m, str) for m in messages)
    return messages


def register(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    """Register ``username`` (email ``<username>@example.com``); the headers that authenticate."""
    response = client.post(
        "/api/users",
        json={
            "user": {"username": username, "email": f"{username}@example.com", "password": password}
        },
    )
    user = check(response, "POST", "/users", 201)["user"]
    return {"authorization": f"Token {user['token']}"}


def new_article(
    client: TestClient, headers: dict[str, str], title: str, tags: list[str] | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = {"title": title, "description": f"About {title}", "body": f"{title}!"}
    if tags is not None:
        data["tagList"] = tags
    response = client.post("/api/articles", json={"article": data}, headers=headers)
    article: dict[str, Any] = check(response, "POST", "/articles", 201)["article"]
    return article
