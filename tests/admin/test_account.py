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


async def test_related_links_beside_a_foreign_key(database: Database, root: Browser) -> None:
    from .conftest import seed

    await seed(database, authors=1, articles_per_author=1)
    page = (await root.get("/admin/admin/article/1/change")).text
    assert (
        '<a href="/admin/admin/author/1/change" target="_blank" rel="noopener">Edit this author</a>'
        in page
    )
    assert (
        '<a href="/admin/admin/author/add" target="_blank" rel="noopener">Add another author</a>'
        in page
    )
    empty = (await root.get("/admin/admin/article/add")).text
    assert "Edit this author" not in empty  # nothing chosen yet
    assert "Add another author" in empty


async def test_no_related_links_without_permission(database: Database, browser: Browser) -> None:
    from .conftest import seed

    await seed(database, authors=1, articles_per_author=1)
    await make_user(database, "ed", perms=["admin.change_article"])
    await browser.login("ed")
    page = (await browser.get("/admin/admin/article/1/change")).text
    assert page.count('name="author_id"') == 1
    assert "this author" not in page
    assert "Add another author" not in page
