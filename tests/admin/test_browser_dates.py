"""Date-time controls in headless Chromium whose own zone (New York) is not the site's (Paris).

The datetime-local control shows the stored moment in the site's zone, with the zone named
beside it; saving untouched keeps the stored moment to the microsecond; a time typed with the
keyboard is stored as that Paris time. Screenshots go to ``test-artifacts/admin/``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from _browser import serve_in_thread, start_chromium
from transom import App, Settings
from transom.admin import Admin, AdminConfig, SessionAuth
from transom.admin.history import LogEntry
from transom.db import Database, DatabaseConfig
from transom.security import Security

from .conftest import PASSWORD, make_user, seed
from .models import Base, Comment, User
from .test_browser import ARTIFACTS, navigate, shot, wait_for

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402  # type: ignore[import-not-found, unused-ignore]
from selenium.webdriver.common.keys import Keys  # noqa: E402  # type: ignore[import-not-found, unused-ignore]

STORED = dt.datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=dt.UTC)  # 06:06:07 in Paris (CET)


async def _prepare(url: str) -> None:
    database = Database(DatabaseConfig(url=url), metadata=Base.metadata)
    async with database.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
        await conn.run_sync(LogEntry.metadata.tables["transom_admin_log"].create)
    await make_user(database, "root", superuser=True)
    await seed(database, authors=1, articles_per_author=1)
    async with database.session() as db:
        db.add(Comment(text="Hi", posted_at=STORED, article_id=1))
        await db.commit()
    await database.dispose()


async def _posted_at(url: str) -> dt.datetime | None:
    database = Database(DatabaseConfig(url=url), metadata=Base.metadata)
    try:
        async with database.session() as db:
            return (await db.execute(select(Comment))).scalar_one().posted_at
    finally:
        await database.dispose()


@pytest.fixture(scope="module")
def paris_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('dates') / 'admin.sqlite3'}"
    asyncio.run(_prepare(url))
    app = App(Settings(debug=True, allowed_hosts=["127.0.0.1"]))
    app.install(Security())
    app.install(Database(DatabaseConfig(url=url), metadata=Base.metadata))
    admin = app.install(Admin(AdminConfig(auth=SessionAuth(User), time_zone="Europe/Paris")))
    admin.register(Comment)
    with serve_in_thread(app) as base:
        yield base, url


@pytest.fixture(scope="module")
def new_york_browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Chromium in New York (UTC-5 in March), US English: nothing like the site's Paris."""
    profile = tmp_path_factory.mktemp("chromium-dates")
    browser = start_chromium(
        profile,
        window_size=(1366, 900),
        flags=("--lang=en-US",),
        env={**os.environ, "TZ": "America/New_York"},
    )
    browser.implicitly_wait(2)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield browser
    browser.quit()
    shutil.rmtree(profile, ignore_errors=True)


def test_datetime_control_round_trips_in_the_site_zone(
    paris_site: tuple[str, str], new_york_browser: Any
) -> None:
    base, url = paris_site
    driver = new_york_browser
    try:
        # The browser really is elsewhere: its own clock reads New York time.
        offset = driver.execute_script("return new Date(2026, 2, 4).getTimezoneOffset()")
        assert offset == 300
        driver.get(f"{base}/admin/admin/comment/1/change")
        driver.find_element(By.ID, "id_username").send_keys("root")
        navigate(driver, driver.find_element(By.ID, "id_password"), PASSWORD + Keys.ENTER)
        control = wait_for(driver, "#id_posted_at")
        # Paris time, as typed and shown (not New York's 00:06, not UTC's 05:06)
        assert control.get_property("value") == "2026-03-04T06:06:07"
        zone = driver.find_element(By.ID, "id_posted_at-zone")
        assert zone.text == "Europe/Paris (CET)"
        assert "id_posted_at-zone" in (control.get_attribute("aria-describedby") or "")
        # beside the control, on its line, at desktop width
        box, label = control.rect, zone.rect
        assert label["x"] >= box["x"] + box["width"]
        assert label["y"] < box["y"] + box["height"]
        assert box["y"] < label["y"] + label["height"]
        shot(driver, "datetime-paris-desktop")
        # On a phone the name wraps under the control, still on screen.
        driver.set_window_size(390, 844)
        zone = driver.find_element(By.ID, "id_posted_at-zone")
        assert zone.is_displayed()
        assert zone.rect["x"] + zone.rect["width"] <= 390
        shot(driver, "datetime-paris-phone")
        driver.set_window_size(1366, 900)

        # Saved untouched: the stored moment, microseconds and all.
        navigate(driver, driver.find_element(By.NAME, "_continue"))
        wait_for(driver, "#id_posted_at")
        assert asyncio.run(_posted_at(url)) == STORED

        # Typed with the keyboard (en-US: month, day, year, hour, minute, second, AM/PM):
        # 7:30:00 AM on 5 March is Paris time, 06:30 UTC.
        control = driver.find_element(By.ID, "id_posted_at")
        control.click()
        control.send_keys(Keys.HOME)
        control.send_keys("03052026", Keys.TAB, "0730", "00", "AM")
        assert control.get_property("value") in ("2026-03-05T07:30", "2026-03-05T07:30:00")
        navigate(driver, driver.find_element(By.NAME, "_continue"))
        wait_for(driver, "#id_posted_at")
        assert asyncio.run(_posted_at(url)) == dt.datetime(2026, 3, 5, 6, 30, tzinfo=dt.UTC)
        assert driver.find_element(By.ID, "id_posted_at").get_property("value") == (
            "2026-03-05T07:30"
        )
        # The list and the history say the same moments in the admin's one readable format.
        driver.get(f"{base}/admin/admin/comment")
        assert "2026-03-05 07:30 CET" in driver.find_element(By.CSS_SELECTOR, "table.results").text
        driver.get(f"{base}/admin/admin/comment/1/history")
        assert "2026-03-04 06:06:07 CET" in driver.find_element(By.TAG_NAME, "main").text
        shot(driver, "datetime-paris-history")
    except BaseException:
        shot(driver, "datetime-paris-failure")
        (ARTIFACTS / "datetime-paris-failure.html").write_text(driver.page_source)
        raise
