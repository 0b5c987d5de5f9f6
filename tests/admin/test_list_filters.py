"""The list's sidebar: a relation filter stays usable past 50 related rows (a search inside
it), the active filters always show with a way to clear each, and "Clear all filters" is
separate from clearing the search."""

from __future__ import annotations

import html
import re

import pytest

from transom.db import Database

from .conftest import Browser, make_user, seed

pytestmark = pytest.mark.anyio

ARTICLES = "/admin/admin/article"


@pytest.fixture
async def root(database: Database, browser: Browser) -> Browser:
    await make_user(database, "root", superuser=True)
    await browser.login("root")
    return browser


def links(page: str) -> dict[str, str]:
    """Link text -> href."""
    return {
        re.sub(r"<[^>]+>", "", text).strip(): html.unescape(href)
        for href, text in re.findall(r'<a href="([^"]*)"[^>]*>(.*?)</a>', page)
    }


async def test_a_relation_filter_past_50_rows_has_a_search(
    database: Database, root: Browser
) -> None:
    await seed(database, authors=60, articles_per_author=1)
    page = (await root.get(ARTICLES)).text
    assert 'name="f_author_id__q"' in page
    assert "Author 42</a>" not in page  # no 60 links
    found = (await root.get(f"{ARTICLES}?f_author_id__q=Author+42")).text
    choice = links(found)["Author 42"]
    assert "f_author_id=43" in choice
    assert "f_author_id__q" not in choice  # choosing ends the search
    chosen = (await root.get(f"{ARTICLES}{choice}")).text
    assert '<p class="chosen"><span>Author 42</span>' in chosen  # shown though not listed
    assert "Post 42-0" in chosen
    assert "Post 41-0" not in chosen


async def test_active_filters_show_and_clear_apart_from_the_search(
    database: Database, root: Browser
) -> None:
    await seed(database, authors=2, articles_per_author=2)
    page = (await root.get(f"{ARTICLES}?q=Post&f_status=draft&f_author_id=1")).text
    assert "Filter (2 active)" in page
    assert page.count('<p class="chosen">') == 2
    found = links(page)
    assert found["Clear all filters"] == "?q=Post"  # the search stays
    assert found["Clear search"] == "?f_status=draft&f_author_id=1"  # the filters stay
    assert "Clear all filters" not in (await root.get(f"{ARTICLES}?q=Post")).text
