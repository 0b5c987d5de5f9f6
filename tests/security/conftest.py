"""Fixtures for the security battery: a small app exercising every part, and Redis."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests/_services.py

from _services import require_service
from transom import App, HTTPException, Request, Settings
from transom.security import (
    CSRFToken,
    Security,
    SecurityConfig,
    SessionDataDep,
    csrf_exempt,
    end_session,
    start_session,
)

SECRET = "test-secret-key-for-security-tests"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
AppFactory = Callable[..., App]


def build_app(settings: Settings | None = None, **security: Any) -> App:
    """An app with routes touching sessions, CSRF and login; ``security`` goes to Security()."""
    app = App(settings or Settings(secret_key=SECRET))
    app.install(Security(SecurityConfig(**security)))

    @app.get("/session")
    async def read_session(session: SessionDataDep) -> dict[str, Any]:
        return session.to_dict()

    @app.get("/set")
    async def set_value(session: SessionDataDep, key: str, value: str) -> dict[str, Any]:
        session[key] = value
        return {"key": session.key}

    @app.get("/key")
    async def session_key(session: SessionDataDep) -> dict[str, Any]:
        return {"key": session.key, "new": session.new}

    @app.get("/token")
    async def token(token: CSRFToken) -> dict[str, str]:
        return {"token": token}

    @app.route("/submit", methods=["POST", "PUT", "PATCH", "DELETE"])
    async def submit() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/exempt")
    @csrf_exempt
    async def exempt() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/login")
    async def do_login(request: Request) -> dict[str, str]:
        session = await start_session(request, "alice")
        return {"key": session.key}

    @app.post("/logout")
    async def do_logout(request: Request) -> None:
        await end_session(request)

    @app.get("/boom")
    async def boom(session: SessionDataDep) -> None:
        session["written"] = "yes"
        raise RuntimeError("handler failed")

    @app.get("/forbidden")
    async def forbidden(session: SessionDataDep) -> None:
        session["written"] = "yes"
        raise HTTPException(403, "no")

    return app


@pytest.fixture
def make_app() -> AppFactory:
    """Build the test app with custom Security() arguments."""
    return build_app


@pytest.fixture
def redis_url() -> str:
    """A Redis URL (skips, or fails under CI=true, when Redis is not running)."""
    require_service("Redis", REDIS_HOST, REDIS_PORT)
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix unique to this test, so runs never share counters or sessions."""
    return f"transom-test:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def anyio_backend() -> str:
    """redis-py's asyncio client needs asyncio."""
    return "asyncio"


def fetch_token(client: Any) -> str:
    """GET a fresh masked CSRF token (the session cookie lands in the client's jar)."""
    response = client.get("/token")
    assert response.status_code == 200
    return str(response.json()["token"])
