"""Signup, password change, password reset by email, email verification."""

from __future__ import annotations

import asyncio
import re
import threading
from typing import Any

import pytest
from sqlalchemy import event

from transom import Settings
from transom.auth import Argon2Hasher, MemoryBackend, PasswordHashers, User
from transom.auth.hashers import Verification
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


async def test_reset_mail_goes_to_the_stored_address(
    make_app: AppFactory, outbox: MemoryBackend
) -> None:
    # CVE-2019-19844's pattern: "\u212aim@example.com" (a Kelvin sign) folds to kim's address.
    # It may select kim's account, but the link must go to the address kim has on file.
    app = make_app()
    async with app.async_test_client() as client:
        await add_user(app, "kim", email="kim@example.com")
        await add_user(app, "bob", email="Bob@Example.com")
        await post_form(client, "/auth/password/reset", {"email": "\u212aim@example.com"})
        await wait_for(lambda: len(outbox.outbox) == 1)
        assert outbox.outbox[0].to == ["kim@example.com"]
        await post_form(client, "/auth/password/reset", {"email": "bob@example.COM"})
        await wait_for(lambda: len(outbox.outbox) == 2)
        assert outbox.outbox[1].to == ["Bob@Example.com"]


async def test_reset_is_rate_limited_per_address_and_per_client(
    make_app: AppFactory, outbox: MemoryBackend
) -> None:
    app = make_app(reset_rate_ip="4/minute", reset_rate_email="2/minute")
    async with (
        app.async_test_client() as one,
        app.async_test_client(client_address=("10.0.0.7", 1)) as two,
        app.async_test_client(client_address=("10.0.0.8", 1)) as three,
    ):
        await add_user(app, "kim", email="kim@example.com")
        reset = "/auth/password/reset"
        # One inbox, several clients (and spellings): two requests, then 429.
        assert (await post_form(one, reset, {"email": "kim@example.com"})).status_code == 200
        assert (await post_form(two, reset, {"email": "KIM@example.com"})).status_code == 200
        refused = await post_form(three, reset, {"email": "\u212aim@example.com"})
        assert refused.status_code == 429
        assert "retry-after" in refused.headers
        await wait_for(lambda: len(outbox.outbox) == 2)
        # One client, many addresses: four requests (one was spent above), then 429.
        for name in ("a", "b", "c"):
            response = await post_form(one, reset, {"email": f"{name}@example.com"})
            assert response.status_code == 200
        assert (await post_form(one, reset, {"email": "d@example.com"})).status_code == 429
        await asyncio.sleep(0.05)
        assert len(outbox.outbox) == 2


async def test_reset_does_the_account_work_after_the_response(
    make_app: AppFactory, outbox: MemoryBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Known and unknown addresses take the same path: the request only hands the address to
    # a background job, which looks the account up, makes the token and sends the mail. Held
    # at a gate here, the job cannot have run while either answer was produced.
    from transom.auth import views

    app = make_app()
    gate = asyncio.Event()
    jobs: list[str] = []
    real = views.send_password_reset

    async def gated(auth: Any, request: Any, email: str) -> int:
        jobs.append(email)
        await gate.wait()
        return await real(auth, request, email)

    monkeypatch.setattr(views, "send_password_reset", gated)
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    async with app.async_test_client() as client:
        await add_user(app)
        engine = get_database(app).engine.sync_engine
        event.listen(engine, "before_cursor_execute", record)
        try:
            known = await post_form(client, "/auth/password/reset", {"email": "alice@example.com"})
            unknown = await post_form(client, "/auth/password/reset", {"email": "who@example.com"})
            assert known.status_code == unknown.status_code == 200
            assert known.text == unknown.text
            await wait_for(lambda: len(jobs) == 2)  # both jobs started, both at the gate
            assert jobs == ["alice@example.com", "who@example.com"]
            assert not [s for s in statements if "auth_user" in s]  # no lookup yet
            assert outbox.outbox == []
            gate.set()
            await wait_for(lambda: len(outbox.outbox) == 1)
        finally:
            event.remove(engine, "before_cursor_execute", record)
        assert outbox.outbox[0].to == ["alice@example.com"]


async def test_hashing_runs_off_the_event_loop(make_app: AppFactory, outbox: MemoryBackend) -> None:
    loop_thread = threading.get_ident()
    threads: list[int] = []

    class Recording(Argon2Hasher):
        def verify(self, password: str, encoded: str) -> Verification:
            threads.append(threading.get_ident())
            return super().verify(password, encoded)

        def hash(self, password: str) -> str:
            threads.append(threading.get_ident())
            return super().hash(password)

    hashers = PasswordHashers(Recording(time_cost=1, memory_cost=1024, parallelism=1))
    app = make_app(hashers=hashers, signup=True)
    async with app.async_test_client() as client, app.async_test_client() as newcomer:
        await add_user(app)
        threads.clear()
        signup = {"username": "carol", "email": "carol@example.com"}
        signup |= {"password1": PASSWORD, "password2": PASSWORD}
        assert (await post_form(newcomer, "/auth/signup", signup)).status_code == 303
        await wait_for(lambda: len(outbox.outbox) == 1)  # the verification email
        await log_in(client)
        changed = await post_form(
            client,
            "/auth/password/change",
            {"old_password": PASSWORD, "new_password1": NEW, "new_password2": NEW},
        )
        assert changed.status_code == 303
        await post_form(client, "/auth/password/reset", {"email": "alice@example.com"})
        await wait_for(lambda: len(outbox.outbox) == 2)
        moved = await client.get(link_in(outbox).removeprefix("http://testserver"))
        done = await post_form(
            client,
            moved.headers["location"],
            {"new_password1": PASSWORD, "new_password2": PASSWORD},
        )
        assert done.status_code == 303
        # signup: hash; login: verify; change: verify + hash; reset: hash
        assert len(threads) == 5
        assert loop_thread not in threads


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
