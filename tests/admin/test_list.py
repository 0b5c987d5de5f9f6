"""The list page: columns, search, filters, sorting, pages, estimates, bulk actions."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from sqlalchemy import text

from transom.admin import listing
from transom.admin.site import Admin
from transom.db import Database

from .conftest import Browser, make_user, seed
from .models import Article, Author, Status

pytestmark = pytest.mark.anyio

AUTHORS = "/admin/admin/author"
ARTICLES = "/admin/admin/article"


def names(html: str) -> list[str]:
    return re.findall(r'/change">([^<]+)</a></td>', html)


@pytest.fixture
async def root(database: Database, browser: Browser) -> Browser:
    await make_user(database, "root", superuser=True)
    await browser.login("root")
    return browser


async def test_columns_links_and_escaping(database: Database, root: Browser) -> None:
    await seed(database, authors=1, articles_per_author=1)
    async with database.session() as db:
        db.add(Author(name="<script>alert(1)</script>", email="x@example.com"))
        await db.commit()
    page = (await root.get(AUTHORS)).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page
    articles = (await root.get(ARTICLES)).text
    # Many-to-one columns show the related object's label; enums their name.
    assert '<td class="">Author 0</td>' in articles
    assert "Draft" in articles


async def test_zero_config_shows_every_column(database: Database, root: Browser) -> None:
    await seed(database, authors=1, articles_per_author=1)
    async with database.session() as db:
        from .models import Comment

        db.add(Comment(text="Nice", article_id=1))
        await db.commit()
    page = (await root.get("/admin/admin/comment")).text
    assert "Article" in page
    assert "Text" in page
    tags = (await root.get("/admin/admin/tag")).text
    assert '/admin/admin/tag/1/change">1</a>' in tags
    assert ">python</td>" in tags


async def test_search(database: Database, root: Browser) -> None:
    await seed(database, authors=3, articles_per_author=0)
    page = (await root.get(f"{AUTHORS}?q=author+1")).text
    assert names(page) == ["Author 1"]
    assert "1 author" in page
    assert names((await root.get(f"{AUTHORS}?q=a2@example")).text) == ["Author 2"]
    assert names((await root.get(f"{AUTHORS}?q=%25")).text) == []  # LIKE wildcards are escaped
    assert "No authors match" in (await root.get(f"{AUTHORS}?q=zzz")).text


async def test_boolean_filter_and_sorting(database: Database, root: Browser) -> None:
    await seed(database, authors=4, articles_per_author=0)
    assert names((await root.get(f"{AUTHORS}?f_active=1&o=name")).text) == ["Author 0", "Author 2"]
    assert names((await root.get(f"{AUTHORS}?f_active=0&o=-name")).text) == ["Author 3", "Author 1"]
    assert names((await root.get(f"{AUTHORS}?o=-name")).text)[0] == "Author 3"
    assert names((await root.get(f"{AUTHORS}?o=name")).text)[0] == "Author 0"
    # Unknown sort keys and filter values are ignored, not errors.
    assert (await root.get(f"{AUTHORS}?o=password&f_active=maybe")).status_code == 200
    page = (await root.get(f"{AUTHORS}?o=name")).text
    assert 'aria-sort="ascending"' in page
    assert 'href="?o=-name"' in page  # clicking again sorts descending
    assert 'href="?o=email"' in page  # another column starts ascending


async def test_enum_date_and_fk_filters(database: Database, root: Browser) -> None:
    await seed(database, authors=2, articles_per_author=2)
    today = dt.datetime.now(dt.UTC).date()
    async with database.session() as db:
        first = await db.get(Article, 1)
        assert first is not None
        first.status = Status.PUBLISHED
        first.published_on = today
        second = await db.get(Article, 2)
        assert second is not None
        second.published_on = today - dt.timedelta(days=400)
        await db.commit()
    assert names((await root.get(f"{ARTICLES}?f_status=published")).text) == ["Post 0-0"]
    assert len(names((await root.get(f"{ARTICLES}?f_status=draft")).text)) == 3
    assert names((await root.get(f"{ARTICLES}?f_published_on=7d")).text) == ["Post 0-0"]
    assert len(names((await root.get(f"{ARTICLES}?f_published_on=null")).text)) == 2
    page = (await root.get(f"{ARTICLES}?f_author_id=2&o=title")).text
    assert names(page) == ["Post 1-0", "Post 1-1"]
    assert "By author" in page
    assert "?f_author_id=1" in page


async def test_pagination(database: Database, root: Browser, site: tuple[object, Admin]) -> None:
    _, admin = site
    await seed(database, authors=7, articles_per_author=0)
    admin.registry[Author].list_per_page = 3  # type: ignore[misc]
    first = (await root.get(f"{AUTHORS}?o=name")).text
    assert names(first) == ["Author 0", "Author 1", "Author 2"]
    assert 'rel="next"' in first
    assert "7 authors" in first
    third = (await root.get(f"{AUTHORS}?o=name&p=3")).text
    assert names(third) == ["Author 6"]
    assert 'rel="next"' not in third
    assert (await root.get(f"{AUTHORS}?p=abc")).status_code == 200
    assert names((await root.get(f"{AUTHORS}?p=99")).text) == []


async def test_deep_pages_use_the_deferred_join(
    database: Database, root: Browser, site: tuple[object, Admin], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, admin = site
    await seed(database, authors=7, articles_per_author=0)
    admin.registry[Author].list_per_page = 2  # type: ignore[misc]
    monkeypatch.setattr(listing, "DEFERRED_JOIN_OFFSET", 0)
    assert names((await root.get(f"{AUTHORS}?o=-name&p=2")).text) == ["Author 4", "Author 3"]
    assert names((await root.get(f"{AUTHORS}?p=4")).text) == ["Author 0"]


async def test_estimate_instead_of_count_on_big_tables(
    database: Database, root: Browser, site: tuple[object, Admin], backend: str
) -> None:
    _, admin = site
    await seed(database, authors=12, articles_per_author=0)
    async with database.engine.begin() as conn:
        if backend == "postgresql":
            await conn.execute(text("ANALYZE author"))
        elif backend == "mariadb":
            await conn.execute(text("ANALYZE TABLE author"))
    admin.registry[Author].count_threshold = 5  # type: ignore[misc]
    admin.registry[Author].list_per_page = 5  # type: ignore[misc]
    async with database.session() as db:
        estimate = await listing.table_estimate(db, "author")
    assert estimate is not None
    assert estimate > 5
    page = (await root.get(AUTHORS)).text
    assert f"about {estimate:,} authors" in page
    assert "estimates on this large table" in page
    assert 'rel="next"' in page
    # A search with few matches gets them all in one scan: an exact count.
    assert "12 authors" in (await root.get(f"{AUTHORS}?q=author")).text
    # With many matches, it counts at most threshold + 1 of them.
    admin.registry[Author].search_probe = 3  # type: ignore[misc]
    assert "more than 5 authors" in (await root.get(f"{AUTHORS}?q=author")).text
    page = (await root.get(f"{AUTHORS}?q=author&o=name&p=2")).text
    assert names(page) == ["Author 3", "Author 4", "Author 5", "Author 6", "Author 7"]
    assert "1 author" in (await root.get(f"{AUTHORS}?q=a11@")).text
    admin.registry[Author].search_probe = 1000  # type: ignore[misc]
    probe = (await root.get(f"{AUTHORS}?q=author&o=name&p=3")).text
    assert names(probe) == ["Author 8", "Author 9"]  # the page sorted from the collected keys


async def test_bulk_delete_with_confirmation(database: Database, root: Browser) -> None:
    await seed(database, authors=3, articles_per_author=0)
    confirm = await root.post(AUTHORS, {"action": "delete_selected", "_selected": ["1", "2"]})
    assert confirm.status_code == 200
    assert "Are you sure?" in confirm.text
    assert "Author 0" in confirm.text
    done = await root.post(
        AUTHORS, {"action": "delete_selected", "_selected": ["1", "2"], "confirm": "yes"}
    )
    assert done.status_code == 303
    page = (await root.get(AUTHORS)).text
    assert names(page) == ["Author 2"]
    assert "Deleted 2 authors" in page
    history = (await root.get(f"{AUTHORS}/1/history")).text
    assert "delete" in history
    assert "root" in history


async def test_bulk_delete_blocked_by_related_rows(database: Database, root: Browser) -> None:
    await seed(database, authors=2, articles_per_author=1)
    r = await root.post(
        AUTHORS, {"action": "delete_selected", "_selected": ["1"], "confirm": "yes"}
    )
    assert r.status_code == 409
    assert "cannot be deleted" in r.text
    assert "Post 0-0" in r.text
    assert len(names((await root.get(AUTHORS)).text)) == 2


async def test_custom_action_and_empty_selection(database: Database, root: Browser) -> None:
    await seed(database, authors=3, articles_per_author=0)
    r = await root.post(AUTHORS, {"action": "deactivate", "_selected": ["1", "3"]})
    assert r.status_code == 303
    page = (await root.get(AUTHORS)).text
    assert "2 deactivated." in page
    assert names((await root.get(f"{AUTHORS}?f_active=1")).text) == []
    assert "Action: Deactivate." in (await root.get(f"{AUTHORS}/1/history")).text
    await root.post(AUTHORS, {"action": "deactivate"})
    assert "Select at least one item" in (await root.get(AUTHORS)).text
    await root.post(AUTHORS, {"action": "nope", "_selected": "1"})
    assert "Choose an action" in (await root.get(AUTHORS)).text


async def test_search_through_a_relationship(
    database: Database, root: Browser, site: tuple[object, Admin]
) -> None:
    _, admin = site
    await seed(database, authors=3, articles_per_author=1)
    admin.registry[Article].search_fields = ["title", "author__email", "=id"]  # type: ignore[misc]
    assert names((await root.get(f"{ARTICLES}?q=a1@example")).text) == ["Post 1-0"]
    assert names((await root.get(f"{ARTICLES}?q=3")).text) == ["Post 2-0"]


async def test_big_table_page_runs_no_count(
    database: Database, root: Browser, site: tuple[object, Admin], backend: str
) -> None:
    from sqlalchemy import event

    _, admin = site
    await seed(database, authors=12, articles_per_author=0)
    async with database.engine.begin() as conn:
        if backend == "postgresql":
            await conn.execute(text("ANALYZE author"))
        elif backend == "mariadb":
            await conn.execute(text("ANALYZE TABLE author"))
    admin.registry[Author].count_threshold = 5  # type: ignore[misc]
    admin.registry[Author].list_per_page = 5  # type: ignore[misc]
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement.lower())

    event.listen(database.engine.sync_engine, "before_cursor_execute", record)
    try:
        for url in (AUTHORS, f"{AUTHORS}?p=2", f"{AUTHORS}?o=name&p=2"):
            assert (await root.get(url)).status_code == 200
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", record)
    assert statements
    assert not [s for s in statements if "count(" in s], statements
