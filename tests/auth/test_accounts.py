"""Signup, password change, password reset by email, email verification."""

from __future__ import annotations

import asyncio
import re

import pytest

from transom import Settings
from transom.auth import MemoryBackend, User
from transom.db import get_database
from transom.exceptions import ImproperlyConfigured

from .conftest import PASSWORD, SECRET, AppFactory, add_user, log_in, post_form, tamper, wait_for

pytestmark = pytest.mark.anyio
NEW = "a brand new passphrase 42"


def link_in(outbox: MemoryBackend, index: int = -1) -> str:
    match = re.search(r"https?://\S+", outbox.outbox[index].body)
    assert match
    return match.group(0)


async def test_password_change_ends_other_sessions(make_app: AppFactory) -> None:
    app = make_app()
    async with app.async_test_client() as client, app.async_test_client() as other:
        await add_user(app)
        await log_in(client)
        await log_in(other)
        before = client.cookies.get("session")
        wrong = await post_form(
            client,
            "/auth/password/change",
            {"old_password": "nope", "new_password1": NEW, "new_password2": NEW},
        )
        assert wrong.status_code == 422
        assert "incorrectly" in wrong.text
        weak = await post_form(
            client,
            "/auth/password/change",
            {"old_password": PASSWORD, "new_password1": "password", "new_password2": "password"},
        )
        assert weak.status_code == 422
        assert "too common" in weak.text
        done = await post_form(
            client,
            "/auth/password/change",
            {"old_password": PASSWORD, "new_password1": NEW, "new_password2": NEW},
        )
        assert done.status_code == 303
        assert client.cookies.get("session") != before  # a new session
        assert (await client.get("/maybe")).json() == {"username": "alice"}
        assert (await other.get("/maybe")).json() == {"username": None}


async def test_password_change_needs_login(make_app: AppFactory) -> None:
    app = make_app()
    async with app.async_test_client() as client:
        response = await client.get("/auth/password/change", headers={"accept": "text/html"})
        assert response.status_code == 303
        assert response.headers["location"].startswith("/auth/login?next=")


async def test_password_reset_flow(make_app: AppFactory, outbox: MemoryBackend) -> None:
    app = make_app()
    async with app.async_test_client() as client:
        await add_user(app)
        response = await post_form(client, "/auth/password/reset", {"email": "alice@example.com"})
        assert response.status_code == 200
        assert "Check your inbox" in response.text
        await wait_for(lambda: len(outbox.outbox) == 1)
        link = link_in(outbox)
        assert link.startswith("http://testserver/auth/password/reset/confirm/")
        path = link.removeprefix("http://testserver")
        moved = await client.get(path)
        assert moved.status_code == 303
        assert "reset/confirm" not in moved.headers["location"]
        page = await client.get(moved.headers["location"])
        assert page.status_code == 200
        differ = await post_form(
            client, "/auth/password/reset/set", {"new_password1": NEW, "new_password2": "x"}
        )
        assert differ.status_code == 422
        done = await post_form(
            client, "/auth/password/reset/set", {"new_password1": NEW, "new_password2": NEW}
        )
        assert done.status_code == 303
        await log_in(client, password=NEW)
        # Single use: the same link no longer works.
        again = await client.get(path)
        assert (await client.get(again.headers["location"])).status_code == 400


async def test_reset_does_not_reveal_accounts(make_app: AppFactory, outbox: MemoryBackend) -> None:
    app = make_app()
    async with app.async_test_client() as client:
        await add_user(app)
        known = await post_form(client, "/auth/password/reset", {"email": "alice@example.com"})
        unknown = await post_form(client, "/auth/password/reset", {"email": "who@example.com"})
        assert known.status_code == unknown.status_code == 200
        assert known.text == unknown.text
        await wait_for(lambda: len(outbox.outbox) == 1)
        assert outbox.outbox[0].to == ["alice@example.com"]


async def test_reset_link_ignores_forged_host(make_app: AppFactory, outbox: MemoryBackend) -> None:
    app = make_app(
        Settings(secret_key=SECRET, allowed_hosts=["*"]), site_url="https://real.example"
    )
    async with app.async_test_client() as client:
        await add_user(app)
        token = (await client.get("/csrf")).json()["token"]
        await client.post(
            "/auth/password/reset",
            data={"email": "alice@example.com", "csrf_token": token},
            headers={"host": "evil.example", "origin": "http://evil.example"},
        )
        await wait_for(lambda: len(outbox.outbox) == 1)
        assert link_in(outbox).startswith("https://real.example/auth/password/reset/confirm/")


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1:8410@evil.com", "localhost:80/evil.com", "localhost:8000 evil.com", "localhost:x"],
)
async def test_reset_refuses_a_host_with_more_than_a_port(
    make_app: AppFactory, outbox: MemoryBackend, host: str
) -> None:
    # The account takeover: a right split on ':' took "8410@evil.com" for the port, the host
    # passed allowed_hosts and the emailed link sent the browser (and the token) to evil.com.
    app = make_app()
    async with app.async_test_client() as client:
        await add_user(app)
        token = (await client.get("/csrf")).json()["token"]
        response = await client.post(
            "/auth/password/reset",
            data={"email": "alice@example.com", "csrf_token": token},
            headers={"host": host},
        )
        assert response.status_code == 400
        await asyncio.sleep(0.05)  # a mail would be sent in the background
        assert outbox.outbox == []


async def test_any_host_without_site_url_is_refused(make_app: AppFactory) -> None:
    app = make_app(Settings(secret_key=SECRET, allowed_hosts=["*"]))
    with pytest.raises(ImproperlyConfigured, match="site_url"):
        await app.startup()


async def test_expired_and_tampered_reset_tokens(make_app: AppFactory) -> None:
    app = make_app(reset_max_age=1)
    async with app.async_test_client() as client:
        user = await add_user(app)
        from transom.auth import get_auth

        auth = get_auth(app)
        token = auth.tokens.make("reset", user)
        assert auth.tokens.check("reset", token, user, 60)
        assert not auth.tokens.check("reset", tamper(token), user, 60)
        assert not auth.tokens.check("verify", token, user, 60)  # purpose-bound
        await asyncio.sleep(2.1)
        assert not auth.tokens.check("reset", token, user, 1)
        moved = await client.get(f"/auth/password/reset/confirm/{token}")
        assert (await client.get(moved.headers["location"])).status_code == 400


async def test_signup_and_email_verification(make_app: AppFactory, outbox: MemoryBackend) -> None:
    app = make_app(signup=True)
    async with app.async_test_client() as client:
        weak = await post_form(
            client,
            "/auth/signup",
            {
                "username": "carol",
                "email": "carol@example.com",
                "password1": "carol123",
                "password2": "carol123",
            },
        )
        assert weak.status_code == 422
        done = await post_form(
            client,
            "/auth/signup",
            {"username": "carol", "email": "carol@example.com", "password1": NEW, "password2": NEW},
        )
        assert done.status_code == 303
        assert (await client.get("/maybe")).json() == {"username": "carol"}
        taken = await post_form(
            client,
            "/auth/signup",
            {"username": "carol", "email": "c2@example.com", "password1": NEW, "password2": NEW},
        )
        assert taken.status_code == 422
        assert "taken" in taken.text
        await wait_for(lambda: len(outbox.outbox) == 1)
        path = link_in(outbox).removeprefix("http://testserver")
        assert (await client.get(path)).status_code == 200
        async with get_database(app).session() as db:
            user = (
                await db.execute(User.__table__.select().where(User.username == "carol"))
            ).first()
            assert user is not None
            assert user.email_verified
        assert (await client.get(path)).status_code == 400  # single use


async def test_signup_off_by_default(make_app: AppFactory) -> None:
    app = make_app()
    async with app.async_test_client() as client:
        assert (await client.get("/auth/signup")).status_code == 404
