"""Relations as ids by default, nested on request, loaded eagerly: no query per item."""

from __future__ import annotations

import pytest

from transom.rest import ModelResource

from .conftest import AppFactory, QueryCounter, add_user
from .models import Story
from .resources import Labels
from .test_list import seed

pytestmark = pytest.mark.anyio


class NestedStories(ModelResource, model=Story, prefix="/api/nested"):
    fields = ["id", "slug", "title", "author", "labels"]
    nested = {"author": ["id", "username"], "labels": Labels}
    ordering = ["slug"]


async def test_nested_relations_are_loaded_without_n_plus_1(make_app: AppFactory) -> None:
    app = make_app(NestedStories)
    await seed(app, 12)
    async with app.async_test_client() as client:
        await client.get("/api/nested")  # warm up (first connection, dialect checks)
        with QueryCounter(app) as small:
            few = await client.get("/api/nested", params={"limit": 2})
        with QueryCounter(app) as large:
            many = await client.get("/api/nested", params={"limit": 12})
        assert few.status_code == many.status_code == 200
        items = many.json()["items"]
        assert len(items) == 12
        assert items[0]["author"] == {"id": items[0]["author"]["id"], "username": "alice"}
        assert items[0]["labels"] == [{"id": items[0]["labels"][0]["id"], "name": "red"}]
        assert "password" not in many.text
        # The page (authors joined, the count beside it) and the labels of all its stories
        # (one IN query).
        assert len(large.selects) == len(small.selects) == 2, "\n\n".join(large.selects)
        _, auth = await add_user(app, "carol")
        created = await client.post(
            "/api/nested",
            json={
                "slug": "new",
                "title": "New",
                "author": items[0]["author"]["id"],
                "labels": [items[0]["labels"][0]["id"]],
            },
            headers=auth,
        )
        assert created.status_code == 201, created.text  # nested relations written by id
        assert created.json()["author"]["username"] == "alice"
        assert created.json()["labels"][0]["name"] == "red"
        with QueryCounter(app) as one:
            story = await client.get(f"/api/nested/{items[1]['id']}")
        assert story.json()["author"]["username"] == "alice"
        assert len(one.selects) == 2


async def test_relations_are_ids_by_default(make_app: AppFactory) -> None:
    from .resources import Stories

    app = make_app(Stories)
    await seed(app, 12)
    async with app.async_test_client() as client:
        await client.get("/api/stories")
        with QueryCounter(app) as counter:
            body = (await client.get("/api/stories", params={"limit": 12})).json()
        assert all(isinstance(item["author"], int) for item in body["items"])
        assert all(isinstance(label, int) for item in body["items"] for label in item["labels"])
        # The page with its count and the labels (the collection field): authors cost nothing.
        assert len(counter.selects) == 2, counter.selects
