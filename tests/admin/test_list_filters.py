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


async def test_an_action_on_all_matching_rows_across_pages(
    database: Database, root: Browser
) -> None:
    await seed(database, authors=60, articles_per_author=0)  # active: the even ones (30)
    page = (await root.get("/admin/admin/author?f_active=1")).text
    assert "select-across" not in page  # 30 rows fit on the page
    everyone = (await root.get("/admin/admin/author")).text
    assert "Select all 60 authors" in everyone
    done = await root.post(
        "/admin/admin/author",
        {"action": "deactivate", "_select_across": "1", "_query": "q=Author+1", "_selected": "1"},
    )
    assert done.status_code == 303
    from sqlalchemy import select

    from .models import Author

    async with database.session() as db:
        active = set((await db.scalars(select(Author.name).where(Author.active))).all())
    # Every active author matching "Author 1" (on any page) was deactivated, no one else.
    assert not {name for name in active if "1" in name}
    assert "Author 0" in active
    assert "Author 2" in active
