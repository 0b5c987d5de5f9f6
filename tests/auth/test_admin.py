"""The admin battery picks up transom.auth: its users, groups and login."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import selectinload

from transom import App
from transom.admin import Admin
from transom.admin.history import LogEntry
from transom.auth import Permission, User
from transom.db import get_database
from transom.db.config import sync_url

from .conftest import PASSWORD, AppFactory, add_user

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
