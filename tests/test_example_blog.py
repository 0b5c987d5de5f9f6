"""The example app that `make demo` runs: pages, forms, the API, login, the admin.

The app is loaded once (its model joins the shared metadata); each test gets a fresh SQLite
database built by the example's own migrations, as `make demo` builds it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from openapi_spec_validator import validate
from sqlalchemy import MetaData, select

from _browser import serve_in_thread, start_chromium
from test_cli import _free_port, serving
from transom.db import NAMING_CONVENTION, Database, DatabaseConfig, Model, get_database
from transom.db.migrations import Migrations
from transom.testing import TestClient

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "blog"
PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def module() -> ModuleType:
    # Loaded once per test session: its models join the shared metadata, which refuses a
    # second definition (test_example_blog_live.py takes this fixture too).
    already = sys.modules.get("example_blog")
    if already is not None:
        return already
    spec = importlib.util.spec_from_file_location("example_blog", EXAMPLE / "app.py")
    assert spec is not None
    assert spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    sys.modules["example_blog"] = loaded
    spec.loader.exec_module(loaded)
    return loaded


@pytest.fixture
def blog(module: ModuleType, tmp_path: Path) -> Iterator[ModuleType]:
    # The example installs its database from settings: point it at this test's file.
    Database.of(module.app).configure(
        DatabaseConfig(url=f"sqlite+aiosqlite:///{tmp_path / 'blog.sqlite3'}")
    )
    migrations = Migrations(get_database(module.app), EXAMPLE / "migrations")
    migrations.upgrade()
    asyncio.run(module.cache.clear())  # the app outlives each test's database
    yield module
    asyncio.run(get_database(module.app).dispose())


def add_user(blog: ModuleType, username: str, **flags: bool) -> None:
    async def create() -> None:
        async with get_database(blog.app).session() as db:
            user = blog.User(username=username, email=f"{username}@example.com", **flags)
            user.set_password(PASSWORD)
            db.add(user)
            await db.commit()

    asyncio.run(create())


def token(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, html[:500]
    return found.group(1)


def log_in(client: TestClient, username: str, path: str = "/auth/login") -> None:
    page = client.get(path)
    done = client.post(
        path, data={"username": username, "password": PASSWORD, "csrf_token": token(page.text)}
    )
    assert done.status_code == 303, done.text


def csrf_header(client: TestClient) -> dict[str, str]:
    """What a JavaScript client does: read the token a page carries, send it back."""
    return {"X-CSRF-Token": token(client.get("/write").text)}


def test_migrations_match_the_models(blog: ModuleType) -> None:
    # Other test modules add their tables to the shared Model.metadata: compare the example's.
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    for name, table in Model.metadata.tables.items():
        if name in ("post", "post_comment") or name.startswith(
            ("transom_auth_", "transom_admin_", "transom_tasks_")
        ):
            table.to_metadata(metadata)
    config = get_database(blog.app).config
    database = Database(config, metadata=metadata)
    migrations = Migrations(database, EXAMPLE / "migrations")
    assert {b.branch for b in migrations.batteries} == {"auth", "admin", "tasks"}
    assert migrations.check() == []
    asyncio.run(database.dispose())


def test_pages_render_and_escape(blog: ModuleType) -> None:
    add_user(blog, "ana")
    with blog.app.test_client() as client:
        index = client.get("/")
        assert index.status_code == 200
        assert "Hello, Transom" in index.text  # inserted by the data migration
        assert "/posts/hello-transom" in index.text
        assert 'href="/auth/login"' in index.text
        log_in(client, "ana")
        created = client.post(
            "/api/posts",
            json={"slug": "xss", "title": "<script>alert(1)</script>"},
            headers=csrf_header(client),
        )
        assert created.status_code == 201, created.text
        page = client.get("/posts/xss")
        assert "<script>alert(1)</script>" not in page.text
        assert "&lt;script&gt;" in page.text
        assert "· ana" in page.text
        assert client.get("/posts/none").status_code == 404


def test_writing_needs_a_login_and_the_form_shows_errors(blog: ModuleType) -> None:
    add_user(blog, "ana")
    with blog.app.test_client() as client:
        anonymous = client.get("/write", headers={"Accept": "text/html"})
        assert anonymous.status_code == 303
        assert anonymous.headers["location"] == "/auth/login?next=%2Fwrite"
        log_in(client, "ana")
        form = client.get("/write")
        assert form.status_code == 200
        assert '<textarea id="id_body" name="body" rows="8"></textarea>' in form.text
        csrf = {"csrf_token": token(form.text)}
        forged = client.post("/write", data={"title": "Hi", "slug": "hi"})
        assert forged.status_code == 403
        invalid = client.post("/write", data={"title": "Hi", "slug": "Not A Slug", **csrf})
        assert invalid.status_code == 422
        assert 'value="Not A Slug"' in invalid.text
        assert "Use lowercase letters, digits and dashes." in invalid.text  # plain words
        assert "should match pattern" not in invalid.text
        taken = client.post("/write", data={"title": "Again", "slug": "hello-transom", **csrf})
        assert "A post with this slug exists." in taken.text
        created = client.post(
            "/write", data={"title": "Second", "slug": "second", "body": "x", **csrf}
        )
        assert created.status_code == 303
        assert created.headers["location"] == "http://testserver/posts/second"
        page = client.get("/posts/second").text
        assert "<h1>Second</h1>" in page
        assert '<p class="flash">Published “Second”.</p>' in page
        assert "Published" not in client.get("/posts/second").text
        css = client.get("/static/site.css")
        assert css.status_code == 200
        assert css.headers["content-type"].startswith("text/css")
        assert 'href="/static/site.css"' in client.get("/").text


def test_dashboard_is_for_logged_in_users_only(blog: ModuleType) -> None:
    add_user(blog, "ana")
    with blog.app.test_client() as client:
        gate = client.get("/dashboard", headers={"Accept": "text/html"})
        assert gate.status_code == 303
        assert client.get("/dashboard").status_code == 401  # not a browser: no redirect
        login_page = client.get(gate.headers["location"])
        assert "Transom blog" in login_page.text  # the auth pages use the blog's layout
        log_in(client, "ana")
        mine = {"slug": "mine", "title": "Mine"}
        assert client.post("/api/posts", json=mine, headers=csrf_header(client)).status_code == 201
        dashboard = client.get("/dashboard")
        assert dashboard.status_code == 200
        assert "Hello, ana" in dashboard.text
        assert "/posts/mine" in dashboard.text
        assert "/posts/hello-transom" not in dashboard.text  # not hers
        assert "Open the admin" not in dashboard.text  # not staff
        logout = client.get("/auth/logout")
        client.post("/auth/logout", data={"csrf_token": token(logout.text)})
        assert client.get("/dashboard", headers={"Accept": "text/html"}).status_code == 303


def test_api_crud_and_validation(blog: ModuleType) -> None:
    add_user(blog, "ana")
    add_user(blog, "bob")
    with blog.app.test_client() as client:
        listing = client.get("/api/posts?limit=1").json()
        assert listing["total"] == 1
        assert listing["items"][0]["slug"] == "hello-transom"
        anonymous = client.post("/api/posts", json={"slug": "a", "title": "A"})
        assert anonymous.status_code in (401, 403)  # no session: CSRF or login refuses it
        log_in(client, "ana")
        headers = csrf_header(client)
        bad = client.post("/api/posts", json={"slug": "Bad Slug", "title": ""}, headers=headers)
        assert bad.status_code == 422
        created = client.post("/api/posts", json={"slug": "a", "title": "A"}, headers=headers)
        assert created.status_code == 201
        dup = client.post("/api/posts", json={"slug": "a", "title": "again"}, headers=headers)
        assert dup.status_code == 409
        assert "slug" in dup.text
        assert client.delete("/api/posts/a").status_code == 403  # no CSRF token
        client.cookies.clear()
        log_in(client, "bob")
        headers = csrf_header(client)
        assert client.delete("/api/posts/a", headers=headers).status_code == 403  # not his
        client.cookies.clear()
        log_in(client, "ana")
        assert client.delete("/api/posts/a", headers=csrf_header(client)).status_code == 204
        assert client.get("/api/posts/a").status_code == 404
        assert client.get("/api/posts?limit=0").status_code == 422


def test_post_list_is_cached_and_a_new_post_invalidates_it(blog: ModuleType) -> None:
    add_user(blog, "ana")
    with blog.app.test_client() as client:
        assert client.get("/api/posts").json()["total"] == 1
        stats = blog.cache.stats
        hits = stats.hits
        assert client.get("/api/posts").json()["total"] == 1
        assert stats.hits == hits + 1  # served from the cache
        log_in(client, "ana")
        headers = csrf_header(client)
        assert (
            client.post("/api/posts", json={"slug": "b", "title": "B"}, headers=headers).status_code
            == 201
        )
        client.cookies.clear()  # an anonymous reader again
        assert client.get("/api/posts").json()["total"] == 2
        validate(client.get("/openapi.json").json())


def test_publishing_a_post_notifies_after_the_commit(blog: ModuleType) -> None:
    add_user(blog, "tess")
    blog.NOTIFIED.clear()
    with blog.app.test_client() as client:
        log_in(client, "tess")
        headers = csrf_header(client)
        created = client.post("/api/posts", json={"slug": "news", "title": "News"}, headers=headers)
        assert created.status_code == 201
        taken = client.post("/api/posts", json={"slug": "news", "title": "Again"}, headers=headers)
        assert taken.status_code == 409  # refused: nothing to notify
        deadline = time.monotonic() + 10
        while not blog.NOTIFIED and time.monotonic() < deadline:
            time.sleep(0.01)
    assert blog.NOTIFIED == ["news"]


def test_the_daily_digest_is_scheduled_and_runs(blog: ModuleType) -> None:
    from transom.tasks import Tasks, TasksConfig
    from transom.tasks.schedule import next_tick

    assert blog.daily_digest in list(blog.tasks.scheduled())
    tick = next_tick(blog.daily_digest, 0.0)
    assert tick == 6 * 3600  # 06:00 UTC on the first day of the epoch

    async def run() -> int:
        with Tasks(TasksConfig(eager=True)).activate():
            result = await blog.daily_digest.enqueue()
            return int(await result.wait(timeout=5))

    assert asyncio.run(run()) == 0


def test_admin_with_the_demo_superuser(blog: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(blog.app.settings, "debug", True)  # what `make demo` runs in
    with blog.app.test_client() as client:  # start-up creates the demo superuser
        username, password = blog.DEMO_ADMIN
        page = client.get("/admin/login")
        done = client.post(
            "/admin/login",
            data={"username": username, "password": password, "csrf_token": token(page.text)},
        )
        assert done.status_code == 303, done.text
        posts = client.get("/admin/blog/post")
        assert posts.status_code == 200
        assert "Hello, Transom" in posts.text
        assert client.get("/admin/blog/post?q=hello").status_code == 200
        assert client.get("/admin/auth/user").status_code == 200
        assert client.get("/dashboard").status_code == 200
        assert "Open the admin" in client.get("/dashboard").text


def admin_client(blog: ModuleType, client: TestClient) -> None:
    add_user(blog, "boss", is_staff=True, is_superuser=True)
    log_in(client, "boss", "/admin/login")


def test_the_admin_refuses_what_the_api_refuses(blog: ModuleType) -> None:
    """The post's rules live in PostIn (``Post.__schema__``): API, site form and admin agree."""
    bad = "Has Spaces And CAPS!"
    with blog.app.test_client() as client:
        admin_client(blog, client)
        api = client.post(
            "/api/posts", json={"slug": bad, "title": "T"}, headers=csrf_header(client)
        )
        assert api.status_code == 422
        form = client.get("/admin/blog/post/add")
        data = {"title": "T", "slug": bad, "body": "", "published": "2026-01-02"}
        refused = client.post("/admin/blog/post/add", data={**data, "csrf_token": token(form.text)})
        assert refused.status_code == 422
        assert "Use lowercase letters, digits and dashes." in refused.text
        long_title = client.post(
            "/admin/blog/post/add",
            data={**data, "slug": "ok", "title": "", "csrf_token": token(form.text)},
        )
        assert "This field is required." in long_title.text
        assert client.get(f"/posts/{bad}").status_code == 404  # nothing was saved
        saved = client.post(
            "/admin/blog/post/add",
            data={**data, "slug": "fine-slug", "csrf_token": token(form.text)},
        )
        assert saved.status_code == 303, saved.text
        assert client.get("/posts/fine-slug").status_code == 200


def test_admin_login_records_last_login(blog: ModuleType) -> None:
    async def last_login(name: str) -> object:
        async with get_database(blog.app).session() as db:
            user = await db.scalar(select(blog.User).where(blog.User.username == name))
            assert user is not None
            return user.last_login

    with blog.app.test_client() as client:
        admin_client(blog, client)
    assert asyncio.run(last_login("boss")) is not None


def test_a_new_post_never_gets_a_deleted_posts_id_or_history(blog: ModuleType) -> None:
    with blog.app.test_client() as client:
        admin_client(blog, client)
        form = client.get("/admin/blog/post/add")
        csrf = {"csrf_token": token(form.text)}
        data = {"title": "First", "slug": "first", "body": "", "published": "2026-01-02"}
        assert client.post("/admin/blog/post/add", data={**data, **csrf}).status_code == 303
        ids = sorted(
            int(m)
            for m in re.findall(
                r"/admin/blog/post/(\d+)/change", client.get("/admin/blog/post").text
            )
        )
        last = ids[-1]
        gone = client.post(f"/admin/blog/post/{last}/delete", data={"post": "yes", **csrf})
        assert gone.status_code == 303
        again = {**data, "title": "Second", "slug": "second"}
        assert client.post("/admin/blog/post/add", data={**again, **csrf}).status_code == 303
        ids_after = [
            int(m)
            for m in re.findall(
                r"/admin/blog/post/(\d+)/change", client.get("/admin/blog/post").text
            )
        ]
        assert last not in ids_after  # AUTOINCREMENT: the deleted id is never handed out again
        new_id = max(ids_after)
        history = client.get(f"/admin/blog/post/{new_id}/history").text
        assert "Second" in history
        assert "First" not in history


def test_permission_pickers_show_readable_grouped_names(blog: ModuleType) -> None:
    with blog.app.test_client() as client:
        admin_client(blog, client)
        for url in ("/admin/auth/group/add", "/admin/auth/user/1/change"):
            page = client.get(url).text
            assert "<legend>Blog · post</legend>" in page, url
            assert "<span>Can change post</span>" in page
            assert "<span>blog.change_post</span>" not in page
            assert 'class="picker-filter"' in page
            assert "Hold Ctrl" not in page


def test_the_add_form_starts_from_the_models_defaults(blog: ModuleType) -> None:
    import datetime as dt

    with blog.app.test_client() as client:
        admin_client(blog, client)
        page = client.get("/admin/blog/post/add").text
    today = dt.date.today().isoformat()
    assert f'type="date" id="id_published" name="published" value="{today}"' in page
    assert 'id="id_id"' not in page  # no read-only "Id —" row before the row exists
    assert ">Id<" not in page


def test_admin_change_my_password_keeps_me_logged_in(blog: ModuleType) -> None:
    with blog.app.test_client() as client:
        admin_client(blog, client)
        form = client.get("/admin/password")
        new = "a brand new secret phrase"
        done = client.post(
            "/admin/password",
            data={
                "current_password": PASSWORD,
                "password1": new,
                "password2": new,
                "csrf_token": token(form.text),
            },
        )
        assert done.status_code == 303, done.text
        dashboard = client.get("/admin")  # the session was renewed with the new hash
        assert dashboard.status_code == 200
        assert "Your password was changed." in dashboard.text


def test_favicon_404_page_and_password_autocomplete(blog: ModuleType) -> None:
    with blog.app.test_client() as client:
        home = client.get("/").text
        assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in home
        icon = client.get("/static/favicon.svg")
        assert icon.status_code == 200
        assert icon.headers["content-type"].startswith("image/svg+xml")
        legacy = client.get("/favicon.ico")
        assert legacy.status_code == 301
        assert legacy.headers["location"] == "/static/favicon.svg"
        missing = client.get("/posts/nothing-here", headers={"Accept": "text/html"})
        assert missing.status_code == 404
        assert "This page does not exist" in missing.text  # the blog's own 404.html
        assert "No such post" in missing.text
        assert 'href="/static/site.css"' in missing.text
        login = client.get("/auth/login").text
        assert 'autocomplete="current-password"' in login
        assert 'autocomplete="username"' in login
        assert '<label for="id_remember" class="checkbox"><input' in login


def test_in_a_phone_browser(blog: ModuleType, tmp_path: Path) -> None:
    """At 390x844: the header fits, the remember-me box sits beside its label."""
    pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    blog.app.settings.allowed_hosts = ["127.0.0.1"]
    artifacts = EXAMPLE.parents[1] / "test-artifacts" / "blog"
    artifacts.mkdir(parents=True, exist_ok=True)
    with serve_in_thread(blog.app, log_level="critical") as base:
        driver = start_chromium(tmp_path / "profile")
        driver.set_window_size(390, 844)
        try:
            driver.get(f"{base}/auth/login")
            driver.save_screenshot(str(artifacts / "login-phone.png"))
            fits = driver.execute_script(
                "const h = document.querySelector('header');"
                "const d = document.documentElement;"
                "return [d.scrollWidth, d.clientWidth, h.scrollWidth, h.clientWidth];"
            )
            assert fits[0] <= fits[1], fits
            assert fits[2] <= fits[3], fits
            box = driver.find_element(By.ID, "id_remember").rect
            label = driver.find_element(By.CSS_SELECTOR, "label[for=id_remember]").rect
            # Beside it: on the same line, and the box is part of the label.
            assert abs((box["y"] + box["height"] / 2) - (label["y"] + label["height"] / 2)) < 12
            assert label["x"] <= box["x"] < label["x"] + label["width"]
            password = driver.find_element(By.ID, "id_password")
            assert password.get_attribute("autocomplete") == "current-password"
            icon = driver.execute_script(
                "return fetch(document.querySelector('link[rel=icon]').href).then(r => r.status)"
            )
            assert icon == 200
            add_user(blog, "a-rather-long-user-name")
            driver.find_element(By.ID, "id_username").send_keys("a-rather-long-user-name")
            password.send_keys(PASSWORD)
            driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
            WebDriverWait(driver, 10).until(lambda d: "/auth/login" not in d.current_url)
            driver.save_screenshot(str(artifacts / "home-phone.png"))
            fits = driver.execute_script(
                "const h = document.querySelector('header');"
                "const d = document.documentElement;"
                "return [d.scrollWidth, d.clientWidth, h.scrollWidth, h.clientWidth];"
            )
            assert fits[0] <= fits[1], fits
            assert fits[2] <= fits[3], fits
        except BaseException:
            driver.save_screenshot(str(artifacts / "phone-failure.png"))
            raise
        finally:
            driver.quit()


def test_admin_passwords_follow_the_sites_rules_shown_beforehand(blog: ModuleType) -> None:
    with blog.app.test_client() as client:
        admin_client(blog, client)
        form = client.get("/admin/auth/user/add")
        assert "At least 8 characters. Not a commonly used password." in form.text
        weak = client.post(
            "/admin/auth/user/add",
            data={
                "username": "weak",
                "email": "weak@example.com",
                "password1": "password123",
                "password2": "password123",
                "is_active": "on",
                "csrf_token": token(form.text),
            },
        )
        assert weak.status_code == 422  # long enough, but the site refuses it: so does the admin
        assert "This password is too common." in weak.text
        mine = client.get("/admin/password").text
        assert "<li>At least 8 characters.</li>" in mine


def test_make_demo_takes_port_and_the_banner_shows_the_real_address(tmp_path: Path) -> None:
    root = EXAMPLE.parents[1]
    dry = subprocess.run(
        ["make", "-n", "demo", "PORT=8123"], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert "transom run --host 127.0.0.1 --port 8123" in dry.stdout, dry.stdout + dry.stderr
    # What `make demo` runs, on a copy of the example and a free port.
    copy = tmp_path / "blog"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("db.sqlite3*", "__pycache__"))
    env = {**os.environ, "TRANSOM_DEBUG": "1"}
    env.pop("DATABASE_URL", None)
    env.pop("TRANSOM_DATABASE_URL", None)
    transom = [sys.executable, "-m", "transom.cli"]
    migrate = subprocess.run(
        [*transom, "db", "migrate"], cwd=copy, env=env, capture_output=True, timeout=180
    )
    assert migrate.returncode == 0, migrate.stderr
    port = _free_port()
    with serving([*transom, "run", "--no-reload", "--port", str(port)], copy, port, env) as server:
        pass
    assert server.stdout is not None
    output = server.stdout.read().decode()
    assert f"Admin: http://127.0.0.1:{port}/admin  user 'admin'" in output, output


def test_permission_pickers_name_models_as_their_pages_do(blog: ModuleType) -> None:
    # Stored as "Can view apitoken" (the class name lower-cased); shown split at its capitals
    # like its admin page names it, Django's "Can view api token".
    with blog.app.test_client() as client:
        admin_client(blog, client)
        page = client.get("/admin/auth/group/add").text
    assert "<span>Can view api token</span>" in page
    assert "<legend>Auth · api token</legend>" in page
    assert "apitoken<" not in page
    assert "<legend>Auth · social account</legend>" in page
