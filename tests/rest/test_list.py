"""Lists: limit/offset and cursor pagination, typed filters, ordering and search."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from transom.db import get_database
from transom.rest import ModelResource

from .conftest import AppFactory, add_user
from .models import Label, Status, Story
from .resources import Stories

pytestmark = pytest.mark.anyio
START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


async def seed(app: Any, n: int = 12) -> tuple[int, int, list[int]]:
    """``n`` stories (half by alice, half by bob), labels on some; returns the ids."""
    alice, _ = await add_user(app, "alice")
    bob, _ = await add_user(app, "bob")
    async with get_database(app).session() as db:
        red, blue = Label(name="red"), Label(name="blue")
        db.add_all([red, blue])
        for i in range(n):
            story = Story(
                slug=f"s{i:02d}",
                title=f"Story {i} {'python' if i % 3 == 0 else 'rust'}",
                body="about snakes" if i == 5 else "",
                status=Status.published if i % 2 else Status.draft,
                score=i,
                published_at=START + dt.timedelta(days=i) if i % 2 else None,
                created_at=START + dt.timedelta(hours=i),
                author_id=alice.id if i < n // 2 else bob.id,
                labels=[red] if i % 4 == 0 else [blue] if i % 4 == 1 else [],
            )
            db.add(story)
        await db.commit()
        return alice.id, bob.id, [red.id, blue.id]


def slugs(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["slug"] for item in response.json()["items"]]


async def test_limit_offset_pagination_is_capped_and_validated(make_app: AppFactory) -> None:
    app = make_app(Stories)
    await seed(app)
    async with app.async_test_client() as client:
        first = await client.get("/api/stories", params={"limit": 5, "ordering": "score"})
        body = first.json()
        assert slugs(first) == ["s00", "s01", "s02", "s03", "s04"]
        assert (body["total"], body["limit"], body["offset"]) == (12, 5, 0)
        assert body["links"]["next"] == (
            "http://testserver/api/stories?limit=5&ordering=score&offset=5"
        )
        page3 = await client.get(
            "/api/stories", params={"limit": 5, "offset": 10, "ordering": "score"}
        )
        assert slugs(page3) == ["s10", "s11"]
        assert page3.json()["links"]["next"] is None
        capped = await client.get("/api/stories", params={"limit": 1000})
        assert capped.json()["limit"] == 50  # the resource's max_limit
        for params in ({"limit": 0}, {"limit": "x"}, {"offset": -1}):
            bad = await client.get("/api/stories", params=params)
            assert bad.status_code == 422, params
            assert bad.json()["errors"][0]["loc"][0] == "query"


class Feed(ModelResource, model=Story, prefix="/api/feed"):
    pagination = "cursor"
    count = False
    ordering = ["-score"]
    default_limit = 4


async def test_cursor_pagination(make_app: AppFactory) -> None:
    app = make_app(Feed)
    await seed(app, 10)
    async with app.async_test_client() as client:
        seen: list[int] = []
        url: str | None = "/api/feed"
        while url:
            response = await client.get(url)
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["total"] is None  # count = False: no count query
            seen += [item["score"] for item in body["items"]]
            url = body["links"]["next"]
        assert seen == list(range(9, -1, -1))
        tampered = await client.get("/api/feed", params={"cursor": "!!!"})
        assert tampered.status_code == 422


async def test_filters_are_typed_and_validated(make_app: AppFactory) -> None:
    app = make_app(Stories)
    alice, bob, (red, blue) = await seed(app)
    async with app.async_test_client() as client:

        async def found(**params: Any) -> list[str]:
            return slugs(await client.get("/api/stories", params={**params, "ordering": "score"}))

        assert len(await found(author=alice)) == 6
        assert await found(score__gte=9) == ["s09", "s10", "s11"]
        assert await found(score__gte=2, score__lte=3) == ["s02", "s03"]
        assert await found(status="published", score__lte=3) == ["s01", "s03"]
        assert await found(published_at__isnull="true", score__lte=4) == ["s00", "s02", "s04"]
        assert await found(labels=red) == ["s00", "s04", "s08"]
        assert await found(labels__in=f"{red},{blue}", score__lte=4) == ["s00", "s01", "s04"]
        assert await found(slug__in="s01,s03,zz") == ["s01", "s03"]
        assert await found(title__icontains="PYTHON") == ["s00", "s03", "s06", "s09"]
        assert await found(title__icontains="%") == []  # a wildcard is a plain character
        assert len(await found(unknown="ignored")) == 12
        for params in (
            {"score__gte": "many"},
            {"status": "secret"},
            {"published_at__isnull": "perhaps"},
            {"author": "1 OR 1=1"},
            {"labels__in": "1,x"},
        ):
            bad = await client.get("/api/stories", params=params)
            assert bad.status_code == 422, params
            assert bad.json()["errors"][0]["loc"] == ["query", next(iter(params))]
        assert bob != alice


async def test_ordering_is_limited_to_declared_fields(make_app: AppFactory) -> None:
    app = make_app(Stories)
    await seed(app, 4)
    async with app.async_test_client() as client:
        default = await client.get("/api/stories")
        assert slugs(default) == ["s03", "s02", "s01", "s00"]  # -created_at
        by_title = await client.get("/api/stories", params={"ordering": "-score,title"})
        assert slugs(by_title) == ["s03", "s02", "s01", "s00"]
        ascending = await client.get("/api/stories", params={"ordering": "score"})
        assert slugs(ascending) == ["s00", "s01", "s02", "s03"]
        refused = await client.get("/api/stories", params={"ordering": "body"})
        assert refused.status_code == 422
        assert "cannot order by 'body'" in refused.json()["errors"][0]["msg"]


async def test_search_matches_every_word_in_any_field(make_app: AppFactory) -> None:
    app = make_app(Stories)
    await seed(app)
    async with app.async_test_client() as client:
        hits = await client.get("/api/stories", params={"search": "snakes", "ordering": "score"})
        assert slugs(hits) == ["s05"]
        both = await client.get("/api/stories", params={"search": "story PYTHON"})
        assert sorted(slugs(both)) == ["s00", "s03", "s06", "s09"]
        none = await client.get("/api/stories", params={"search": "story_"})
        assert slugs(none) == []  # '_' is not a wildcard
        blank = await client.get("/api/stories", params={"search": "  "})
        assert len(slugs(blank)) == 12
