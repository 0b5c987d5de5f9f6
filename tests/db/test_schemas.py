"""Model <-> Pydantic conversion and model -> JSON."""

from __future__ import annotations

from datetime import datetime

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from transom.db import (
    Database,
    from_schema,
    schema_for,
    to_dict,
    to_schema,
    update_from,
)

from .models import Author, Post

pytestmark = pytest.mark.anyio


class AuthorIn(BaseModel):
    email: str
    name: str


class AuthorOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    email: str
    name: str


class AuthorPatch(BaseModel):
    email: str | None = None
    name: str | None = None


async def test_round_trip_through_the_database(database: Database) -> None:
    async with database.session() as s:
        author = await s.save(from_schema(Author, AuthorIn(email="r@x", name="Ray")))
        out = to_schema(author, AuthorOut)
        assert out == AuthorOut(id=author.id, email="r@x", name="Ray")
        update_from(author, AuthorPatch(name="Raymond"))  # email not sent: untouched
        await s.commit()
        assert (author.email, author.name) == ("r@x", "Raymond")
        post = await s.save(Post(slug="s", title="T", author_id=author.id))
        data = to_dict(post)
        # Server defaults were fetched at flush: the JSON is complete without a lazy load.
        assert isinstance(data["created_at"], datetime)
        assert data["created_at"].tzinfo is not None
        assert data["score"] == 0
        assert post.__json__() == data


def test_from_schema_rejects_unknown_fields() -> None:
    with pytest.raises(ValueError, match="no attribute"):
        from_schema(Author, {"email": "x", "name": "y", "password": "z"})


def test_schema_for_derives_types_and_requiredness() -> None:
    author_in = schema_for(Author, exclude={"id"}, name="AuthorIn")
    assert author_in.__name__ == "AuthorIn"
    assert author_in(email="a@x", name="A").model_dump() == {"email": "a@x", "name": "A"}
    with pytest.raises(ValidationError):
        author_in(email="a@x")  # name is NOT NULL without a default: required
    with pytest.raises(ValidationError):
        author_in(email="a" * 300, name="A")  # VARCHAR(255)
    patch = schema_for(Author, exclude={"id"}, partial=True)
    assert patch().model_dump(exclude_unset=True) == {}
    post_out = schema_for(Post)
    assert set(post_out.model_fields) >= {"id", "slug", "created_at", "author_id"}


def test_to_dict_include_exclude_and_relationships() -> None:
    author = Author(id=1, email="e", name="n")
    post = Post(id=2, slug="s", title="t", author=author)
    assert to_dict(author, exclude={"email"}) == {"id": 1, "name": "n"}
    assert to_dict(post, include={"id", "slug"}) == {"id": 2, "slug": "s"}
    nested = to_dict(author, relationships=True)
    assert nested["posts"][0]["slug"] == "s"
