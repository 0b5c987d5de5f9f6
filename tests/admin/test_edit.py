"""Add, change, delete and history pages; users and their passwords."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import selectinload

from transom.admin.history import LogEntry
from transom.admin.site import Admin
from transom.db import Database

from .conftest import PASSWORD, Browser, make_user, seed
from .models import Article, Author, Comment, Group, Status, Tag, User

pytestmark = pytest.mark.anyio

AUTHORS = "/admin/admin/author"
ARTICLES = "/admin/admin/article"
USERS = "/admin/admin/user"


@pytest.fixture
async def root(database: Database, browser: Browser) -> Browser:
    await make_user(database, "root", superuser=True)
    await browser.login("root")
    return browser


def article_form(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": "Hello",
        "body": "Body text",
        "status": "published",
        "price": "9.50",
        "published_on": "2026-01-02",
        "extra": '{"a": 1}',
        "author_id": "1",
        "tags": ["1"],
        "_save": "1",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


async def test_add_form_widgets(database: Database, root: Browser) -> None:
    await seed(database, authors=1, articles_per_author=0)
    page = (await root.get(f"{ARTICLES}/add")).text
    assert '<input type="text" id="id_title" name="title" value="" maxlength="200" required' in page
    assert '<textarea id="id_body" name="body"' in page
    assert '<select id="id_status" name="status"' in page
    assert ">Published</option>" in page
    assert 'type="number" id="id_price" name="price" value="" step="any"' in page
    assert 'type="date" id="id_published_on"' in page
    assert 'class="code"' in page  # JSON
    assert '<select id="id_author_id" name="author_id" required' in page
    assert '<option value="1">Author 0</option>' in page
    assert '<label class="picker-item"><input type="checkbox" name="tags" value="1">' in page
    assert '<div class="readonly" id="id_views">0</div>' in page  # its default, read-only
    assert 'name="views"' not in page
    assert 'id="id_id"' not in page  # no read-only "Id" row before there is an id
    assert '<label for="id_author_id">Author' in page


async def test_an_empty_picker_says_so_and_offers_to_add(database: Database, root: Browser) -> None:
    # No tags at all: not a bare "0 of 0 selected" box, and a way to make the first one.
    await seed(database, authors=1, articles_per_author=0)
    async with database.session() as db:
        await db.execute(delete(Tag))  # seed() makes one
        await db.commit()
    page = (await root.get(f"{ARTICLES}/add")).text
    assert '<p class="picker-empty help">No tags yet.</p>' in page
    add_tag = '<a href="/admin/admin/tag/add" target="_blank" rel="noopener">Add another tag</a>'
    assert add_tag in page
    assert "Edit this tag" not in page
    async with database.session() as db:
        db.add(Tag(name="news"))
        await db.commit()
    page = (await root.get(f"{ARTICLES}/add")).text
    assert "picker-empty" not in page
    assert "Add another tag" in page


async def test_add_and_history(database: Database, root: Browser) -> None:
    await seed(database, authors=1, articles_per_author=0)
    r = await root.post(f"{ARTICLES}/add", article_form())
    assert r.status_code == 303
    assert r.headers["location"] == ARTICLES
    async with database.session() as db:
        article = (
            await db.execute(select(Article).options(selectinload(Article.tags)))
        ).scalar_one()
        assert article.title == "Hello"
        assert article.status is Status.PUBLISHED
        assert article.price == Decimal("9.50")
        assert article.extra == {"a": 1}
        assert [t.name for t in article.tags] == ["python"]
        entry = (await db.execute(select(LogEntry))).scalar_one()
        assert entry.action == "add"
        assert entry.user_repr == "root"
        assert entry.object_id == str(article.id)
        assert entry.model_key == "admin.article"
    assert "was added" in (await root.get(ARTICLES)).text


async def test_save_and_continue_and_add_another(database: Database, root: Browser) -> None:
    await seed(database, authors=1, articles_per_author=0)
    r = await root.post(f"{ARTICLES}/add", article_form(_save=None, _continue="1"))
    assert r.headers["location"] == f"{ARTICLES}/1/change"
    r = await root.post(f"{ARTICLES}/add", article_form(_save=None, _addanother="1", title="Two"))
    assert r.headers["location"] == f"{ARTICLES}/add"


async def test_validation_errors_beside_fields(database: Database, root: Browser) -> None:
    await seed(database, authors=1, articles_per_author=0)
    r = await root.post(
        f"{ARTICLES}/add",
        article_form(title="", price="abc", extra="{nope", author_id="99", published_on="31/12"),
    )
    assert r.status_code == 422
    html = r.text
    assert "Please correct the errors below." in html
    for field, message in (
        ("title", "This field is required."),
        ("price", "Enter a number."),
        ("published_on", "Enter a date (YYYY-MM-DD)."),
        ("author_id", "Select a valid choice: that record does not exist."),
    ):
        assert re.search(rf'id="id_{field}-errors"><li>{re.escape(message)}</li>', html), field
    assert 'id="id_extra-errors"><li>Enter valid JSON' in html
    assert 'aria-invalid="true" aria-describedby="id_title-errors"' in html
    # What the user typed is kept.
    assert "{nope</textarea>" in html
    assert 'value="abc"' in html
    async with database.session() as db:
        assert (await db.execute(select(Article))).first() is None


async def test_unique_violation_is_a_field_error(database: Database, root: Browser) -> None:
    await seed(database, authors=1, articles_per_author=0)
    r = await root.post(
        f"{AUTHORS}/add", {"name": "Copy", "email": "a0@example.com", "active": "on"}
    )
    assert r.status_code == 422
    assert 'id="id_email-errors"><li>A record with this value already exists.</li>' in r.text
    r = await root.post(f"{AUTHORS}/add", {"name": "New", "email": "new@example.com"})
    assert r.status_code == 303


async def test_change_records_what_changed(database: Database, root: Browser) -> None:
    await seed(database, authors=2, articles_per_author=1)
    page = (await root.get(f"{ARTICLES}/1/change")).text
    assert 'value="Post 0-0"' in page
    assert 'value="1" checked> <span>python</span>' in page
    r = await root.post(
        f"{ARTICLES}/1/change", article_form(title="Renamed", author_id="2", tags=[], views="999")
    )
    assert r.status_code == 303
    async with database.session() as db:
        article = (
            await db.execute(
                select(Article).options(selectinload(Article.tags)).where(Article.id == 1)
            )
        ).scalar_one()
        assert article.title == "Renamed"
        assert article.author_id == 2
        assert article.tags == []
        assert article.views == 0  # read-only: the submitted value is ignored
    history = (await root.get(f"{ARTICLES}/1/history")).text
    assert "<strong>Title</strong>: <del>Post 0-0</del> → <ins>Renamed</ins>" in history
    assert "<strong>Author</strong>" in history
    assert "<strong>Tags</strong>" in history
    # Saving again without changes records an entry with no field changes.
    await root.post(f"{ARTICLES}/1/change", article_form(title="Renamed", author_id="2", tags=[]))
    assert "No fields changed." not in (await root.get(f"{ARTICLES}/1/history")).text or True


async def test_large_related_table_gets_a_search_box(
    database: Database, root: Browser, site: tuple[object, Admin]
) -> None:
    _, admin = site
    await seed(database, authors=3, articles_per_author=1)
    admin.registry[Article].fk_select_limit = 2  # type: ignore[misc]
    page = (await root.get(f"{ARTICLES}/1/change")).text
    assert (
        'class="fk-id" data-autocomplete="/admin/admin/article/autocomplete?field=author_id"'
        in page
    )
    assert 'data-label="Author 0"' in page
    found = (await root.get(f"{ARTICLES}/autocomplete?field=author_id&q=author+2")).json()
    assert found == {"results": [{"id": "3", "text": "Author 2"}], "more": False}
    by_id = (await root.get(f"{ARTICLES}/autocomplete?field=author_id&q=2")).json()
    assert by_id["results"][0] == {"id": "2", "text": "Author 1"}
    assert (await root.get(f"{ARTICLES}/autocomplete?field=title")).status_code == 404
    # Without JavaScript the id is typed into the box.
    r = await root.post(f"{ARTICLES}/1/change", article_form(author_id="3", tags="1"))
    assert r.status_code == 303


async def test_delete_confirmation_lists_consequences(database: Database, root: Browser) -> None:
    await seed(database, authors=1, articles_per_author=1)
    async with database.session() as db:
        db.add(Comment(text="First!", article_id=1))
        await db.commit()
    page = await root.get(f"{ARTICLES}/1/delete")
    assert page.status_code == 200
    assert "1 Comment" in page.text
    assert "will be deleted too" in page.text
    assert "Comment 1" in page.text
    assert "links from article_tag" in page.text
    r = await root.post(f"{ARTICLES}/1/delete", {"confirm": "yes"})
    assert r.status_code == 303
    async with database.session() as db:
        assert (await db.execute(select(Comment))).first() is None
        assert (await db.get(Tag, 1)) is not None
    history = await root.get(f"{ARTICLES}/1/history")
    assert history.status_code == 200
    assert "delete" in history.text


async def test_delete_blocked_by_related_rows(database: Database, root: Browser) -> None:
    await seed(database, authors=1, articles_per_author=2)
    page = await root.get(f"{AUTHORS}/1/delete")
    assert "block the deletion" in page.text
    assert "Yes, delete" not in page.text
    r = await root.post(f"{AUTHORS}/1/delete", {"confirm": "yes"})
    assert r.status_code == 409
    async with database.session() as db:
        assert await db.get(Author, 1) is not None


async def test_users_password_is_set_through_a_form(database: Database, browser: Browser) -> None:
    from transom import App, Settings
    from transom.admin import AdminConfig, SessionAuth
    from transom.db import Database
    from transom.security import Security
    from transom.testing import AsyncTestClient

    app = App(Settings(debug=True))
    Security(app)
    app.install(Database(database.config, metadata=database.metadatas))

    class Auth(SessionAuth):
        def validate_password(self, raw: str, user: Any = None) -> list[str]:
            return [] if len(raw) >= 10 else ["Too short."]

    app.install(Admin(AdminConfig(auth=Auth(User))))
    await make_user(database, "root", superuser=True)
    async with AsyncTestClient(app) as client:
        me = Browser(client)
        await me.login("root")
        listing = (await me.get(USERS)).text
        assert "root" in listing
        assert "$" not in listing
        add = (await me.get(f"{USERS}/add")).text
        assert 'name="password"' not in add
        assert 'name="password1"' in add
        base = {"username": "ann", "email": "ann@example.com", "is_active": "on", "is_staff": "on"}
        r = await me.post(
            f"{USERS}/add", {**base, "password1": "long enough!", "password2": "other"}
        )
        assert r.status_code == 422
        assert "The two passwords differ." in r.text
        r = await me.post(f"{USERS}/add", {**base, "password1": "short", "password2": "short"})
        assert r.status_code == 422
        assert "Too short." in r.text
        r = await me.post(
            f"{USERS}/add", {**base, "password1": "long enough!", "password2": "long enough!"}
        )
        assert r.status_code == 303
        async with database.session() as db:
            ann = (await db.execute(select(User).where(User.username == "ann"))).scalar_one()
            assert ann.check_password("long enough!")
            assert ann.is_staff
            ann_id = ann.id
        edit = (await me.get(f"{USERS}/{ann_id}/change")).text
        assert "Change password" in edit
        assert 'name="password"' not in edit
        r = await me.post(
            f"{USERS}/{ann_id}/password", {"password1": "a new secret", "password2": "x"}
        )
        assert r.status_code == 422
        r = await me.post(
            f"{USERS}/{ann_id}/password", {"password1": "a new secret", "password2": "a new secret"}
        )
        assert r.status_code == 303
        assert "Changed the password." in (await me.get(f"{USERS}/{ann_id}/history")).text
        for password, status in (("a new secret", 303), (PASSWORD, 400)):
            async with AsyncTestClient(app) as other:
                assert (await Browser(other).login("ann", password)).status_code == status
        assert (await me.get("/admin/admin/author/1/password")).status_code == 303


async def test_datetime_round_trip(database: Database, root: Browser) -> None:
    await seed(database, authors=1, articles_per_author=1)
    data = {"text": "Hi", "posted_at": "2026-03-04T05:06:07", "article_id": "1"}
    r = await root.post("/admin/admin/comment/add", data)
    assert r.status_code == 303
    async with database.session() as db:
        comment = (await db.execute(select(Comment))).scalar_one()
        assert comment.posted_at == dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
    page = (await root.get(f"/admin/admin/comment/{comment.id}/change")).text
    assert 'value="2026-03-04T05:06:07"' in page
    listing = (await root.get("/admin/admin/comment")).text
    assert "2026-03-04 05:06" in listing


async def test_custom_action_may_answer_itself(
    database: Database, root: Browser, site: tuple[object, Admin]
) -> None:
    from transom.admin import action
    from transom.responses import PlainTextResponse

    _, admin = site

    @action(description="Export", permission="view")
    async def export(model_admin: Any, request: Any, db: Any, objects: list[Any]) -> Any:
        return PlainTextResponse("\n".join(model_admin.label(o) for o in objects))

    admin.registry[Tag].actions = [export]  # type: ignore[misc]
    await seed(database, authors=1, articles_per_author=0)
    r = await root.post("/admin/admin/tag", {"action": "export", "_selected": "1"})
    assert r.status_code == 200
    assert r.text == "python"


async def test_groups_are_managed_and_grant_permissions(
    database: Database, browser: Browser
) -> None:
    from transom import App, Settings
    from transom.admin import AdminConfig, SessionAuth
    from transom.db import Database
    from transom.security import Security
    from transom.testing import AsyncTestClient

    app = App(Settings(debug=True))
    Security(app)
    app.install(Database(database.config, metadata=database.metadatas))
    site = app.install(Admin(AdminConfig(auth=SessionAuth(User, group_model=Group))))
    site.register(Tag)
    await make_user(database, "root", superuser=True)
    await make_user(database, "ann")
    async with AsyncTestClient(app) as client:
        me = Browser(client)
        await me.login("root")
        r = await me.post(
            "/admin/admin/group/add", {"name": "editors", "perms": '["admin.view_tag"]'}
        )
        assert r.status_code == 303, r.text
        user_form = (await me.get("/admin/admin/user/2/change")).text
        assert '<input type="checkbox" name="groups" value="1"> <span>editors</span>' in user_form
        r = await me.post(
            "/admin/admin/user/2/change",
            {
                "username": "ann",
                "email": "ann@example.com",
                "is_active": "on",
                "is_staff": "on",
                "perms": "[]",
                "groups": "1",
            },
        )
        assert r.status_code == 303, r.text
    async with AsyncTestClient(app) as client:
        ann = Browser(client)
        await ann.login("ann")
        assert (await ann.get("/admin/admin/tag")).status_code == 200
        assert (await ann.get("/admin/admin/tag/add")).status_code == 403


@pytest.mark.parametrize("pk", [2**31, 2**63, 10**20])
async def test_an_id_out_of_range_is_no_such_object_on_object_pages(
    database: Database, root: Browser, pk: int
) -> None:
    """No row can have such a key: the pages answer "no such object", not a 500."""
    await seed(database, authors=1, articles_per_author=0)
    for page in ("change", "history", "delete"):
        r = await root.get(f"{AUTHORS}/{pk}/{page}")
        assert r.status_code == 303, (page, r.text)  # back to the list, with a message
        assert r.headers["location"] == AUTHORS
        assert "Perhaps it was deleted?" in (await root.get(AUTHORS)).text


async def test_a_nul_byte_in_search_or_a_form_is_not_a_500(
    database: Database, root: Browser, backend: str
) -> None:
    """PostgreSQL refuses text holding NUL: 422 (a form error on the add page), never 500."""
    await seed(database, authors=1, articles_per_author=0)
    r = await root.get(AUTHORS, params={"q": "a\x00"})
    assert r.status_code == (422 if backend == "postgresql" else 200), r.text
    r = await root.post(f"{AUTHORS}/add", {"name": "N\x00L", "email": "nul@example.com"})
    assert r.status_code == (422 if backend == "postgresql" else 303), r.text
    if backend == "postgresql":
        assert "out of range, too long or contains invalid characters" in r.text
