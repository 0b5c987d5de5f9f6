"""Pages at phone width in headless Chromium: the debug 500 page, the admin's change list.

Screenshots go to ``test-artifacts/admin/`` (always, and a page dump on failure).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from _browser import serve_in_thread
from transom import App, Settings
from transom.db import Database, DatabaseConfig

from .conftest import PASSWORD, build_app
from .models import Base
from .test_browser import (  # the module's fixtures: one Chromium and one admin server
    ARTIFACTS,
    _prepare,
    driver,
    live_server,
    navigate,
    shot,
    wait_for,
)

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402  # type: ignore[import-not-found, unused-ignore]
from selenium.webdriver.common.keys import Keys  # noqa: E402  # type: ignore[import-not-found, unused-ignore]
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402  # type: ignore[import-not-found, unused-ignore]

__all__ = ["driver", "live_server"]

PHONE = (390, 844)


def serve(app: App) -> Iterator[str]:
    app.settings.allowed_hosts = ["127.0.0.1"]
    with serve_in_thread(app, log_level="critical") as base:
        yield base


@pytest.fixture(scope="module")
def debug_site() -> Iterator[str]:
    app = App(Settings(debug=True))

    @app.get("/crash")
    async def crash() -> None:
        a_rather_long_local_variable_name_that_never_ends = "x" * 300  # noqa: F841
        raise RuntimeError("a long message " + "without/any/spaces/" * 20)

    yield from serve(app)


def evidence(driver: Any, name: str) -> None:
    shot(driver, f"{name}-failure")
    (ARTIFACTS / f"{name}-failure.html").write_text(driver.page_source)


def no_sideways_scroll(driver: Any) -> list[str]:
    """What sticks out of the viewport or is cut inside its box (empty when all fits)."""
    script = """
    const root = document.documentElement;
    const width = root.clientWidth;
    const out = [];
    if (root.scrollWidth > width) out.push('page ' + root.scrollWidth);
    for (const el of document.querySelectorAll('pre, code, table, h1, h3, td')) {
      if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).display !== 'inline')
        out.push(el.tagName + ' ' + el.scrollWidth + '>' + el.clientWidth);
      if (el.getBoundingClientRect().right > width + 1) out.push(el.tagName + ' beyond the screen');
    }
    return out;
    """
    found: list[str] = driver.execute_script(script)
    return found


def test_debug_500_page_reads_on_a_phone(debug_site: str, driver: Any) -> None:
    driver.set_window_size(*PHONE)
    try:
        driver.get(f"{debug_site}/crash")
        wait_for(driver, "pre")
        assert "RuntimeError" in driver.find_element(By.TAG_NAME, "h1").text
        shot(driver, "debug-500-phone")
        assert no_sideways_scroll(driver) == []
    except BaseException:
        evidence(driver, "debug-500-phone")
        raise
    finally:
        driver.set_window_size(1280, 900)


def login(driver: Any, base: str, target: str) -> None:
    """Open ``target``, logging in only when asked: each login counts against the login rate
    limit (10 per account and address in 15 minutes), which a test per page would exceed."""
    driver.get(f"{base}{target}")
    if "/admin/login" in driver.current_url:
        driver.find_element(By.ID, "id_username").send_keys("root")
        navigate(driver, driver.find_element(By.ID, "id_password"), PASSWORD + Keys.ENTER)


__all__ += ["login", "no_sideways_scroll"]


def first_screen_report(driver: Any) -> dict[str, Any]:
    script = """
    const row = document.querySelector('table.results tbody tr');
    const filters = document.querySelector('.filters');
    const links = [...document.querySelectorAll('table.results tbody td a')];
    return {
      rowTop: row ? row.getBoundingClientRect().top : null,
      height: window.innerHeight,
      filtersOpen: filters ? (filters.open === undefined ? true : filters.open) : null,
      filtersTop: filters ? filters.getBoundingClientRect().top : null,
      wrapped: links.filter(a => a.getClientRects().length > 1).map(a => a.textContent),
      pageWidth: document.documentElement.scrollWidth,
      width: document.documentElement.clientWidth,
    };
    """
    report: dict[str, Any] = driver.execute_script(script)
    return report


def test_change_list_on_a_phone_shows_results_first(live_server: str, driver: Any) -> None:
    driver.set_window_size(*PHONE)
    try:
        login(driver, live_server, "/admin/admin/article")
        wait_for(driver, "table.results")
        driver.execute_script("window.scrollTo(0, 0)")
        shot(driver, "article-list-phone")
        report = first_screen_report(driver)
        assert report["rowTop"] is not None
        assert report["rowTop"] < report["height"] - 40, report  # a row on the first screen
        assert report["wrapped"] == [], report  # titles keep their words on one line
        assert report["pageWidth"] <= report["width"], report  # the page itself never scrolls
        # The filters: collapsed behind a button, which opens them.
        assert report["filtersOpen"] is False, report
        navigate_same_page = driver.find_element(By.CSS_SELECTOR, ".filters-toggle")
        navigate_same_page.click()
        assert driver.execute_script("return document.querySelector('.filters').open") is True
        shot(driver, "article-list-phone-filters")
    except BaseException:
        evidence(driver, "article-list-phone")
        raise
    finally:
        driver.set_window_size(1280, 900)


@pytest.fixture(scope="module")
def picker_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The admin of tests/admin with the default limits: 13 tags make a picker."""
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('picker') / 'admin.sqlite3'}"
    asyncio.run(_prepare(url))
    app, _ = build_app(Database(DatabaseConfig(url=url), metadata=Base.metadata))
    yield from serve(app)


def test_many_to_many_picker_filters_and_counts(picker_site: str, driver: Any) -> None:
    driver.set_window_size(1280, 900)
    try:
        login(driver, picker_site, "/admin/admin/article/1/change")
        picker = wait_for(driver, ".picker")
        count = picker.find_element(By.CSS_SELECTOR, ".picker-count")
        assert count.text == "1 of 13 selected"  # seeded with "python"
        picker.find_element(By.CSS_SELECTOR, ".picker-filter").send_keys("topic-1")
        visible = [
            item.text
            for item in picker.find_elements(By.CSS_SELECTOR, ".picker-item")
            if item.is_displayed()
        ]
        assert visible == ["topic-1", "topic-10", "topic-11"]
        picker.find_element(By.CSS_SELECTOR, ".picker-item:not([hidden]) input").click()
        assert count.text == "2 of 13 selected"
        shot(driver, "article-tags-picker")
        navigate(driver, driver.find_element(By.NAME, "_continue"))
        wait_for(driver, ".message-success")
        checked = driver.find_elements(By.CSS_SELECTOR, ".picker-item input:checked")
        names = [box.find_element(By.XPATH, "..").text for box in checked]
        assert names == ["python", "topic-1"]
    except BaseException:
        evidence(driver, "picker")
        raise


def test_the_list_counts_the_selected_rows(picker_site: str, driver: Any) -> None:
    driver.set_window_size(1280, 900)
    try:
        login(driver, picker_site, "/admin/admin/author")
        wait_for(driver, "table.results")
        selection = driver.find_element(By.CSS_SELECTOR, ".selection")
        assert selection.text == "0 of 30 selected"
        # "0 of 30 selected" and "30 authors" sit on one line, not one raised above the other
        count = driver.find_element(By.CSS_SELECTOR, ".actions-bar .count")
        middle = [e.rect["y"] + e.rect["height"] / 2 for e in (selection, count)]
        assert abs(middle[0] - middle[1]) <= 1, middle
        boxes = driver.find_elements(By.CSS_SELECTOR, 'input[name="_selected"]')
        boxes[0].click()
        boxes[1].click()
        assert selection.text == "2 of 30 selected"
        driver.find_element(By.ID, "select-all").click()
        assert selection.text == "30 of 30 selected"
        shot(driver, "author-list-selection")
    except BaseException:
        evidence(driver, "selection")
        raise


@pytest.mark.parametrize(
    "path",
    [
        "/admin",
        "/admin/admin/article/1/change",
        "/admin/admin/article/add",
        "/admin/admin/article/1/history",
        "/admin/admin/article/1/delete",
        "/admin/admin/user/1/change",
        "/admin/password",
        "/admin/logout",
    ],
)
def test_admin_pages_fit_a_phone(picker_site: str, driver: Any, path: str) -> None:
    """Nothing but a results table scrolls sideways (inside its own box) at 390 px."""
    driver.set_window_size(*PHONE)
    name = "phone" + path.replace("/", "-")
    try:
        login(driver, picker_site, path)
        wait_for(driver, "main")
        shot(driver, name)
        width = driver.execute_script(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert width[0] <= width[1], width
    except BaseException:
        evidence(driver, name)
        raise
    finally:
        driver.set_window_size(1280, 900)


HISTORY_REPORT = """
const wrap = document.querySelector('.table-wrap');
const when = document.querySelector('.history time');
const change = document.querySelector('.history ins');
return {
  wrap: wrap ? [wrap.scrollWidth, wrap.clientWidth] : null,
  whenLines: when ? when.getClientRects().length : null,
  changeWidth: change ? change.getBoundingClientRect().width : null,
  changeRight: change ? change.getBoundingClientRect().right : null,
  width: document.documentElement.clientWidth,
};
"""


def test_history_reads_on_a_phone(picker_site: str, driver: Any) -> None:
    # Four columns at 390 px squeezed "What changed" to a letter per line, cut by the table's
    # box, and broke the date at its dashes: each entry is now a block.
    driver.set_window_size(*PHONE)
    try:
        login(driver, picker_site, "/admin/admin/article/2/change")
        title = wait_for(driver, "#id_title")
        title.clear()
        title.send_keys("A considerably longer title, to see how the history shows it")
        navigate(driver, driver.find_element(By.NAME, "_save"))
        driver.get(f"{picker_site}/admin/admin/article/2/history")
        wait_for(driver, "table.history")
        shot(driver, "phone-history")
        report = driver.execute_script(HISTORY_REPORT)
        assert report["wrap"][0] <= report["wrap"][1], report  # nothing scrolls or is cut
        assert report["whenLines"] == 1, report  # 2026-12-07 15:58 UTC on one line
        assert report["changeWidth"] > report["width"] / 2, report  # words side by side
        assert report["changeRight"] <= report["width"], report
    except BaseException:
        evidence(driver, "phone-history")
        raise
    finally:
        driver.set_window_size(1280, 900)


def test_long_titles_on_a_phone_list_keep_words_together(picker_site: str, driver: Any) -> None:
    # A 40-character title in a 9rem column wrapped to four lines of two words (Django's
    # wraps one word per line): the linked column is wider, two lines at most.
    driver.set_window_size(*PHONE)
    try:
        login(driver, picker_site, "/admin/admin/article/3/change")
        title = wait_for(driver, "#id_title")
        title.clear()
        title.send_keys("Notes on an analytical engine, part 59")
        navigate(driver, driver.find_element(By.NAME, "_save"))
        driver.get(f"{picker_site}/admin/admin/article?q=analytical")
        link = wait_for(driver, "table.results tbody td a")
        assert link.text == "Notes on an analytical engine, part 59"
        shot(driver, "phone-list-long-title")
        lines = driver.execute_script(
            "const r = arguments[0].getClientRects();"
            "return new Set([...r].map(x => Math.round(x.top))).size;",
            link,
        )
        assert lines <= 2, lines
        width = driver.execute_script(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert width[0] <= width[1], width  # the page itself still never scrolls sideways
    except BaseException:
        evidence(driver, "phone-list-long-title")
        raise
    finally:
        driver.set_window_size(1280, 900)


SLOW_FIRST_FETCH = """
window.__slowDone = false;
window.__calls = 0;
var original = window.fetch;
window.fetch = function (url, options) {
  window.__calls += 1;
  var answer = original(url, options);
  if (window.__calls !== 1) { return answer; }
  return new Promise(function (resolve) {
    setTimeout(function () { resolve(answer); window.__slowDone = true; }, 1500);
  });
};
"""


def choices(driver: Any) -> list[str]:
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#id_author_id-choices li")]


def test_foreign_key_search_box_flags_stale_and_unchosen_input(
    live_server: str, driver: Any
) -> None:
    """No results is said; an older, slower answer never replaces a newer one; typed text
    that was not chosen is flagged and the form is not sent as if it were."""
    driver.set_window_size(1280, 900)
    try:
        login(driver, live_server, "/admin/admin/article/2/change")
        box = wait_for(driver, "#id_author_id-search")
        box.clear()
        box.send_keys("nobody-by-that-name")
        WebDriverWait(driver, 10).until(lambda d: choices(d) == ["No results"])
        # Slow first answer ("Author 1"), then a quick one ("Author 2").
        driver.execute_script(SLOW_FIRST_FETCH)
        box.clear()
        box.send_keys("Author 1")
        # The first search is sent once typing pauses (200 ms): wait until it has gone out.
        WebDriverWait(driver, 10).until(lambda d: d.execute_script("return window.__calls >= 1"))
        box.clear()
        box.send_keys("Author 2")
        WebDriverWait(driver, 10).until(lambda d: d.execute_script("return window.__slowDone"))
        shown = choices(driver)
        assert "Author 2" in shown, shown  # the newer answer stays
        assert "Author 1" not in shown, shown  # the older one, arriving later, is dropped
        assert "Author 10" not in shown, shown
        # Leave the typed text unchosen and try to save: refused on the page, flagged.
        before = driver.current_url
        driver.find_element(By.NAME, "_continue").click()
        warning = wait_for(driver, "#id_author_id-warning")
        assert "is not chosen" in warning.text
        assert box.get_attribute("aria-invalid") == "true"
        assert driver.current_url == before
        shot(driver, "fk-unchosen")
    except BaseException:
        evidence(driver, "fk-search")
        raise


def test_edit_page_banners_line_up_with_the_form(picker_site: str, driver: Any) -> None:
    driver.set_window_size(1366, 900)
    try:
        login(driver, picker_site, "/admin/admin/author/1/change")
        email = wait_for(driver, "#id_email")
        email.clear()
        email.send_keys("a1@example.com")  # taken: the page comes back with its banner
        navigate(driver, driver.find_element(By.NAME, "_continue"))
        banner = wait_for(driver, ".error-summary").rect
        card = driver.find_element(By.CSS_SELECTOR, ".edit-form").rect
        head = driver.find_element(By.CSS_SELECTOR, ".page-head").rect
        shot(driver, "author-edit-aligned")
        for box in (banner, head):
            assert abs(box["x"] - card["x"]) < 1, (box, card)
            assert abs(box["width"] - card["width"]) < 1, (box, card)
    except BaseException:
        evidence(driver, "aligned")
        raise
    finally:
        driver.set_window_size(1280, 900)
