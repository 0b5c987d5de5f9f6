"""Who gets in, and what each permission lets a user see and do (server-side 403s)."""

from __future__ import annotations

import re
import threading

import pytest

from transom import App
from transom.admin import Admin, SessionAuth
from transom.db import Database
from transom.security.logins import LoginLimits
from transom.testing import AsyncTestClient

from .conftest import PASSWORD, Browser, make_user, seed
from .models import User

pytestmark = pytest.mark.anyio

AUTHORS = "/admin/admin/author"
ARTICLES = "/admin/admin/article"


async def test_anonymous_is_sent_to_login(browser: Browser) -> None:
    r = await browser.get(f"{AUTHORS}?q=x")
    assert r.status_code == 302
    assert r.headers["location"] == "/admin/login?next=%2Fadmin%2Fadmin%2Fauthor%3Fq%3Dx"
    page = await browser.get("/admin/login")
    assert page.status_code == 200
    assert 'name="csrf_token"' in page.text


async def test_anonymous_post_is_refused(browser: Browser) -> None:
    r = await browser.post(f"{AUTHORS}/add", {"name": "x"}, token_from="/admin/login")
    assert r.status_code == 403


async def test_wrong_password_and_inactive_and_non_staff(
    database: Database, browser: Browser
) -> None:
    # One answer for every refusal: a different one for "customer" with the right password
    # would confirm the password of an account the admin does not let in.
    await make_user(database, "customer", staff=False)
    await make_user(database, "gone", active=False)
    await make_user(database, "staff")
    answers = [
        await browser.login("customer", "nope"),
        await browser.login("customer"),
        await browser.login("gone"),
        await browser.login("nobody"),
        await browser.login("staff", "nope"),
    ]
    assert {a.status_code for a in answers} == {400}
    bodies = {re.sub(r'(value|name)="[^"]*"', "", a.text) for a in answers}
    assert len(bodies) == 1
    assert "may not use the administration" not in answers[1].text
    assert (await browser.get("/admin")).status_code == 302


async def test_login_is_rate_limited(
    database: Database, site: tuple[App, Admin], browser: Browser
) -> None:
    _, admin = site
    assert isinstance(admin.auth, SessionAuth)
    admin.auth.login_limits = LoginLimits(account_ip="2/minute")
    await make_user(database, "staff")
    assert (await browser.login("staff", "nope")).status_code == 400
    assert (await browser.login("staff", "nope")).status_code == 400
    refused = await browser.login("staff")
    assert refused.status_code == 429
    assert "retry-after" in refused.headers
    # Only this address is locked out of the account.
    async with AsyncTestClient(site[0], client_address=("10.0.0.5", 1)) as client:
        assert (await Browser(client).login("staff")).status_code == 303


async def test_unknown_users_cost_a_password_check_off_the_event_loop(
    database: Database, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks: list[tuple[str, int]] = []
    real = User.check_password

    def check_password(self: User, raw: str) -> bool:
        checks.append((self.username, threading.get_ident()))
        return real(self, raw)

    monkeypatch.setattr(User, "check_password", check_password)
    await make_user(database, "staff")
    assert (await browser.login("nobody")).status_code == 400
    assert (await browser.login("staff")).status_code == 303
    # The unknown name was checked against a throw-away user, as slow as a real check.
    assert [name for name, _ in checks] == [None, "staff"]
    assert threading.get_ident() not in [thread for _, thread in checks]


async def test_login_redirects_to_next_on_this_site_only(
    database: Database, browser: Browser
) -> None:
    await make_user(database, "root", superuser=True)
    page = await browser.get("/admin/login?next=//evil.example/")
    r = await browser.client.post(
        "/admin/login?next=//evil.example/",
        data={
            "username": "root",
            "password": "correct horse battery",
            "csrf_token": _token(page.text),
        },
    )
    assert r.headers["location"] == "/admin"
    # Browsers drop tabs and newlines in URLs: "/\t/evil.example/" is "//evil.example/".
    browser.client.cookies.clear()
    page = await browser.get("/admin/login")
    r = await browser.client.post(
        "/admin/login?next=/%09/evil.example/",
        data={"username": "root", "password": PASSWORD, "csrf_token": _token(page.text)},
    )
    assert r.headers["location"] == "/admin"
    assert (await browser.get("/admin/login?next=/admin/admin/tag")).headers[
        "location"
    ] == "/admin/admin/tag"


def _token(html: str) -> str:
    from .conftest import token

    return token(html)


async def test_staff_flag_removed_after_login(database: Database, browser: Browser) -> None:
    user = await make_user(database, "staff", perms=["admin.view_author"])
    assert (await browser.login("staff")).status_code == 303
    async with database.session() as db:
        row = await db.get(User, user.id)
        assert row is not None
        row.is_staff = False
        await db.commit()
    r = await browser.get(AUTHORS)
    assert r.status_code == 403
    assert "may not use the administration" in r.text


async def test_logout(database: Database, browser: Browser) -> None:
    await make_user(database, "root", superuser=True)
    await browser.login("root")
    r = await browser.post("/admin/logout", {})
    assert r.status_code == 303
    assert (await browser.get("/admin")).status_code == 302


async def test_csrf_is_required(database: Database, browser: Browser) -> None:
    await make_user(database, "root", superuser=True)
    await browser.login("root")
    r = await browser.client.post(f"{AUTHORS}/add", data={"name": "x", "email": "x@example.com"})
    assert r.status_code == 403
    assert "CSRF" in r.text


async def test_dashboard_shows_only_permitted_models(database: Database, browser: Browser) -> None:
    await make_user(database, "editor", perms=["admin.view_author", "admin.add_tag"])
    await browser.login("editor")
    page = (await browser.get("/admin")).text
    assert AUTHORS in page
    assert "/admin/admin/tag/add" in page
    assert ARTICLES not in page
    assert f"{AUTHORS}/add" not in page


async def test_no_permission_at_all(database: Database, browser: Browser) -> None:
    await make_user(database, "nobody")
    await seed(database, authors=1, articles_per_author=1)
    await browser.login("nobody")
    assert "no permission" in (await browser.get("/admin")).text
    for url in (
        AUTHORS,
        f"{AUTHORS}/add",
        f"{AUTHORS}/1/change",
        f"{AUTHORS}/1/delete",
        f"{AUTHORS}/1/history",
        f"{ARTICLES}/autocomplete?field=author_id",
    ):
        r = await browser.get(url)
        assert r.status_code == 403, url
    for url, data in (
        (f"{AUTHORS}/add", {"name": "x", "email": "x@example.com"}),
        (f"{AUTHORS}/1/change", {"name": "x", "email": "x@example.com"}),
        (f"{AUTHORS}/1/delete", {"confirm": "yes"}),
        (AUTHORS, {"action": "delete_selected", "_selected": "1", "confirm": "yes"}),
    ):
        r = await browser.post(url, data)
        assert r.status_code == 403, url


async def test_view_only_user(database: Database, browser: Browser) -> None:
    await make_user(database, "viewer", perms=["admin.view_author"])
    await seed(database, authors=1, articles_per_author=0)
    await browser.login("viewer")
    listing = (await browser.get(AUTHORS)).text
    assert "Author 0" in listing
    assert f"{AUTHORS}/add" not in listing
    assert "delete_selected" not in listing
    assert 'value="deactivate"' not in listing  # needs change permission
    edit = await browser.get(f"{AUTHORS}/1/change")
    assert edit.status_code == 200
    assert 'name="name"' not in edit.text
    assert "Save" not in edit.text
    r = await browser.post(f"{AUTHORS}/1/change", {"name": "Hacked", "email": "h@example.com"})
    assert r.status_code == 403
    assert (
        await browser.post(AUTHORS, {"action": "deactivate", "_selected": "1"})
    ).status_code == 403
    assert (await browser.get(f"{AUTHORS}/1/history")).status_code == 200
    async with database.session() as db:
        from .models import Author

        author = await db.get(Author, 1)
        assert author is not None
        assert author.name == "Author 0"
        assert author.active


async def test_change_permission_implies_view(database: Database, browser: Browser) -> None:
    await make_user(database, "changer", perms=["admin.change_author"])
    await seed(database, authors=1, articles_per_author=0)
    await browser.login("changer")
    assert (await browser.get(AUTHORS)).status_code == 200
    edit = await browser.get(f"{AUTHORS}/1/change")
    assert 'name="name"' in edit.text
    assert "Save and add another" not in edit.text  # no add permission
    assert f"{AUTHORS}/1/delete" not in edit.text
    assert (await browser.get(f"{AUTHORS}/add")).status_code == 403
    r = await browser.post(
        f"{AUTHORS}/1/change", {"name": "Renamed", "email": "a0@example.com", "active": "on"}
    )
    assert r.status_code == 303


async def test_unknown_model_and_object_lead_back_with_a_message(
    database: Database, browser: Browser
) -> None:
    """Inside the admin, no bare 404: back to the model's list (or the dashboard), saying why."""
    await make_user(database, "root", superuser=True)
    await browser.login("root")
    model = await browser.get("/admin/admin/nothing")
    assert model.status_code == 303
    assert model.headers["location"] == "/admin"
    assert "There is no such model in the administration." in (await browser.get("/admin")).text
    for url in (f"{AUTHORS}/999/change", f"{AUTHORS}/abc/change", f"{AUTHORS}/999/history"):
        r = await browser.get(url)
        assert r.status_code == 303, url
        assert r.headers["location"] == AUTHORS
        page = (await browser.get(AUTHORS)).text
        assert "message-error" in page
        assert "Perhaps it was deleted?" in page
    # The JSON of the search box keeps its 404 (a script reads it, not a person).
    assert (await browser.get(f"{AUTHORS}/autocomplete?field=nothing")).status_code == 404


async def test_head_while_logged_out_redirects_like_get(
    database: Database, browser: Browser
) -> None:
    for url in ("/admin", AUTHORS, f"{AUTHORS}/1/change"):
        get = await browser.client.get(url)
        head = await browser.client.head(url)
        assert get.status_code == head.status_code == 302, url
        assert head.headers["location"] == get.headers["location"]
        assert head.headers["location"].startswith("/admin/login?next=")


async def test_assets_and_headers(database: Database, browser: Browser) -> None:
    await make_user(database, "root", superuser=True)
    await browser.login("root")
    page = await browser.get("/admin")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "<script>" not in page.text
    assert " style=" not in page.text
    css = await browser.get("/admin/static/admin/admin.css")
    assert css.status_code == 200
    assert "--accent" in css.text
    js = await browser.get("/admin/static/admin/admin.js")
    assert js.status_code == 200


async def test_add_only_user(database: Database, browser: Browser) -> None:
    await make_user(database, "adder", perms=["admin.add_tag"])
    await browser.login("adder")
    r = await browser.post("/admin/admin/tag/add", {"name": "new", "_continue": "1"})
    assert r.status_code == 303
    assert r.headers["location"] == "/admin"
    assert "was added" in (await browser.get("/admin")).text
    assert (await browser.get("/admin/admin/tag")).status_code == 403
    assert (await browser.get("/admin/admin/tag/1/change")).status_code == 403


async def test_ensure_superuser(
    database: Database, browser: Browser, site: tuple[object, Admin]
) -> None:
    _, admin = site
    password = await admin.ensure_superuser("boss")
    assert password
    assert await admin.ensure_superuser("boss") is None
    assert (await browser.login("boss", password)).status_code == 303


def test_old_safe_next_is_auths_with_a_warning() -> None:
    from transom.admin.views.common import safe_next

    with pytest.warns(DeprecationWarning, match=r"transom\.auth\.safe_next"):
        assert safe_next("/admin/x", "/admin") == "/admin/x"
    with pytest.warns(DeprecationWarning, match="deprecated"):
        # What the old check let through: a tab that browsers drop, making "//evil".
        assert safe_next("/\t/evil.example/", "/admin") == "/admin"
    with pytest.warns(DeprecationWarning, match="deprecated"):
        assert safe_next("https://evil.example/", "/admin") == "/admin"
