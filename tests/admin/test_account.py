"""The header's account links: view site, change my password, and a logout confirmation."""

from __future__ import annotations

import pytest

from transom import App
from transom.admin.site import Admin
from transom.db import Database
from transom.testing import AsyncTestClient

from .conftest import PASSWORD, Browser, make_user

pytestmark = pytest.mark.anyio


@pytest.fixture
async def root(database: Database, browser: Browser) -> Browser:
    await make_user(database, "root", superuser=True)
    await browser.login("root")
    return browser


async def test_header_links(root: Browser) -> None:
    page = (await root.get("/admin")).text
    assert '<a href="/">View site</a>' in page
    assert '<a href="/admin/password">Change password</a>' in page


async def test_logout_asks_then_says_so(root: Browser) -> None:
    confirm = await root.get("/admin/logout")
    assert confirm.status_code == 200
    assert "Log out?" in confirm.text
    assert 'action="/admin/logout"' in confirm.text
    done = await root.post("/admin/logout", {}, token_from="/admin/logout")
    assert done.status_code == 303
    assert done.headers["location"] == "/admin/login?logged_out=1"
    assert "You have been logged out." in (await root.get(done.headers["location"])).text
    assert (await root.get("/admin")).status_code == 302
    again = await root.get("/admin/logout")  # nobody to log out: to the login page
    assert again.status_code == 302


async def test_change_my_own_password(
    database: Database, site: tuple[App, Admin], browser: Browser
) -> None:
    await make_user(database, "ann", perms=[])  # staff without any model permission
    await browser.login("ann")
    form = await browser.get("/admin/password")
    assert form.status_code == 200
    assert 'autocomplete="current-password"' in form.text
    new = {"password1": "a brand new secret", "password2": "a brand new secret"}
    wrong = await browser.post("/admin/password", {"current_password": "nope", **new})
    assert wrong.status_code == 422
    assert "Your current password was entered incorrectly." in wrong.text
    differ = await browser.post(
        "/admin/password",
        {"current_password": PASSWORD, "password1": "a brand new secret", "password2": "other"},
    )
    assert "The two passwords differ." in differ.text
    done = await browser.post("/admin/password", {"current_password": PASSWORD, **new})
    assert done.status_code == 303
    assert "Your password was changed." in (await browser.get("/admin")).text  # still logged in
    app, _ = site
    for password, status in (("a brand new secret", 303), (PASSWORD, 400)):
        async with AsyncTestClient(app) as other:
            assert (await Browser(other).login("ann", password)).status_code == status
