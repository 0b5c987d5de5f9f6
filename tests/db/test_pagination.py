"""Offset and keyset pagination with totals and links, on every engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel, field_validator
from sqlalchemy import select

from transom import App, Settings
from transom.db import CursorPage, Database, DbSessionDep, Page, to_dict
from transom.db.pagination import decode_cursor, encode_cursor

from .models import Author, Post

pytestmark = pytest.mark.anyio

START = datetime(2024, 1, 1, tzinfo=UTC)


async def seed(database: Database, n: int = 25) -> None:
    async with database.session() as s:
        author = Author(email="p@x", name="P")
        s.add(author)
        await s.flush()
        for i in range(n):
            # Scores repeat, so the primary-key tie-breaker matters for the cursor.
            s.add(
                Post(
                    slug=f"p{i:02d}",
                    title=f"Post {i}",
                    score=i % 4,
                    published_at=START + timedelta(hours=i),
                    author_id=author.id,
                )
            )
        await s.commit()


def make_app(database: Database) -> App:
    app = App(Settings(secret_key="test-secret"))
    app.install(Database(database.config, metadata=database.metadatas))

    @app.get("/posts")
    async def posts(db: DbSessionDep) -> dict[str, Any]:
        page = await db.paginate(select(Post).order_by(Post.id))
        return page.map(lambda p: to_dict(p, include={"id", "slug"})).__json__()

    @app.get("/feed")
    async def feed(db: DbSessionDep) -> dict[str, Any]:
        stmt = select(Post).order_by(Post.score.desc(), Post.published_at.desc())
        page = await db.paginate_cursor(stmt, count=True)
        return page.map(lambda p: to_dict(p, include={"id", "score"})).__json__()

    @app.get("/window")
    async def window(db: DbSessionDep) -> dict[str, Any]:
        page = await db.paginate_offset(select(Post).order_by(Post.id), max_limit=10)
        return page.map(lambda p: to_dict(p, include={"id", "slug"})).__json__()

    return app


async def test_limit_offset_pagination(database: Database) -> None:
    await seed(database)
    app = make_app(database)
    async with app.async_test_client() as client:
        first = (await client.get("/window", params={"limit": 5})).json()
        assert [p["slug"] for p in first["items"]] == ["p00", "p01", "p02", "p03", "p04"]
        assert (first["total"], first["limit"], first["offset"]) == (25, 5, 0)
        assert first["links"]["prev"] is None
        assert first["links"]["next"] == "http://testserver/window?limit=5&offset=5"

        last = (await client.get("/window", params={"limit": 5, "offset": 22})).json()
        assert [p["slug"] for p in last["items"]] == ["p22", "p23", "p24"]
        assert last["links"]["next"] is None
        assert last["links"]["prev"] == "http://testserver/window?limit=5&offset=17"

        capped = (await client.get("/window", params={"limit": 1000, "offset": -3})).json()
        assert (capped["limit"], capped["offset"], len(capped["items"])) == (10, 0, 10)
        bad = await client.get("/window", params={"offset": "x"})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["query", "offset"]


async def test_offset_pagination_reads_the_query_and_links(database: Database) -> None:
    await seed(database)
    app = make_app(database)
    async with app.async_test_client() as client:
        first = (await client.get("/posts")).json()
        assert first["total"] == 25
        assert first["page"] == 1
        assert first["per_page"] == 20
        assert first["pages"] == 2
        assert [p["slug"] for p in first["items"]][:2] == ["p00", "p01"]
        assert first["links"]["prev"] is None
        assert first["links"]["next"] == "http://testserver/posts?page=2&per_page=20"

        r = await client.get("/posts", params={"page": 3, "per_page": 10})
        third = r.json()
        assert [p["slug"] for p in third["items"]] == ["p20", "p21", "p22", "p23", "p24"]
        assert third["links"]["next"] is None
        assert third["links"]["last"] == "http://testserver/posts?page=3&per_page=10"
        assert third["links"]["prev"] == "http://testserver/posts?page=2&per_page=10"

        capped = (await client.get("/posts", params={"per_page": 1000})).json()
        assert capped["per_page"] == 100
        bad = await client.get("/posts", params={"page": "x"})
        assert bad.status_code == 422


async def test_keyset_pagination_walks_every_row_once(database: Database) -> None:
    await seed(database)
    app = make_app(database)
    seen: list[int] = []
    async with app.async_test_client() as client:
        url = "/feed?limit=7"
        pages = 0
        while url:
            body = (await client.get(url)).json()
            assert body["total"] == 25
            seen += [p["id"] for p in body["items"]]
            pages += 1
            url = body["links"]["next"]
            assert (body["next_cursor"] is None) == (url is None)
        assert pages == 4
        bad = await client.get("/feed", params={"cursor": "not-a-cursor!"})
        assert bad.status_code == 422
    assert len(seen) == 25
    assert len(set(seen)) == 25
    async with database.session() as s:
        expected = (
            await s.scalars(
                select(Post.id).order_by(Post.score.desc(), Post.published_at.desc(), Post.id)
            )
        ).all()
    assert seen == list(expected)


async def test_pagination_without_a_request(database: Database) -> None:
    await seed(database, 5)
    async with database.session() as s:
        page = await s.paginate(select(Post).order_by(Post.id), page=2, per_page=2)
        assert isinstance(page, Page)
        assert [p.slug for p in page.items] == ["p02", "p03"]
        assert page.has_next
        assert page.links["next"] is None  # no request: no URLs
        cursor_page = await s.paginate_cursor(select(Post).order_by(Post.id), limit=3)
        assert isinstance(cursor_page, CursorPage)
        assert cursor_page.next_cursor is not None
        rest = await s.paginate_cursor(
            select(Post).order_by(Post.id), limit=3, cursor=cursor_page.next_cursor
        )
        assert [p.slug for p in rest.items] == ["p03", "p04"]
        assert rest.next_cursor is None


def test_cursor_round_trips_typed_values() -> None:
    from decimal import Decimal
    from uuid import UUID

    values = [START, Decimal("1.50"), UUID(int=7), "x", 3, None]
    assert decode_cursor(encode_cursor(values)) == values


class Row:
    def __init__(self, name: str) -> None:
        self.name = name
        self.password_hash = "secret"


class ItemOut(BaseModel):
    name: str

    @field_validator("name")
    @classmethod
    def shout(cls, value: str) -> str:
        return value.upper()


def test_declared_page_type_converts_items_through_their_model() -> None:
    # -> Page[ItemOut] must run ItemOut on every item (its validators, its field list), as
    # -> list[ItemOut] does; a Page is a dataclass, which Pydantic would pass through as is.
    app = App()

    @app.get("/page")
    async def page() -> Page[ItemOut]:
        return Page([Row("a"), Row("b")], 2, 1, 20, 1, {"next": None})  # type: ignore[list-item]

    @app.get("/cursor")
    async def cursor() -> CursorPage[ItemOut]:
        return CursorPage([Row("c")], 1, None, None, {})  # type: ignore[list-item]

    with app.test_client() as client:
        body = client.get("/page").json()
        assert body["items"] == [{"name": "A"}, {"name": "B"}]
        assert (body["total"], body["page"], body["links"]) == (2, 1, {"next": None})
        assert client.get("/cursor").json()["items"] == [{"name": "C"}]


def test_page_parameters_are_in_the_openapi_document() -> None:
    app = App()

    @app.get("/page")
    async def page() -> Page[ItemOut]:
        return Page([], 0, 1, 20, 0, {})

    @app.get("/cursor")
    async def cursor() -> CursorPage[ItemOut]:
        return CursorPage([], 20, None, None, {})

    with app.test_client() as client:
        paths = client.get("/openapi.json").json()["paths"]
    page_params = {p["name"]: p for p in paths["/page"]["get"]["parameters"]}
    assert set(page_params) == {"page", "per_page"}
    assert page_params["per_page"]["schema"] == {"type": "integer", "minimum": 1, "default": 20}
    assert {p["name"] for p in paths["/cursor"]["get"]["parameters"]} == {"cursor", "limit"}
