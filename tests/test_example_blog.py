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
from sqlalchemy import MetaData

from test_cli import _free_port, serving
from transom.db import NAMING_CONVENTION, Database, DatabaseConfig, Model, get_database
from transom.db.migrations import Migrations
from transom.testing import TestClient

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "blog"
PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def module() -> ModuleType:
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
        if name == "post" or name.startswith(("transom_auth_", "transom_admin_", "transom_tasks_")):
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
        assert "should match pattern" in invalid.text
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
