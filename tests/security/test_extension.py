"""Installing the battery: defaults, double installation, debug mode, raw bodies, sync handlers."""

from __future__ import annotations

import logging

import pytest

from transom import App, Request, Settings
from transom.security import EXTENSION_KEY, CSRFToken, Security, Sess

from .conftest import SECRET


def test_installs_itself_once() -> None:
    app = App(Settings(secret_key=SECRET))
    security = Security(app)
    assert app.extensions[EXTENSION_KEY] is security
    assert security.sessions is not None
    assert security.csrf is not None
    assert security.headers is not None
    assert security.cors is None
    with pytest.raises(RuntimeError, match="already installed"):
        Security(app)


def test_debug_mode_without_secret_key_uses_a_random_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App(Settings(secret_key=None, debug=True))
    Security(app)

    @app.get("/")
    async def index(session: Sess) -> dict[str, int]:
        session["n"] = session.get("n", 0) + 1
        return {"n": session["n"]}

    with caplog.at_level(logging.WARNING, logger="transom.security"), app.test_client() as c:
        assert c.get("/").json() == {"n": 1}
        assert c.get("/").json() == {"n": 2}
    assert "random per-process key" in caplog.text


def test_urlencoded_body_stays_readable_after_the_csrf_check() -> None:
    app = App(Settings(secret_key=SECRET))
    Security(app)

    @app.get("/token")
    async def token(token: CSRFToken) -> str:
        return token

    @app.post("/raw")
    async def raw(request: Request) -> dict[str, str]:
        form = await request.form()
        return {"body": (await request.body()).decode(), "field": str(form["name"])}

    with app.test_client() as client:
        csrf = client.get("/token").text
        response = client.post("/raw", data={"csrf_token": csrf, "name": "x"})
    assert response.status_code == 200
    assert response.json()["field"] == "x"
    assert "name=x" in response.json()["body"]


def test_sync_handlers_get_the_session() -> None:
    app = App(Settings(secret_key=SECRET))
    Security(app)

    @app.get("/")
    def index(session: Sess) -> dict[str, int]:
        session["n"] = session.get("n", 0) + 1
        return {"n": session["n"]}

    with app.test_client() as client:
        assert [client.get("/").json()["n"] for _ in range(3)] == [1, 2, 3]
