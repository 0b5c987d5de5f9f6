"""The Auth battery: its config, the shorthand and old spellings, per-app hashers, token-only
APIs (no sessions, no CSRF)."""

from __future__ import annotations

import threading
import warnings
from typing import Any

import pytest

from transom import App, Settings
from transom.auth import (
    Argon2Hasher,
    Auth,
    AuthConfig,
    CurrentUser,
    PasswordHashers,
    User,
    create_api_token,
    get_auth,
)
from transom.db import get_database
from transom.exceptions import ImproperlyConfigured
from transom.security import Security, SecurityConfig
from transom.templating import Templates

from .conftest import PASSWORD, SECRET, AppFactory, add_user

ONE = PasswordHashers(Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1))
TWO = PasswordHashers(Argon2Hasher(time_cost=2, memory_cost=2048, parallelism=1))


def test_install_with_a_config_brings_security_and_templates() -> None:
    app = App(Settings(secret_key=SECRET))
    auth = app.install(Auth(AuthConfig(signup=True, sync_permissions=False)))
    assert Auth.of(app) is auth is get_auth(app)
    assert app.extensions["transom.auth"] is auth
    app.build()
    assert app.batteries.was_required(Security.of(app))
    assert app.batteries.was_required(Templates.of(app))


def test_without_pages_auth_needs_no_templates() -> None:
    app = App(Settings(secret_key=SECRET))
    app.install(Auth(AuthConfig(prefix=None, sync_permissions=False)))
    app.build()
    assert app.batteries.find(Templates) is None
    assert Security.of(app) is not None


def test_an_explicit_security_after_auth_is_the_one_used() -> None:
    app = App(Settings(secret_key=SECRET))
    app.install(Auth(AuthConfig(prefix=None, sync_permissions=False)))
    security = app.install(Security(SecurityConfig(old_secret_keys=["old"])))
    app.build()
    assert Security.of(app) is security
    assert Auth.of(app).secret_keys()[0] == "old"


def test_shorthand_and_old_keyword_spelling() -> None:
    app = App(Settings(secret_key=SECRET))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Security(app)
        auth = Auth(app, AuthConfig(prefix="/account", sync_permissions=False))
    assert auth.prefix == "/account"
    old = App(Settings(secret_key=SECRET))
    with pytest.warns(DeprecationWarning, match=r"app.install\(Auth\(AuthConfig\(prefix=\.\.\."):
        auth = Auth(old, prefix="/members", signup=True, sync_permissions=False)
    assert (auth.prefix, auth.signup) == ("/members", True)
    with old.test_client() as client:
        assert client.get("/members/signup").status_code == 200
    with pytest.raises(ImproperlyConfigured, match="Auth is already installed"):
        Auth(old)


def test_of_without_auth_is_a_clear_error() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"app.install\(Auth\(...\)\)"):
        get_auth(App())


def _hashing_app(hashers: PasswordHashers) -> App:
    app = App(Settings(secret_key=SECRET))
    app.install(Auth(AuthConfig(prefix=None, hashers=hashers, sync_permissions=False)))

    @app.get("/async")
    async def hash_async() -> dict[str, Any]:
        user = User(username="u")
        user.set_password("pw")
        return {"hash": user.password, "ok": await user.acheck_password("pw")}

    @app.get("/sync")
    def hash_sync() -> dict[str, Any]:  # runs in a worker thread
        user = User(username="u")
        user.set_password("pw")
        return {"hash": user.password, "thread": threading.get_ident()}

    return app


def test_two_apps_in_one_process_hash_with_their_own_hashers() -> None:
    first, second = _hashing_app(ONE), _hashing_app(TWO)
    with first.test_client() as one, second.test_client() as two:
        for path in ("/async", "/sync"):
            assert "$m=1024,t=1,p=1$" in one.get(path).json()["hash"]
            assert "$m=2048,t=2,p=1$" in two.get(path).json()["hash"]
        assert one.get("/async").json()["ok"]
    # Outside a request: the app's hashers only where asked for.
    user = User(username="u")
    with Auth.of(second).activate():
        user.set_password("pw")
    assert "$m=2048,t=2,p=1$" in user.password
    user.set_password("pw", hashers=ONE)
    assert "$m=1024,t=1,p=1$" in user.password


# -- token-only APIs: no sessions, no CSRF ----------------------------------------------------

TOKEN_ONLY = {"sessions": None, "csrf": None}


def _api_routes(app: App) -> None:
    @app.post("/api/things")
    async def create(user: CurrentUser) -> dict[str, str]:
        return {"by": user.username}


@pytest.mark.anyio
@pytest.mark.parametrize("security", [TOKEN_ONLY, {"sessions": None}], ids=["no-csrf", "csrf"])
async def test_token_only_api_with_jwt(make_app: AppFactory, security: dict[str, Any]) -> None:
    app = make_app(security=security)
    _api_routes(app)
    async with app.async_test_client() as client:
        await add_user(app)
        # No credentials: 401 with a challenge, never a CSRF 403 nor a login redirect.
        for response in (await client.post("/api/things"), await client.get("/me")):
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == "Bearer"
        tokens = await client.post("/auth/token", json={"username": "alice", "password": PASSWORD})
        assert tokens.status_code == 200, tokens.text
        bearer = {"authorization": f"Bearer {tokens.json()['access_token']}"}
        created = await client.post("/api/things", headers=bearer)
        assert created.json() == {"by": "alice"}
        assert "set-cookie" not in created.headers  # nothing to remember between requests
        # The session pages have nothing to keep a login in: not found, never a 500.
        for path in ("/auth/login", "/auth/logout", "/auth/password/change"):
            assert (await client.get(path)).status_code == 404, path
        assert (await client.post("/auth/login", data={"username": "a"})).status_code == 404


@pytest.mark.anyio
async def test_token_only_api_with_api_tokens_and_no_routes(make_app: AppFactory) -> None:
    app = make_app(prefix=None, jwt=None, security=TOKEN_ONLY)
    _api_routes(app)
    async with app.async_test_client() as client:
        user = await add_user(app)
        async with get_database(app).session() as db:
            token, _ = await create_api_token(db, user, "CI")
            await db.commit()
        refused = await client.post("/api/things")
        assert refused.status_code == 401
        ok = await client.post("/api/things", headers={"authorization": f"Token {token}"})
        assert ok.json() == {"by": "alice"}
    assert app.batteries.find(Templates) is None
