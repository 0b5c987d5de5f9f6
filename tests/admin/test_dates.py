"""Dates and times in one readable format everywhere, in the site's time zone."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

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
        # the zone is named beside the control, and the control points at it
        assert '<span class="zone" id="id_posted_at-zone">Europe/Paris (CET)</span>' in form
        assert 'aria-describedby="id_posted_at-zone"' in form
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


async def _posted_at(database: Database) -> dt.datetime | None:
    async with database.session() as db:
        return (await db.execute(select(Comment))).scalar_one().posted_at


async def _store(database: Database, moment: dt.datetime) -> None:
    async with database.session() as db:
        comment = (await db.execute(select(Comment))).scalar_one()
        comment.posted_at = moment
        await db.commit()


async def _save(paris: Browser, posted_at: str) -> Any:
    return await paris.post(
        "/admin/admin/comment/1/change",
        {"text": "Hi", "posted_at": posted_at, "article_id": "1"},
        token_from="/admin/admin/comment/1/change",
    )


async def test_an_untouched_moment_is_saved_as_stored(database: Database, paris: Browser) -> None:
    # The control shows whole seconds: saving the form must not round the stored moment, and
    # browsers send "06:06" for a shown "06:06:00".
    try:
        stored = dt.datetime(2026, 3, 4, 5, 6, 0, 123456, tzinfo=dt.UTC)
        await _store(database, stored)
        for sent in ("2026-03-04T06:06:00", "2026-03-04T06:06"):
            assert (await _save(paris, sent)).status_code == 303
            assert await _posted_at(database) == stored
        history = (await paris.get("/admin/admin/comment/1/history")).text
        assert "<del>" not in history  # no change recorded
        # a value really changed is stored as typed, in the site's zone
        assert (await _save(paris, "2026-03-04T06:07")).status_code == 303
        assert await _posted_at(database) == dt.datetime(2026, 3, 4, 5, 7, tzinfo=dt.UTC)
    finally:
        await paris.client.__aexit__(None, None, None)


async def test_times_the_clocks_skip_or_repeat_are_refused(
    database: Database, paris: Browser
) -> None:
    try:
        before = await _posted_at(database)
        # 2026-03-29: Paris goes from 02:00 CET straight to 03:00 CEST
        skipped = await _save(paris, "2026-03-29T02:30")
        assert skipped.status_code == 422
        assert "2026-03-29 02:30 does not exist in Europe/Paris" in skipped.text
        # 2026-10-25: 02:30 comes twice (CEST, then CET)
        twice = await _save(paris, "2026-10-25T02:30")
        assert twice.status_code == 422
        assert "2026-10-25 02:30 happens twice in Europe/Paris" in twice.text
        assert await _posted_at(database) == before
        # the hour on either side is fine
        assert (await _save(paris, "2026-10-25T03:30")).status_code == 303
        assert await _posted_at(database) == dt.datetime(2026, 10, 25, 2, 30, tzinfo=dt.UTC)
        # a stored moment in the repeated hour (the second 02:30, CET = 01:30 UTC) saves
        # unchanged, not as the first one an hour earlier
        second = dt.datetime(2026, 10, 25, 1, 30, tzinfo=dt.UTC)
        await _store(database, second)
        form = (await paris.get("/admin/admin/comment/1/change")).text
        assert 'value="2026-10-25T02:30:00"' in form
        assert (await _save(paris, "2026-10-25T02:30")).status_code == 303
        assert await _posted_at(database) == second
    finally:
        await paris.client.__aexit__(None, None, None)
