"""/docs "Try it out" works for a logged-in browser user: the page carries the CSRF token.

The token travels in data attributes of the page (the script policy stays strict: no inline
script, scripts from this origin or with the nonce) and ``init.js`` adds it as a header to
unsafe calls. The last test drives the real page in headless Chromium: log in, open /docs,
run a POST through "Try it out".
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import create_engine

from _browser import serve_in_thread, start_chromium
from transom import App, Settings
from transom.auth import Auth, AuthConfig, CurrentUser, JWTConfig
from transom.db import Database, DatabaseConfig, Model
from transom.db.config import sync_url
from transom.security import Security, SecurityConfig

from .conftest import CHEAP, PASSWORD, SECRET, AppFactory, add_user, log_in, tables

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "docs"


class Note(BaseModel):
    text: str


def add_notes(app: App) -> None:
    @app.post("/api/notes", status_code=201)
    async def add_note(note: Note, user: CurrentUser) -> dict[str, str]:
        """Add a note."""
        return {"text": note.text, "by": user.username}


def _root_attrs(page: str) -> dict[str, str]:
    match = re.search(r"<div id=swagger-ui([^>]*)>", page)
    assert match is not None, page
    return dict(re.findall(r"data-([a-z-]+)='([^']*)'", match.group(1)))


@pytest.mark.anyio
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_the_docs_page_carries_what_the_interceptor_needs(make_app: AppFactory) -> None:
    app = make_app()
    add_notes(app)
    async with app.async_test_client() as client:
        await add_user(app)
        anonymous = await client.get("/docs")
        # No cookie, nothing a forged request could ride on: no token, and no session made.
        assert "csrf-token" not in _root_attrs(anonymous.text)
        assert "set-cookie" not in anonymous.headers
        await log_in(client)
        page = await client.get("/docs")
        init = await client.get("/docs/init.js")
        attrs = _root_attrs(page.text)
        assert attrs["csrf-header"] == "X-CSRF-Token"
        assert page.headers["cache-control"] == "no-store"
        # The policy stays strict: scripts only from here or with this response's nonce.
        policy = page.headers["content-security-policy"]
        script_src = re.search(r"script-src ([^;]*)", policy)
        assert script_src is not None
        assert "'unsafe-inline'" not in script_src.group(1)
        assert re.search(r"'nonce-[^']+'", script_src.group(1))
        assert "<script>" not in page.text  # nothing inline for the policy to block
        assert b"requestInterceptor" in init.content
        assert b"dataset.csrfToken" in init.content
        assert b"validatorUrl: null" in init.content
        # What the interceptor sends is accepted; without it the same call is refused.
        note = {"text": "from the docs"}
        refused = await client.post("/api/notes", json=note)
        sent = await client.post(
            "/api/notes", json=note, headers={attrs["csrf-header"]: attrs["csrf-token"]}
        )
        assert refused.status_code == 403
        assert sent.status_code == 201, sent.text
        assert sent.json() == {"text": "from the docs", "by": "alice"}
        bundle = await client.get("/docs/swagger-ui-bundle.js", headers={"Accept-Encoding": "gzip"})
        assert bundle.headers["content-encoding"] == "gzip"


# -- the real page in headless Chromium --------------------------------------------------------


def _build(url: str) -> App:
    app = App(Settings(secret_key=SECRET, allowed_hosts=["127.0.0.1"]))
    app.install(Database(DatabaseConfig(url=url)))
    app.install(Security(SecurityConfig()))
    app.install(Auth(AuthConfig(hashers=CHEAP, jwt=JWTConfig(), sync_permissions=False)))
    add_notes(app)
    return app


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'docs.sqlite3'}"
    engine = create_engine(sync_url(url))
    Model.metadata.create_all(engine, tables=tables())
    engine.dispose()
    app = _build(url)
    asyncio.run(add_user(app))
    with serve_in_thread(app) as base:
        yield base


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[Any]:
    browser = start_chromium(tmp_path / "profile", window_size=(1280, 1000))
    try:
        yield browser
    finally:
        browser.quit()


def test_try_it_out_posts_as_the_logged_in_user(
    live_server: str, driver: Any, request: pytest.FixtureRequest
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 20)
    try:
        driver.get(f"{live_server}/auth/login")
        driver.find_element(By.NAME, "username").send_keys("alice")
        password = driver.find_element(By.NAME, "password")
        password.send_keys(PASSWORD)
        password.submit()
        wait.until(lambda d: "/auth/login" not in d.current_url)

        driver.get(f"{live_server}/docs")
        operation = wait.until(
            ec.element_to_be_clickable((By.ID, "operations-default-add_note_post"))
        )
        operation.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
        wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, ".try-out__btn"))).click()
        body = wait.until(
            ec.visibility_of_element_located((By.CSS_SELECTOR, "textarea.body-param__text"))
        )
        body.clear()
        body.send_keys('{"text": "via Try it out"}')
        driver.find_element(By.CSS_SELECTOR, "button.execute").click()
        status = wait.until(
            ec.visibility_of_element_located(
                (By.CSS_SELECTOR, ".live-responses-table .response .response-col_status")
            )
        )
        answer = driver.find_element(
            By.CSS_SELECTOR, ".live-responses-table .response-col_description pre"
        ).text
        assert status.text.strip() == "201", answer
        assert '"by": "alice"' in answer
        assert "via Try it out" in answer
    except BaseException:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / f"{request.node.name}.png"))
        raise
