"""The example blog's live comments: the form and the API save a comment, the post page shows
it, and every open page of the post receives it -- in one process with the test client, and
across two real server processes sharing Redis."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from _browser import serve_in_thread, start_chromium
from _services import remove_redis_keys as _remove_keys
from _services import require_service
from test_cli import _free_port, serving
from test_example_blog import EXAMPLE, PASSWORD, add_user, csrf_header, log_in, token
from test_example_blog import blog as blog_fixture
from test_example_blog import module as module  # the fixture blog_fixture takes
from transom.testing import TestClient, WebSocketDenied

#: The example, loaded once, on a fresh migrated database per test (test_example_blog.py).
blog = blog_fixture

# Each test logs in as a user of its own: the app (and its login rate limit, 10 attempts per
# account and address in 15 minutes) lives as long as the test session.
POST = "/posts/hello-transom"
EVENTS = "/posts/hello-transom/comments/events"
SOCKET = "/ws/posts/hello-transom/comments"
REDIS = "redis://127.0.0.1:6379/0"


def comment_form(client: TestClient, body: str) -> httpx.Response:
    """What the post page's form sends."""
    page = client.get(POST)
    return client.post(f"{POST}/comments", data={"body": body, "csrf_token": token(page.text)})


def test_a_comment_posted_appears_on_the_page_and_on_open_streams(blog: ModuleType) -> None:
    add_user(blog, "cleo")
    body = "<b>bold</b> & <script>alert(1)</script>\nsecond line"
    with blog.app.test_client() as writer, blog.app.test_client() as reader:
        log_in(writer, "cleo")
        with reader.events(EVENTS) as stream:  # an anonymous reader with the page open
            done = comment_form(writer, body)
            assert done.status_code == 303, done.text
            event = next(stream)
        assert done.headers["location"] == f"http://testserver{POST}#comment-1"
        assert event.event == "comment"
        assert event.id is not None  # a reconnecting browser resumes after it
        live = event.json()
        assert (live["id"], live["author"], live["body"]) == (1, "cleo", body.strip())
        page = writer.get(POST).text
        # Shown as text: the markup the comment holds is escaped, never run.
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert "<script>alert(1)" not in page
        assert '<li id="comment-1">' in page
        assert "<strong>cleo</strong>" in page
        assert "No comments yet." in page  # the placeholder is kept, hidden
        assert 'class="muted no-comments" hidden' in page
        # Reconnecting with the id of an earlier event replays what came after it.
        second = writer.post(
            "/api/posts/hello-transom/comments", json={"body": "two"}, headers=csrf_header(writer)
        )
        assert second.status_code == 201, second.text
        with reader.events(EVENTS, headers={"Last-Event-ID": str(event.id)}) as again:
            replayed = next(again)
        assert replayed.json()["body"] == "two"


def test_the_page_ships_the_script_and_the_stream_url_within_its_csp(blog: ModuleType) -> None:
    with blog.app.test_client() as client:
        page = client.get(POST)
        assert page.status_code == 200
        html = page.text
        assert f'data-events="{EVENTS}"' in html
        script = re.search(r'<script src="([^"]+)" defer></script>', html)
        assert script is not None, html
        # No inline script and no inline handler: the CSP would block them.
        assert re.search(r"<script(?![^>]*\bsrc=)", html) is None
        assert re.search(r"\son[a-z]+=", html) is None
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "default-src 'self'" in csp  # EventSource to the same origin: connect-src
        code = client.get(script.group(1))
        assert code.status_code == 200
        assert "javascript" in code.headers["content-type"]
        assert "new EventSource(section.dataset.events)" in code.text
        assert 'addEventListener("comment"' in code.text
        assert ".textContent = comment.body" in code.text
        assert "innerHTML" not in code.text
        # Anonymous: no form, a way to log in back to this post.
        assert 'name="body"' not in html
        assert 'href="/auth/login?next=/posts/hello-transom">Log in</a> to comment' in html


def test_the_comment_form_checks_login_csrf_and_length(blog: ModuleType) -> None:
    add_user(blog, "dora")
    with blog.app.test_client() as client:
        anonymous = client.post(
            f"{POST}/comments", data={"body": "hi"}, headers={"Accept": "text/html"}
        )
        assert anonymous.status_code in (303, 403)  # no session: CSRF or the login refuses it
        log_in(client, "dora")
        page = client.get(POST).text
        assert '<label for="id_body">Your comment</label>' in page
        assert '<textarea id="id_body" name="body" required rows="4"></textarea>' in page
        assert f'action="{POST}/comments"' in page
        forged = client.post(f"{POST}/comments", data={"body": "forged"})
        assert forged.status_code == 403
        empty = comment_form(client, "   ")
        assert empty.status_code == 422
        assert "Write something first." in empty.text
        too_long = comment_form(client, "x" * 2001)
        assert too_long.status_code == 422
        assert "At most 2000 characters." in too_long.text
        assert "x" * 2001 in too_long.text  # what was typed is kept
        assert comment_form(client, "x" * 2000).status_code == 303
        assert client.get("/posts/none").status_code == 404
        missing = client.post(
            "/posts/none/comments", data={"body": "hi", "csrf_token": token(page)}
        )
        assert missing.status_code == 404


def test_the_comments_api(blog: ModuleType) -> None:
    add_user(blog, "emil")
    with blog.app.test_client() as client:
        url = "/api/posts/hello-transom/comments"
        assert client.get(url).json() == []
        refused = client.post(url, json={"body": "hi"})
        assert refused.status_code in (401, 403)
        log_in(client, "emil")
        headers = csrf_header(client)
        assert client.post(url, json={"body": "x" * 2001}, headers=headers).status_code == 422
        assert client.post(url, json={"body": " "}, headers=headers).status_code == 422
        assert client.post(url, json={}, headers=headers).status_code == 422
        assert client.post(url, json={"body": "hi"}).status_code == 403  # no CSRF token
        made = client.post(url, json={"body": " first "}, headers=headers)
        assert made.status_code == 201, made.text
        client.post(url, json={"body": "second"}, headers=headers)
        listed = client.get(url).json()
        assert [(c["author"], c["body"]) for c in listed] == [("emil", "first"), ("emil", "second")]
        assert listed[0]["id"] == made.json()["id"]
        assert client.get("/api/posts/none/comments").status_code == 404
        assert client.get("/posts/none/comments/events").status_code == 404
        # Deleting the post takes its comments with it (ON DELETE CASCADE).
        post = {"slug": "short-lived", "title": "Short"}
        assert client.post("/api/posts", json=post, headers=headers).status_code == 201
        on_it = "/api/posts/short-lived/comments"
        assert client.post(on_it, json={"body": "bye"}, headers=headers).status_code == 201
        assert client.delete("/api/posts/short-lived", headers=headers).status_code == 204
        assert client.get(on_it).status_code == 404


def test_the_websocket_variant(blog: ModuleType) -> None:
    add_user(blog, "fred")
    with blog.app.test_client() as client:
        with client.websocket_connect(SOCKET) as anonymous:
            anonymous.send_json({"body": "hi"})
            assert anonymous.receive_json() == {"error": "Log in to comment."}
        log_in(client, "fred")
        with client.websocket_connect(SOCKET) as ws:
            ws.send_text("{not json")
            assert "error" in ws.receive_json()
            ws.send_json({"body": "x" * 2001})
            assert "error" in ws.receive_json()
            ws.send_json({"body": "over the socket"})
            said = ws.receive_json()
            assert (said["author"], said["body"]) == ("fred", "over the socket")
            made = client.post(
                "/api/posts/hello-transom/comments",
                json={"body": "over HTTP"},
                headers=csrf_header(client),
            )
            assert made.status_code == 201
            assert ws.receive_json()["body"] == "over HTTP"
        with (
            pytest.raises(WebSocketDenied) as refused,
            client.websocket_connect("/ws/posts/none/comments"),
        ):
            pass
        assert refused.value.status == 404
        # The post deleted while a socket on it is open: the comment is refused, not a crash.
        headers = csrf_header(client)
        post = {"slug": "going", "title": "Going"}
        assert client.post("/api/posts", json=post, headers=headers).status_code == 201
        with client.websocket_connect("/ws/posts/going/comments") as ws:
            assert client.delete("/api/posts/going", headers=headers).status_code == 204
            ws.send_json({"body": "too late"})
            assert ws.receive_json() == {"error": "This post no longer takes comments."}
            ws.send_json({"body": "still open"})  # the connection carries on
            assert ws.receive_json() == {"error": "This post no longer takes comments."}


def test_the_comment_feeds_are_in_the_asyncapi_document(blog: ModuleType) -> None:
    with blog.app.test_client() as client:
        spec = client.get("/asyncapi.json").json()
    socket = spec["channels"]["comment_socket"]
    assert socket["address"] == "/ws/posts/{slug}/comments"
    assert set(socket["messages"]) == {"CommentIn", "CommentOut", "CommentError"}
    feed = [c for c in spec["channels"].values() if c["address"] == "post:{post}:comments"]
    assert len(feed) == 1
    assert feed[0]["summary"] == "New comments of a post, once saved"


def test_comments_in_the_admin(blog: ModuleType) -> None:
    from test_example_blog import admin_client

    with blog.app.test_client() as client:
        admin_client(blog, client)
        made = client.post(
            "/api/posts/hello-transom/comments",
            json={"body": "moderate me"},
            headers=csrf_header(client),
        )
        assert made.status_code == 201
        index = client.get("/admin").text
        link = re.search(r'href="(/admin/blog/[a-z_]*comment)"', index)
        assert link is not None, index
        listing = client.get(link.group(1))
        assert listing.status_code == 200
        assert "moderate me" in listing.text
        assert "Hello, Transom" in listing.text  # the post column
        base = link.group(1)
        assert client.get(f"{base}/add").status_code == 200
        change = client.get(f"{base}/1/change")
        assert change.status_code == 200
        assert "moderate me" in change.text
        created = re.search(r'name="created_at"[^>]*value="([^"]+)"', change.text)
        assert created is not None, change.text
        data = {
            "post_id": "1",
            "author_id": "1",
            "created_at": created.group(1),
            "csrf_token": token(change.text),
        }
        # The admin applies the comment's rules (PostComment.__schema__), as the site does.
        refused = client.post(f"{base}/1/change", data={**data, "body": "x" * 2001})
        assert refused.status_code == 422
        assert '<ul class="errors" id="id_body-errors"><li>At most 2000 characters' in refused.text
        edited = client.post(f"{base}/1/change", data={**data, "body": "moderated"})
        assert edited.status_code == 303, edited.text
        listed = client.get("/api/posts/hello-transom/comments").json()
        assert [c["body"] for c in listed] == ["moderated"]


def test_a_comment_added_in_the_admin_appears_on_open_pages_once_committed(
    blog: ModuleType,
) -> None:
    add_user(blog, "moderator", is_staff=True, is_superuser=True)  # a login of its own
    with blog.app.test_client() as moderator, blog.app.test_client() as reader:
        log_in(moderator, "moderator", "/admin/login")
        base = "/admin/blog/postcomment"
        form = moderator.get(f"{base}/add")
        assert form.status_code == 200, form.text
        data = {"post_id": "1", "author_id": "1", "csrf_token": token(form.text)}
        with reader.events(EVENTS) as stream:
            # Refused by the comment's rules: never saved, so nothing is sent.
            refused = moderator.post(f"{base}/add", data={**data, "body": "x" * 2001})
            assert refused.status_code == 422
            added = moderator.post(f"{base}/add", data={**data, "body": "from the admin"})
            assert added.status_code == 303, added.text
            event = next(stream)  # the first event is the added one, not the refused one
        assert event.event == "comment"
        assert event.json()["body"] == "from the admin"
        saved = moderator.get("/api/posts/hello-transom/comments").json()
        assert event.json()["id"] == saved[-1]["id"]
        assert event.json()["author"] == saved[-1]["author"]


# --- Two real server processes sharing Redis ----------------------------------------------------


@pytest.fixture
def blog_project(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A migrated copy of the blog with a user, and the environment of its servers: channels
    on the shared Redis under a prefix of this run's own."""
    require_service("Redis", "127.0.0.1", 6379)
    copy = tmp_path / "blog"
    shutil.copytree(
        EXAMPLE, copy, ignore=shutil.ignore_patterns("db.sqlite3*", "__pycache__", "staticfiles")
    )
    prefix = f"transom-test-blog-live-{uuid.uuid4().hex[:10]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRANSOM_", "DATABASE_"))}
    env |= {
        "TRANSOM_SECRET_KEY": "blog-live-test-secret-key-blog-live-test-secret-key",
        "TRANSOM_ALLOWED_HOSTS": "127.0.0.1",
        "TRANSOM_SUPERUSER_PASSWORD": PASSWORD,
        "TRANSOM_CHANNELS_URL": REDIS,
        "TRANSOM_CHANNELS_KEY_PREFIX": prefix,
        "TRANSOM_ACCESS_LOG": "0",
    }
    transom = [sys.executable, "-m", "transom.cli"]
    for command in (
        ["db", "migrate"],
        ["createsuperuser", "--no-input", "--username", "writer", "--email", "w@blog.test"],
    ):
        done = subprocess.run(
            [*transom, *command], cwd=copy, env=env, capture_output=True, text=True, timeout=180
        )
        assert done.returncode == 0, done.stdout + done.stderr
    try:
        yield copy, env
    finally:
        asyncio.run(_remove_keys(prefix))


@contextlib.contextmanager
def blog_server(project: tuple[Path, dict[str, str]]) -> Iterator[str]:
    copy, env = project
    port = _free_port()
    command = [sys.executable, "-m", "transom.cli", "run", "--no-debug", "--no-reload"]
    with serving([*command, "--port", str(port)], copy, port, env):
        yield f"http://127.0.0.1:{port}"


async def next_event(lines: object) -> tuple[str | None, dict[str, object]]:
    """The next event of an SSE stream (its name and JSON data), bounded at 20 s."""
    name = None
    while True:
        line = await asyncio.wait_for(anext(lines), 20)  # type: ignore[call-overload]
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            return name, json.loads(line[6:])


def test_a_comment_posted_on_one_process_reaches_a_page_open_on_another(
    blog_project: tuple[Path, dict[str, str]],
) -> None:
    with blog_server(blog_project) as first, blog_server(blog_project) as second:

        async def scenario() -> tuple[str, tuple[str | None, dict[str, object]], int]:
            async with (
                httpx.AsyncClient(base_url=first, timeout=20) as writer,
                httpx.AsyncClient(base_url=second, timeout=20) as reader,
            ):
                page = (await reader.get(POST)).text  # the page a browser opens on B
                login = await writer.get("/auth/login")
                done = await writer.post(
                    "/auth/login",
                    data={
                        "username": "writer",
                        "password": PASSWORD,
                        "csrf_token": token(login.text),
                    },
                )
                assert done.status_code == 303, done.text
                # Subscribed once the response's headers are here: nothing published after
                # that is missed.
                async with reader.stream("GET", EVENTS) as stream:
                    assert stream.status_code == 200
                    assert stream.headers["content-type"].startswith("text/event-stream")
                    form = await writer.get(POST)
                    posted = await writer.post(
                        f"{POST}/comments",
                        data={"body": "from process A", "csrf_token": token(form.text)},
                    )
                    assert posted.status_code == 303, posted.text
                    event = await next_event(stream.aiter_lines())
                return (
                    page,
                    event,
                    len((await reader.get("/api/posts/hello-transom/comments")).json()),
                )

        page, (name, data), stored = asyncio.run(scenario())
    assert name == "comment"
    assert (data["author"], data["body"]) == ("writer", "from process A")
    assert stored == 1  # B reads it from the shared database too
    # What a browser needs on B's page: the script and the stream's address.
    assert f'data-events="{EVENTS}"' in page
    assert re.search(r'<script src="/static/comments\.[^"]*js" defer></script>', page), page


# --- In a real browser ---------------------------------------------------------------------------


@contextlib.contextmanager
def browser_on(blog: ModuleType, tmp_path: Path) -> Iterator[tuple[Any, str]]:
    """The blog served by uvicorn in this process, and a headless Chromium (skipped without)."""
    blog.app.settings.allowed_hosts = ["127.0.0.1"]
    with serve_in_thread(blog.app, log_level="critical") as base:
        driver = start_chromium(
            tmp_path / "profile", capabilities={"goog:loggingPrefs": {"browser": "ALL"}}
        )
        try:
            yield driver, base
        finally:
            driver.quit()


def test_in_a_browser_a_comment_appears_on_the_other_open_page(
    blog: ModuleType, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    add_user(blog, "gina")
    body = '<img src=x onerror="document.title=1"> hello from the other tab'
    channel = "post:1:comments"
    with browser_on(blog, tmp_path) as (driver, base):
        driver.get(f"{base}/auth/login")
        driver.find_element(By.ID, "id_username").send_keys("gina")
        driver.find_element(By.ID, "id_password").send_keys(PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        WebDriverWait(driver, 20).until(lambda d: "/auth/login" not in d.current_url)
        # The reader's tab: the page's script subscribes to the post's stream.
        driver.get(f"{base}{POST}")
        reader = driver.current_window_handle
        driver.execute_script("window.notReloaded = true")
        WebDriverWait(driver, 20).until(lambda d: blog.channels.subscribers(channel) >= 1)
        # The writer's tab: the comment form, as a person fills it in.
        driver.switch_to.new_window("tab")
        driver.get(f"{base}{POST}")
        driver.find_element(By.ID, "id_body").send_keys(body)
        driver.find_element(By.CSS_SELECTOR, "#comments form button[type=submit]").click()
        WebDriverWait(driver, 20).until(lambda d: "#comment-" in d.current_url)
        assert len(driver.find_elements(By.CSS_SELECTOR, ".comment-list li")) == 1
        driver.switch_to.window(reader)
        shown = WebDriverWait(driver, 20).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "#comment-1 .comment-body")
        )
        assert shown[0].text == body  # as text: the markup was not run
        assert driver.execute_script("return window.notReloaded") is True
        assert driver.find_elements(By.CSS_SELECTOR, "#comment-1 img") == []
        assert driver.title != "1"
        assert driver.find_element(By.CSS_SELECTOR, "#comment-1 strong").text == "gina"
        assert not driver.find_element(By.CSS_SELECTOR, ".no-comments").is_displayed()
        csp = [e for e in driver.get_log("browser") if "Content Security Policy" in e["message"]]
        assert csp == [], csp
