"""The admin saves nothing the model's own rules refuse, and history stays with its object."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select

from transom import App
from transom.admin import ModelAdmin
from transom.admin.site import Admin
from transom.db import Database
from transom.forms import Messages

from .conftest import Browser, make_user, seed
from .models import Author, Badge, Tag

pytestmark = pytest.mark.anyio

AUTHORS = "/admin/admin/author"
BADGES = "/admin/admin/badge"


class AuthorIn(BaseModel):
    """What an API would take: a name of 2 to 100 characters, an e-mail of the company."""

    name: Annotated[str, Field(min_length=2, max_length=100), Messages(too_short="Too short.")]
    email: str = Field(pattern=r"^[^@\s]+@example\.com$", description="name@example.com")

    @field_validator("name")
    @classmethod
    def no_shouting(cls, value: str) -> str:
        if value.isupper():
            raise ValueError("Please don't shout.")
        return value.strip()


class StrictAuthorAdmin(ModelAdmin):
    schema = AuthorIn


@pytest.fixture
async def root(database: Database, browser: Browser, site: tuple[App, Admin]) -> Browser:
    _, admin = site
    admin.unregister(Author)
    admin.register(Author, StrictAuthorAdmin)
    admin.register(Badge)
    await make_user(database, "root", superuser=True)
    await browser.login("root")
    return browser


async def test_the_schema_refuses_what_the_api_would(database: Database, root: Browser) -> None:
    bad = await root.post(
        f"{AUTHORS}/add",
        {"name": "X", "email": "x@elsewhere.org", "active": "on", "_save": "1"},
        token_from=f"{AUTHORS}/add",
    )
    assert bad.status_code == 422
    assert "Too short." in bad.text  # the field's own words
    assert "Enter a value in the right format (name@example.com)." in bad.text
    shouting = await root.post(
        f"{AUTHORS}/add", {"name": "ANNA", "email": "anna@example.com", "_save": "1"}
    )
    assert shouting.status_code == 422
    assert "Please don&#39;t shout." in shouting.text
    good = await root.post(
        f"{AUTHORS}/add", {"name": " Anna ", "email": "anna@example.com", "_save": "1"}
    )
    assert good.status_code == 303, good.text
    async with database.session() as db:
        (author,) = (await db.scalars(select(Author))).all()
        assert author.name == "Anna"  # what the schema made of it is what is stored


async def test_the_schemas_words_show_before_the_user_types(root: Browser) -> None:
    # The rule is on the page before a refused save, and the control points at it.
    form = (await root.get(f"{AUTHORS}/add")).text
    assert '<small class="help" id="id_email-helptext">name@example.com</small>' in form
    assert 'aria-describedby="id_email-helptext"' in form
    assert "id_name-helptext" not in form  # no description, no help
    refused = await root.post(
        f"{AUTHORS}/add",
        {"name": "Anna", "email": "anna@elsewhere.org", "_save": "1"},
        token_from=f"{AUTHORS}/add",
    )
    assert refused.status_code == 422
    assert 'aria-invalid="true" aria-describedby="id_email-helptext id_email-errors"' in (
        refused.text
    )


async def test_a_change_is_checked_with_the_objects_other_values(
    database: Database, root: Browser
) -> None:
    await seed(database, authors=1, articles_per_author=0)  # a0@example.com: valid
    url = f"{AUTHORS}/1/change"
    refused = await root.post(url, {"name": "A", "email": "a0@example.com"}, token_from=url)
    assert refused.status_code == 422
    assert "Too short." in refused.text
    assert (await root.post(url, {"name": "Ann", "email": "a0@example.com"})).status_code == 303


async def test_model_validators_become_form_errors(database: Database, root: Browser) -> None:
    page = await root.post(f"{BADGES}/add", {"code": "LOUD", "_save": "1"})
    assert page.status_code == 422  # not a 500 from the assignment
    assert "Use lowercase letters only." in page.text
    assert (await root.post(f"{BADGES}/add", {"code": "quiet", "_save": "1"})).status_code == 303


async def test_history_never_shows_a_deleted_objects_entries(
    database: Database, root: Browser
) -> None:
    await seed(database, authors=1, articles_per_author=0)
    url = f"{AUTHORS}/1"
    await root.post(f"{url}/change", {"name": "Old name", "email": "a0@example.com"})
    assert (await root.post(f"{url}/delete", {"confirm": "yes"})).status_code == 303
    gone = (await root.get(f"{url}/history")).text
    assert "action-delete" in gone
    assert "Old name" in gone  # the deleted object's own history stays readable
    async with database.session() as db:  # a row given the same id (as SQLite may do)
        db.add(Author(id=1, name="Newcomer", email="new@example.com"))
        await db.commit()
    fresh = await root.get(f"{url}/history")
    assert fresh.status_code == 200
    assert "Old name" not in fresh.text
    assert "action-delete" not in fresh.text
    await root.post(f"{url}/change", {"name": "Newcomer two", "email": "new@example.com"})
    changed = (await root.get(f"{url}/history")).text
    assert "<del>Newcomer</del> → <ins>Newcomer two</ins>" in changed
    assert "Old name" not in changed


async def test_history_names_related_objects(database: Database, root: Browser) -> None:
    await seed(database, authors=2, articles_per_author=1)  # article 1 by "Author 0", tag python
    async with database.session() as db:
        db.add(Tag(name="rust"))
        await db.commit()
    url = "/admin/admin/article/1"
    changed = await root.post(
        f"{url}/change",
        {"title": "Post 0-0", "status": "draft", "author_id": "2", "tags": ["1", "2"]},
        token_from=f"{url}/change",
    )
    assert changed.status_code == 303, changed.text
    history = (await root.get(f"{url}/history")).text
    assert "<del>Author 0</del> → <ins>Author 1</ins>" in history
    assert "<del>python</del> → <ins>python, rust</ins>" in history
