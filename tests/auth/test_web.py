"""Web login: sessions, fixation, logout, remember-me, login_required and safe ``next``."""

from __future__ import annotations

import pytest

from transom.auth import User
from transom.db import get_database
from transom.security import MemorySessionBackend, SessionConfig

from .conftest import PASSWORD, AppFactory, add_user, log_in, post_form, tamper

pytestmark = pytest.mark.anyio


async def test_login_then_me(make_app: AppFactory) -> None:
    app = make_app()
    async with app.async_test_client() as client:
        await add_user(app)
        assert (await client.get("/maybe")).json() == {"username": None}
        response = await log_in(client, next="/me")
        assert response.headers["location"] == "/me"
        assert (await client.get("/me")).json()["username"] == "alice"
        async with get_database(app).session() as db:
            user = await db.get(User, (await client.get("/me")).json()["id"])
            assert user is not None
            assert user.last_login is not None


async def test_wrong_password_and_unknown_user_look_the_same(make_app: AppFactory) -> None:
    app = make_app()
    async with app.async_test_client() as client:
        await add_user(app)
        wrong = await post_form(client, "/auth/login", {"username": "alice", "password": "nope"})
        unknown = await post_form(client, "/auth/login", {"username": "bob", "password": "nope"})
        assert wrong.status_code == unknown.status_code == 422
        assert "correct username and password" in wrong.text
        # Identical pages apart from the echoed name (and the CSRF token, fresh each time).
        before = wrong.text.replace("alice", "bob").split('name="csrf_token"')[0]
        assert before == unknown.text.split('name="csrf_token"')[0]
        assert (await client.get("/maybe")).json() == {"username": None}


async def test_inactive_user_cannot_log_in(make_app: AppFactory) -> None:
    app = make_app()
    async with app.async_test_client() as client:
        await add_user(app, is_active=False)
        response = await post_form(
            client, "/auth/login", {"username": "alice", "password": PASSWORD}
        )
        assert response.status_code == 422


async def test_login_requires_csrf(make_app: AppFactory) -> None:
    app = make_app()
    async with app.async_test_client() as client:
        await add_user(app)
        credentials = {"username": "alice", "password": PASSWORD}
        # Login CSRF: a page elsewhere posts the attacker's credentials; the browser has no
        # cookie of ours yet, but says where the request comes from.
        cross_site = {"origin": "https://evil.example", "sec-fetch-site": "cross-site"}
        forged = await client.post("/auth/login", data=credentials, headers=cross_site)
        assert forged.status_code == 403
        assert client.cookies.get("session") is None
        # A browser that has a session must send the token.
        await client.get("/csrf")
        response = await client.post("/auth/login", data=credentials)
        assert response.status_code == 403


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "///evil.example/",
        "/\\evil.example/",
        "\\\\evil.example",
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "http://testserver/x",  # scheme downgrade from https
        "https://testserver@evil.example/",
        "/\t/evil.example",
        "data:text/html,hi",
    ],
)
async def test_unsafe_next_is_ignored(make_app: AppFactory, target: str) -> None:
    app = make_app()
    async with app.async_test_client(base_url="https://testserver") as client:
        await add_user(app)
        response = await log_in(client, next=target)
        assert response.headers["location"] == "/"


async def test_safe_next_on_same_host(make_app: AppFactory) -> None:
    app = make_app()
    async with app.async_test_client(base_url="https://testserver") as client:
        await add_user(app)
        response = await log_in(client, next="https://testserver/me?x=1")
        assert response.headers["location"] == "https://testserver/me?x=1"


async def test_login_required_redirects_browsers_and_401s_apis(make_app: AppFactory) -> None:
    app = make_app()
    async with app.async_test_client() as client:
        html = await client.get("/private?a=1", headers={"accept": "text/html"})
        assert html.status_code == 303
        assert html.headers["location"] == "/auth/login?next=%2Fprivate%3Fa%3D1"
        api = await client.get("/me")
        assert api.status_code == 401
        assert "www-authenticate" in api.headers
        await add_user(app)
        await log_in(client, next=html.headers["location"].split("next=")[1])
        assert (await client.get("/private")).json() == {"ok": True}


async def test_login_page_renders(make_app: AppFactory) -> None:
    app = make_app()
    async with app.async_test_client() as client:
        page = await client.get("/auth/login?next=/me")
        assert page.status_code == 200
        assert 'name="csrf_token"' in page.text
        assert 'value="/me"' in page.text


async def test_new_session_key_on_login(make_app: AppFactory) -> None:
    backend = MemorySessionBackend()
    app = make_app(security={"sessions": SessionConfig(backend=backend)})
    async with app.async_test_client() as client:
        await add_user(app)
        await client.get("/csrf")  # an anonymous session exists
        before = set(backend._data)
        planted = client.cookies.get("session")
        await log_in(client)
        after = set(backend._data)
        assert not before & after  # the pre-login key is gone from the store
        assert client.cookies.get("session") != planted
        # The attacker's copy of the pre-login cookie is not logged in.
        client.cookies.clear()
        client.cookies.set("session", str(planted))
        assert (await client.get("/maybe")).json() == {"username": None}


async def test_logout_really_ends_a_signed_cookie_session(make_app: AppFactory) -> None:
    app = make_app()
    async with app.async_test_client() as client:
        await add_user(app)
        await log_in(client)
        stolen = client.cookies.get("session")
        response = await post_form(client, "/auth/logout", {})
        assert response.status_code == 303
        assert (await client.get("/maybe")).json() == {"username": None}
        client.cookies.clear()
        client.cookies.set("session", str(stolen))  # replay the logged-in cookie
        assert (await client.get("/maybe")).json() == {"username": None}


async def test_logout_ends_a_server_side_session(make_app: AppFactory) -> None:
    backend = MemorySessionBackend()
    app = make_app(security={"sessions": SessionConfig(backend=backend)})
    async with app.async_test_client() as client:
        await add_user(app)
        await log_in(client)
        stolen = client.cookies.get("session")
        await post_form(client, "/auth/logout", {})
        client.cookies.clear()
        client.cookies.set("session", str(stolen))
        assert (await client.get("/maybe")).json() == {"username": None}


async def test_logout_needs_post(make_app: AppFactory) -> None:
    app = make_app()
    async with app.async_test_client() as client:
        await add_user(app)
        await log_in(client)
        page = await client.get("/auth/logout")
        assert page.status_code == 200
        assert "<form" in page.text
        assert (await client.get("/maybe")).json() == {"username": "alice"}


async def test_remember_me(make_app: AppFactory) -> None:
    app = make_app()
    async with app.async_test_client() as client:
        await add_user(app)
        await log_in(client, remember="on")
        remember = client.cookies.get("remember_token")
        assert remember
        client.cookies.delete("session")  # the browser session is gone
        assert (await client.get("/maybe")).json() == {"username": "alice"}
        # Logging out forgets it, and a copy no longer works.
        await post_form(client, "/auth/logout", {})
        client.cookies.clear()
        client.cookies.set("remember_token", str(remember))
        assert (await client.get("/maybe")).json() == {"username": None}


async def test_without_remember_me_no_cookie(make_app: AppFactory) -> None:
    app = make_app()
    async with app.async_test_client() as client:
        await add_user(app)
        await log_in(client)
        assert client.cookies.get("remember_token") is None


async def test_tampered_remember_cookie_is_ignored(make_app: AppFactory) -> None:
    app = make_app()
    async with app.async_test_client() as client:
        await add_user(app)
        await log_in(client, remember="on")
        value = str(client.cookies.get("remember_token"))
        client.cookies.clear()
        client.cookies.set("remember_token", tamper(value))
        assert (await client.get("/maybe")).json() == {"username": None}


async def test_bearer_header_never_falls_back_to_the_session(make_app: AppFactory) -> None:
    app = make_app()
    async with app.async_test_client() as client:
        await add_user(app)
        await log_in(client)
        response = await client.get("/maybe", headers={"authorization": "Bearer garbage"})
        assert response.status_code == 401
        other = await client.get("/maybe", headers={"authorization": "Custom xyz"})
        assert other.json() == {"username": None}


async def test_hash_upgraded_on_login(make_app: AppFactory) -> None:
    import base64
    import hashlib

    app = make_app()
    salt = "saltsalt"
    digest = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), salt.encode(), 1000)
    legacy = f"pbkdf2_sha256$1000${salt}${base64.b64encode(digest).decode()}"
    async with app.async_test_client() as client:
        user = await add_user(app)
        async with get_database(app).session() as db:
            row = await db.get(User, user.id)
            assert row is not None
            row.password = legacy
            await db.commit()
        await log_in(client)
        async with get_database(app).session() as db:
            row = await db.get(User, user.id)
            assert row is not None
            assert row.password.startswith("$argon2id$")


async def test_deactivated_user_is_logged_out(make_app: AppFactory) -> None:
    app = make_app()
    async with app.async_test_client() as client:
        user = await add_user(app)
        await log_in(client)
        async with get_database(app).session() as db:
            row = await db.get(User, user.id)
            assert row is not None
            row.is_active = False
            await db.commit()
        assert (await client.get("/maybe")).json() == {"username": None}


async def test_secret_key_rotation_keeps_logins(make_app: AppFactory) -> None:
    from transom import Settings

    from .conftest import SECRET

    old = make_app()
    async with old.async_test_client() as client:
        await add_user(old)
        await log_in(client, remember="on")
        cookies = dict(client.cookies)
    new = make_app(Settings(secret_key="a-new-key", secret_key_fallbacks=[SECRET]))
    async with new.async_test_client() as client:
        client.cookies.update(cookies)
        assert (await client.get("/maybe")).json() == {"username": "alice"}
        client.cookies.clear()
        client.cookies.set("remember_token", cookies["remember_token"])
        assert (await client.get("/maybe")).json() == {"username": "alice"}


async def test_custom_login_url(make_app: AppFactory) -> None:
    app = make_app(login_url="/signin")
    async with app.async_test_client() as client:
        response = await client.get("/private", headers={"accept": "text/html"})
        assert response.headers["location"] == "/signin?next=%2Fprivate"


async def test_a_nul_byte_in_a_login_or_reset_form_is_not_a_500(make_app: AppFactory) -> None:
    """PostgreSQL can't compare text holding NUL: the answer is still a 4xx."""
    app = make_app()
    async with app.async_test_client() as client:
        await add_user(app)
        for username in ("al\x00ice", "alice@example.com\x00"):
            r = await post_form(client, "/auth/login", {"username": username, "password": "x"})
            assert r.status_code == 422, r.text
        r = await post_form(client, "/auth/password/reset", {"email": "alice\x00@example.com"})
        assert r.status_code < 500, r.text
        assert (await client.get("/maybe")).json() == {"username": None}
