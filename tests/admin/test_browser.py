"""The admin in a real headless Chromium (Selenium + the system chromedriver), served by uvicorn.

Logs in, creates, searches, edits, bulk-deletes and reads history; uses the searchable
foreign-key box and the keyboard; saves screenshots of the list and edit pages (desktop and
phone width) under ``test-artifacts/admin/``.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from _browser import serve_in_thread, start_chromium
from transom import App
from transom.admin.history import LogEntry
from transom.db import Database, DatabaseConfig

from .conftest import PASSWORD, build_app, make_user, seed
from .models import Article, Base, Tag

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import (  # noqa: E402  # type: ignore[import-not-found, unused-ignore]
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402  # type: ignore[import-not-found, unused-ignore]
from selenium.webdriver.common.by import By  # noqa: E402  # type: ignore[import-not-found, unused-ignore]
from selenium.webdriver.common.keys import Keys  # noqa: E402  # type: ignore[import-not-found, unused-ignore]
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402  # type: ignore[import-not-found, unused-ignore]
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402  # type: ignore[import-not-found, unused-ignore]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "admin"


async def _prepare(url: str) -> None:
    database = Database(DatabaseConfig(url=url), metadata=Base.metadata)
    async with database.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
        await conn.run_sync(LogEntry.metadata.tables["transom_admin_log"].create)
    await make_user(database, "root", superuser=True)
    await seed(database, authors=30, articles_per_author=1)
    async with database.session() as db:
        db.add_all([Tag(name=f"topic-{i}") for i in range(12)])  # more than the select limit
        await db.commit()
    await database.dispose()


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('browser') / 'admin.sqlite3'}"
    asyncio.run(_prepare(url))
    app: App
    app, admin = build_app(Database(DatabaseConfig(url=url), metadata=Base.metadata))
    admin.registry[Article].fk_select_limit = 10  # type: ignore[misc]  # 30 authors: search box
    app.settings.allowed_hosts = ["127.0.0.1"]
    with serve_in_thread(app) as base:
        yield base


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    profile = tmp_path_factory.mktemp("chromium-profile")
    browser = start_chromium(profile, flags=("--disable-quic",))
    browser.implicitly_wait(2)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield browser
    browser.quit()
    shutil.rmtree(profile, ignore_errors=True)


def shot(driver: Any, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def navigate(driver: Any, element: Any, keys: str | None = None) -> None:
    """Click ``element`` (or type ``keys`` into it) and wait until the browser left the page.

    Without the wait, a lookup right after the click can find the old page's elements (the
    previous save's success message, the unfiltered list), which go stale under it.
    """
    page = driver.find_element(By.TAG_NAME, "html")
    if keys is None:
        element.click()
    else:
        element.send_keys(keys)
    WebDriverWait(driver, 10).until(lambda _driver: _gone(page))


def _gone(page: Any) -> bool:
    """True once ``page`` (the old document's root) is no longer part of the browser's page."""
    try:
        page.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        # Asked mid-navigation, chromedriver may answer that the node "does not belong to the
        # document" instead of calling it stale (seen under load): it has left all the same.
        if "does not belong to the document" in (exc.msg or ""):
            return True
        raise
    return False


def wait_for(driver: Any, css: str) -> Any:
    return WebDriverWait(driver, 10).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def test_admin_in_a_real_browser(live_server: str, driver: Any) -> None:
    try:
        walk_through(live_server, driver)
    except BaseException:
        # Leave evidence next to the screenshots.
        shot(driver, "failure")
        (ARTIFACTS / "failure.html").write_text(driver.page_source)
        raise


def walk_through(base: str, driver: Any) -> None:
    driver.set_window_size(1280, 900)
    # Log in.
    driver.get(f"{base}/admin/admin/author")
    assert "/admin/login" in driver.current_url
    driver.find_element(By.ID, "id_username").send_keys("root")
    navigate(driver, driver.find_element(By.ID, "id_password"), PASSWORD + Keys.ENTER)
    wait_for(driver, "table.results")
    assert driver.current_url.endswith("/admin/admin/author")

    driver.get(f"{base}/admin")
    wait_for(driver, ".dashboard")
    shot(driver, "dashboard")
    driver.get(f"{base}/admin/admin/author")

    # Keyboard: the first Tab reaches the skip link.
    wait_for(driver, "table.results")
    ActionChains(driver).send_keys(Keys.TAB).perform()
    WebDriverWait(driver, 5).until(
        lambda d: d.switch_to.active_element.get_attribute("class") == "skip-link"
    )

    # Create an author.
    navigate(driver, driver.find_element(By.LINK_TEXT, "Add author"))
    driver.find_element(By.ID, "id_name").send_keys("Zed Browser")
    driver.find_element(By.ID, "id_email").send_keys("zed@example.com")
    navigate(driver, driver.find_element(By.NAME, "_save"))
    message = wait_for(driver, ".message-success")
    assert "Zed Browser" in message.text

    # Search for it.
    search = driver.find_element(By.ID, "id_q")
    navigate(driver, search, "zed" + Keys.ENTER)
    wait_for(driver, "table.results")
    rows = driver.find_elements(By.CSS_SELECTOR, "table.results tbody tr")
    assert len(rows) == 1
    shot(driver, "author-list-search")
    driver.get(f"{base}/admin/admin/author")
    shot(driver, "author-list")

    # Edit it; a validation error is shown beside the field, then fixed.
    navigate(driver, driver.find_element(By.LINK_TEXT, "Zed Browser"))
    email = driver.find_element(By.ID, "id_email")
    email.clear()
    email.send_keys("a0@example.com")  # taken: a unique violation
    navigate(driver, driver.find_element(By.NAME, "_continue"))
    error = wait_for(driver, "#id_email-errors")
    assert "already exists" in error.text
    assert driver.switch_to.active_element.get_attribute("id") == "id_email"  # focused
    shot(driver, "author-edit-error")
    email = driver.find_element(By.ID, "id_email")
    email.clear()
    email.send_keys("zed@transom.example")
    name = driver.find_element(By.ID, "id_name")
    name.clear()
    name.send_keys("Zed Renamed")
    navigate(driver, driver.find_element(By.NAME, "_continue"))
    assert "You may edit it again" in wait_for(driver, ".message-success").text
    shot(driver, "author-edit")

    # History of the object.
    navigate(driver, driver.find_element(By.LINK_TEXT, "History"))
    history = wait_for(driver, "table.history").text
    assert "Zed Browser" in history
    assert "Zed Renamed" in history
    shot(driver, "author-history")

    # The searchable foreign-key box (30 authors > the select limit of 10).
    driver.get(f"{base}/admin/admin/article/1/change")
    box = driver.find_element(By.ID, "id_author_id-search")
    assert box.get_attribute("value") == "Author 0"
    box.clear()
    box.send_keys("Zed")
    WebDriverWait(driver, 10).until(
        lambda d: (
            [e.text for e in d.find_elements(By.CSS_SELECTOR, "#id_author_id-choices li")]
            == ["Zed Renamed"]
        )
    )
    box.send_keys(Keys.ARROW_DOWN, Keys.ENTER)
    assert driver.find_element(By.ID, "id_author_id").get_attribute("value") != "1"
    shot(driver, "article-edit")
    navigate(driver, driver.find_element(By.NAME, "_continue"))
    wait_for(driver, ".message-success")
    assert driver.find_element(By.ID, "id_author_id-search").get_attribute("value") == "Zed Renamed"

    # The many-to-many box: chosen tags are chips; search and add another.
    chips = driver.find_elements(By.CSS_SELECTOR, "ul.chips li")
    assert [c.text.rstrip("\u00d7").strip() for c in chips] == ["python"]
    tags = driver.find_element(By.ID, "id_tags-search")
    tags.send_keys("topic-11")
    WebDriverWait(driver, 10).until(
        lambda d: (
            [e.text for e in d.find_elements(By.CSS_SELECTOR, "#id_tags-choices li")]
            == ["topic-11"]
        )
    )
    tags.send_keys(Keys.ARROW_DOWN, Keys.ENTER)
    navigate(driver, driver.find_element(By.NAME, "_continue"))
    wait_for(driver, ".message-success")
    chips = driver.find_elements(By.CSS_SELECTOR, "ul.chips li")
    assert sorted(c.text.rstrip("\u00d7").strip() for c in chips) == ["python", "topic-11"]

    # Bulk delete: select two articles, run the action, confirm.
    driver.get(f"{base}/admin/admin/article?o=title")
    boxes = driver.find_elements(By.NAME, "_selected")
    boxes[0].click()
    boxes[1].click()
    Select(driver.find_element(By.ID, "id_action")).select_by_value("delete_selected")
    navigate(driver, driver.find_element(By.CSS_SELECTOR, ".actions-bar button"))
    wait_for(driver, ".to-delete")
    shot(driver, "article-bulk-delete-confirm")
    navigate(driver, driver.find_element(By.CSS_SELECTOR, "button.danger"))
    assert "Deleted 2 articles" in wait_for(driver, ".message-success").text

    # Select-all (JavaScript) checks every row.
    driver.find_element(By.ID, "select-all").click()
    assert all(b.is_selected() for b in driver.find_elements(By.NAME, "_selected"))

    # Phone width: the layout stacks and nothing overflows the viewport.
    phone = {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", phone)
    for url, name in (("author", "author-list-phone"), ("author/1/change", "author-edit-phone")):
        driver.get(f"{base}/admin/admin/{url}")
        overflow = driver.execute_script(
            "return Math.max(...[...document.querySelectorAll('main > *, .changelist > *')]"
            ".map(e => e.getBoundingClientRect().right)) - window.innerWidth"
        )
        assert overflow <= 0, f"{url} is wider than a phone screen by {overflow}px"
        shot(driver, name)
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    logs = [
        e
        for e in driver.get_log("browser")
        if e.get("level") == "SEVERE" and e.get("source") != "network"
    ]
    assert not logs, logs  # no CSP violations, no script errors
