"""Installing the battery: defaults, double installation, debug mode, raw bodies, sync handlers."""

from __future__ import annotations

import logging
import warnings

import pytest

from transom import App, Request, Settings
from transom.exceptions import ImproperlyConfigured
from transom.security import EXTENSION_KEY, CSRFToken, Security, SecurityConfig, SessionDataDep

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
    async def index(session: SessionDataDep) -> dict[str, int]:
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
    def index(session: SessionDataDep) -> dict[str, int]:
        session["n"] = session.get("n", 0) + 1
        return {"n": session["n"]}

    with app.test_client() as client:
        assert [client.get("/").json()["n"] for _ in range(3)] == [1, 2, 3]


def test_install_with_a_config_then_of() -> None:
    app = App(Settings(secret_key=SECRET))
    config = SecurityConfig(csrf=None, old_secret_keys=["old"])
    security = app.install(Security(config))
    assert Security.of(app) is security
    assert security.config is config
    assert security.csrf is None
    assert security.old_secret_keys == ("old",)
    assert app.extensions[EXTENSION_KEY] is security


def test_the_app_shorthand_installs_at_once_without_a_warning() -> None:
    app = App(Settings(secret_key=SECRET))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        security = Security(app, SecurityConfig(headers=None))
    assert Security.of(app) is security
    assert security.headers is None


def test_keyword_options_still_work_with_a_deprecation_warning() -> None:
    app = App(Settings(secret_key=SECRET))
    with pytest.warns(DeprecationWarning, match=r"Security\(SecurityConfig\(csrf=\.\.\.\)\)") as w:
        security = Security(app, csrf=None)
    assert w[0].filename == __file__  # points at the caller's line
    assert Security.of(app) is security
    assert security.csrf is None
    with app.test_client() as client:
        assert client.get("/nothing").status_code == 404
    with pytest.raises(TypeError, match="unexpected keyword arguments: cfrs"):
        Security(App(), cfrs=None)


def test_of_without_security_is_a_clear_error() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"app.install\(Security\(...\)\)"):
        Security.of(App())
