"""Dates and times in one readable format everywhere, in the site's time zone."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from transom import App, Settings
from transom.admin import Admin, AdminConfig, SessionAuth
from transom.db import Database
from transom.exceptions import ImproperlyConfigured
from transom.security import Security
from transom.testing import AsyncTestClient

from .conftest import Browser, make_user, seed
from .models import Comment, User

pytestmark = pytest.mark.anyio


@pytest.fixture
async def paris(database: Database) -> Browser:
    """The test admin, showing times in Paris (CET in March: UTC+1)."""
    app = App(Settings(debug=True))
    app.install(Security())
    app.install(database)
    admin = app.install(Admin(AdminConfig(auth=SessionAuth(User), time_zone="Europe/Paris")))
    admin.register(Comment)
    await make_user(database, "root", superuser=True)
    await seed(database, authors=1, articles_per_author=1)
    async with database.session() as db:
        posted = dt.datetime(2026, 3, 4, 5, 6, tzinfo=dt.UTC)
        db.add(Comment(text="Hi", posted_at=posted, article_id=1))
        await db.commit()
    client = AsyncTestClient(app)
    await client.__aenter__()
    browser = Browser(client)
    await browser.login("root")
    return browser


async def test_lists_forms_and_history_use_the_site_time_zone(
    database: Database, paris: Browser
) -> None:
    try:
        listing = (await paris.get("/admin/admin/comment")).text
        assert "2026-03-04 06:06 CET" in listing
        form = (await paris.get("/admin/admin/comment/1/change")).text
        assert 'value="2026-03-04T06:06:00"' in form  # the input shows Paris time
        assert "Time zone: Europe/Paris." in form
        changed = await paris.post(
            "/admin/admin/comment/1/change",
            {"text": "Hi", "posted_at": "2026-03-04T07:30", "article_id": "1"},
            token_from="/admin/admin/comment/1/change",
        )
        assert changed.status_code == 303, changed.text
        async with database.session() as db:
            comment = (await db.execute(select(Comment))).scalar_one()
            assert comment.posted_at == dt.datetime(2026, 3, 4, 6, 30, tzinfo=dt.UTC)
        history = (await paris.get("/admin/admin/comment/1/history")).text
        assert "<del>2026-03-04 06:06 CET</del> → <ins>2026-03-04 07:30 CET</ins>" in history
        when = re.search(r"<time datetime=\"[^\"]+\">([^<]+)</time>", history)
        assert when is not None
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)? CES?T", when.group(1))
    finally:
        await paris.client.__aexit__(None, None, None)


def test_an_unknown_time_zone_is_refused_at_start_up() -> None:
    with pytest.raises(ImproperlyConfigured, match="Mars/Olympus"):
        Admin(AdminConfig(time_zone="Mars/Olympus"))
