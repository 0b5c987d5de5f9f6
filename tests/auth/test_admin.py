"""The admin battery picks up transom.auth: its users, groups and login."""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import selectinload

from transom import App
from transom.admin import Admin
from transom.admin.history import LogEntry
from transom.auth import Argon2Hasher, PasswordHashers, Permission, User
from transom.auth.hashers import Verification
from transom.db import get_database
from transom.db.config import sync_url
from transom.testing import AsyncTestClient

from .conftest import PASSWORD, AppFactory, add_user, post_form

pytestmark = pytest.mark.anyio
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _token(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None
    return found.group(1)


async def grant(app: App, username: str, codename: str) -> None:
    """Give ``username`` the permission ``codename`` directly."""
    async with get_database(app).session() as db:
        user = await db.scalar(
            select(User)
            .where(User.username == username)
            .options(selectinload(User.user_permissions))
        )
        permission = await db.scalar(select(Permission).where(Permission.codename == codename))
        assert user is not None
        assert permission is not None, f"{codename} was not created at start-up"
        user.user_permissions.append(permission)
        await db.commit()


async def test_admin_uses_auth_users(make_app: AppFactory, db_url: str) -> None:
    engine = create_engine(sync_url(db_url))
    LogEntry.metadata.tables["transom_admin_log"].create(engine, checkfirst=True)
    try:
        app = make_app(sync_permissions=True)  # the permission rows, as in production
        admin = Admin(app)
        assert admin.auth is not None
        assert admin.auth.user_model is not None
        assert admin.auth.user_model.__name__ == "User"
        async with app.async_test_client() as client:
            await add_user(app, "root", is_staff=True, is_superuser=True)
            await add_user(app, "clerk", is_staff=False)
            page = await client.get("/admin/login")
            denied = await client.post(
                "/admin/login",
                data={"username": "clerk", "password": PASSWORD, "csrf_token": _token(page.text)},
            )
            assert denied.status_code != 303 or "login" in denied.headers.get("location", "")
            page = await client.get("/admin/login")
            done = await client.post(
                "/admin/login",
                data={"username": "root", "password": PASSWORD, "csrf_token": _token(page.text)},
            )
            assert done.status_code == 303
            # The admin's login is transom.auth's: the site knows this user too.
            assert (await client.get("/maybe")).json() == {"username": "root"}
            users = await client.get("/admin/auth/user")
            assert users.status_code == 200, users.text
            assert "clerk" in users.text
            groups = await client.get("/admin/auth/group")
            assert groups.status_code == 200
            clerk_id = re.search(r"/admin/auth/user/(\d+)/change", users.text)
            assert clerk_id is not None
            change = await client.get(f"/admin/auth/user/{clerk_id.group(1)}/change")
            assert change.status_code == 200
            assert "$argon2id$" not in change.text  # the hash is never shown
            client.cookies.clear()  # a new browser

            # A staff member who is not a superuser gets exactly what auth's permissions grant:
            # the admin asks for the same codenames ("auth.view_user") that groups hold.
            await add_user(app, "viewer", is_staff=True)
            await grant(app, "viewer", "auth.view_user")
            page = await client.get("/admin/login")
            done = await client.post(
                "/admin/login",
                data={"username": "viewer", "password": PASSWORD, "csrf_token": _token(page.text)},
            )
            assert done.status_code == 303
            assert (await client.get("/admin/auth/user")).status_code == 200
            assert (await client.get("/admin/auth/user/add")).status_code == 403
            assert (await client.get("/admin/auth/group")).status_code == 403
    finally:
        LogEntry.metadata.tables["transom_admin_log"].drop(engine, checkfirst=True)
        engine.dispose()


class RecordingHasher(Argon2Hasher):
    """Cheap argon2 that notes the thread of each verification and hash."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verified: list[int] = []
        self.hashed: list[int] = []

    def verify(self, password: str, encoded: str) -> Verification:
        self.verified.append(threading.get_ident())
        return super().verify(password, encoded)

    def hash(self, password: str) -> str:
        self.hashed.append(threading.get_ident())
        return super().hash(password)


async def admin_login(client: AsyncTestClient, username: str, password: str) -> Any:
    page = await client.get("/admin/login")
    return await client.post(
        "/admin/login",
        data={"username": username, "password": password, "csrf_token": _token(page.text)},
    )


async def test_admin_refuses_non_staff_like_a_wrong_password(make_app: AppFactory) -> None:
    # A different answer would confirm that the password is right for this account.
    app = make_app()
    Admin(app)
    async with app.async_test_client() as client:
        await add_user(app, "clerk", is_staff=False)
        await add_user(app, "gone", is_staff=True, is_active=False)
        answers = [
            await admin_login(client, "clerk", "wrong password"),
            await admin_login(client, "clerk", PASSWORD),
            await admin_login(client, "gone", PASSWORD),
        ]
        assert [a.status_code for a in answers] == [400, 400, 400]
        # Identical but for the CSRF token and the name typed in (echoed into the form).
        bodies = {_CSRF.sub("", a.text.replace('"gone"', '"clerk"')) for a in answers}
        assert len(bodies) == 1
        assert (await client.get("/maybe")).json() == {"username": None}


async def test_admin_login_counts_in_the_site_login_limits(make_app: AppFactory) -> None:
    app = make_app(login_rate_account="3/minute")
    Admin(app)
    async with (
        app.async_test_client() as attacker,
        app.async_test_client(client_address=("10.0.0.3", 1)) as owner,
    ):
        await add_user(app, "root", is_staff=True, is_superuser=True)
        await post_form(attacker, "/auth/login", {"username": "root", "password": "x"})
        await admin_login(attacker, "root", "x")
        await admin_login(attacker, "root", "y")
        # Three attempts from this address, on either form: the fourth is refused, even right.
        refused = await admin_login(attacker, "root", PASSWORD)
        assert refused.status_code == 429
        assert "retry-after" in refused.headers
        assert (
            await post_form(attacker, "/auth/login", {"username": "root", "password": PASSWORD})
        ).status_code == 429
        # The owner, elsewhere, still gets in.
        assert (await admin_login(owner, "root", PASSWORD)).status_code == 303


async def test_admin_login_hashes_unknown_users_off_the_event_loop(make_app: AppFactory) -> None:
    hasher = RecordingHasher()
    app = make_app(hashers=PasswordHashers(hasher))
    Admin(app)
    loop_thread = threading.get_ident()
    async with app.async_test_client() as client:
        await add_user(app, "root", is_staff=True, is_superuser=True)
        hasher.hashed.clear()  # add_user hashed on the test's own loop
        await admin_login(client, "nobody", "x")  # makes the dummy hash once
        hasher.verified.clear()
        assert (await admin_login(client, "nobody", "x")).status_code == 400
        assert len(hasher.verified) == 1  # against the dummy hash, like a wrong password
        assert (await admin_login(client, "root", PASSWORD)).status_code == 303
        assert len(hasher.verified) == 2
        assert loop_thread not in hasher.verified + hasher.hashed


async def test_admin_sets_passwords_off_the_event_loop(make_app: AppFactory, db_url: str) -> None:
    engine = create_engine(sync_url(db_url))
    LogEntry.metadata.tables["transom_admin_log"].create(engine, checkfirst=True)
    hasher = RecordingHasher()
    try:
        app = make_app(hashers=PasswordHashers(hasher))
        admin = Admin(app)
        loop_thread = threading.get_ident()
        async with app.async_test_client() as client:
            await admin.ensure_superuser("root", PASSWORD)
            user = await add_user(app, "clerk")
            assert (await admin_login(client, "root", PASSWORD)).status_code == 303
            url = f"/admin/auth/user/{user.id}/password"
            page = await client.get(url)
            new = "another long passphrase 7"
            changed = await client.post(
                url, data={"password1": new, "password2": new, "csrf_token": _token(page.text)}
            )
            assert changed.status_code == 303, changed.text
            assert len(hasher.hashed) == 3  # ensure_superuser, add_user (ours), the form
            hashed_by_app = [hasher.hashed[0], hasher.hashed[2]]
            assert loop_thread not in hashed_by_app + hasher.verified
    finally:
        LogEntry.metadata.tables["transom_admin_log"].drop(engine, checkfirst=True)
        engine.dispose()
