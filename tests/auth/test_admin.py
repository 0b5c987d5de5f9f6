"""The admin battery picks up transom.auth: its users, groups and login."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import create_engine

from transom.admin import Admin
from transom.admin.history import LogEntry
from transom.db.config import sync_url

from .conftest import PASSWORD, AppFactory, add_user

pytestmark = pytest.mark.anyio
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _token(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None
    return found.group(1)


async def test_admin_uses_auth_users(make_app: AppFactory, db_url: str) -> None:
    engine = create_engine(sync_url(db_url))
    LogEntry.metadata.tables["transom_admin_log"].create(engine, checkfirst=True)
    try:
        app = make_app()
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
            users = await client.get("/admin/transom/user")
            assert users.status_code == 200, users.text
            assert "clerk" in users.text
            groups = await client.get("/admin/transom/group")
            assert groups.status_code == 200
            clerk_id = re.search(r"/admin/transom/user/(\d+)/change", users.text)
            assert clerk_id is not None
            change = await client.get(f"/admin/transom/user/{clerk_id.group(1)}/change")
            assert change.status_code == 200
            assert "$argon2id$" not in change.text  # the hash is never shown
    finally:
        LogEntry.metadata.tables["transom_admin_log"].drop(engine, checkfirst=True)
        engine.dispose()
