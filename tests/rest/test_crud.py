"""Create, retrieve, replace, update, delete and custom actions; errors in one shape."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from transom.db import get_database
from transom.rest import Context, ModelResource, Problem, RestConfig

from .conftest import AppFactory, add_user
from .models import Label, Story
from .resources import Stories

pytestmark = pytest.mark.anyio
PROBLEM = "application/problem+json"


async def _stories(app: Any) -> int:
    async with get_database(app).session() as db:
        return int((await db.execute(select(func.count()).select_from(Story))).scalar_one())


async def test_create_retrieve_replace_update_delete(make_app: AppFactory) -> None:
    app = make_app(Stories)
    async with app.async_test_client() as client:
        alice, auth = await add_user(app)
        created = await client.post(
            "/api/stories",
            json={"slug": "hello", "title": "Hello", "score": 3, "status": "published"},
            headers=auth,
        )
        assert created.status_code == 201, created.text
        assert created.headers["location"] == "/api/stories/hello"
        body = created.json()
        assert body["author"] == alice.id  # the owner, filled in by OwnerCanEdit
        assert body["body"] == ""  # the column default
        assert body["status"] == "published"
        assert body["labels"] == []
        assert created.headers["etag"].startswith('"')

        got = await client.get("/api/stories/hello")
        assert got.status_code == 200
        assert got.json() == body
        assert got.headers["etag"] == created.headers["etag"]
        cached = await client.get(
            "/api/stories/hello", headers={"if-none-match": got.headers["etag"]}
        )
        assert cached.status_code == 304

        patched = await client.patch("/api/stories/hello", json={"title": "Hi"}, headers=auth)
        assert patched.status_code == 200, patched.text
        assert patched.json()["title"] == "Hi"
        assert patched.json()["score"] == 3  # untouched
        assert patched.headers["etag"] != got.headers["etag"]

        replaced = await client.put(
            "/api/stories/hello", json={"slug": "hello", "title": "New"}, headers=auth
        )
        assert replaced.status_code == 200, replaced.text
        # A replacement: what was left out is back to its default.
        assert (replaced.json()["score"], replaced.json()["status"]) == (0, "draft")
        assert replaced.json()["created_at"] == body["created_at"]  # read-only, kept

        deleted = await client.delete("/api/stories/hello", headers=auth)
        assert deleted.status_code == 204
        assert deleted.content == b""
        missing = await client.get("/api/stories/hello")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == PROBLEM
        assert missing.json() == {
            "type": "about:blank",
            "title": "Not Found",
            "status": 404,
            "detail": "Story not found",
        }


async def test_invalid_bodies_answer_422_and_store_nothing(make_app: AppFactory) -> None:
    app = make_app(Stories)
    async with app.async_test_client() as client:
        _, auth = await add_user(app)
        cases: list[tuple[Any, str]] = [
            ({"slug": "a"}, "title"),  # required
            ({"slug": "a", "title": "x" * 201}, "title"),  # String(200)
            ({"slug": "a", "title": "A", "status": "secret"}, "status"),  # enum
            ({"slug": "a", "title": "A", "score": "many"}, "score"),
            ({"slug": "a", "title": "A", "nope": 1}, "nope"),  # unknown: refused
            ({"slug": "a", "title": "A", "id": 7}, "id"),  # read-only
            ({"slug": "a", "title": "A", "author": 7}, "author"),  # read-only
            ({"slug": "a", "title": "A", "labels": [999]}, "labels"),  # no such label
            ([1, 2], "body"),
        ]
        for payload, field in cases:
            response = await client.post("/api/stories", json=payload, headers=auth)
            assert response.status_code == 422, (payload, response.text)
            assert response.headers["content-type"] == PROBLEM
            problem = response.json()
            assert problem["status"] == 422
            locs = [e["loc"] for e in problem["errors"]]
            assert any(loc[-1] == field or loc == ["body"] for loc in locs), (payload, locs)
        malformed = await client.post(
            "/api/stories",
            content=b"{not json",
            headers={**auth, "content-type": "application/json"},
        )
        assert malformed.status_code == 400
        assert malformed.json()["status"] == 400
        assert await _stories(app) == 0

        await client.post("/api/stories", json={"slug": "a", "title": "A"}, headers=auth)
        null = await client.patch("/api/stories/a", json={"title": None}, headers=auth)
        assert null.status_code == 422  # PATCH keeps the column's nullability
        ok = await client.patch("/api/stories/a", json={"published_at": None}, headers=auth)
        assert ok.status_code == 200


async def test_unknown_fields_can_be_ignored_and_errors_shaped_by_field(
    make_app: AppFactory,
) -> None:
    app = make_app(Stories, rest=RestConfig(unknown_fields="ignore", error_format="errors"))
    async with app.async_test_client() as client:
        _, auth = await add_user(app)
        ok = await client.post(
            "/api/stories", json={"slug": "a", "title": "A", "extra": 1}, headers=auth
        )
        assert ok.status_code == 201
        bad = await client.post("/api/stories", json={"slug": "b"}, headers=auth)
        assert bad.status_code == 422
        assert bad.headers["content-type"] == "application/json"
        assert bad.json() == {"errors": {"title": ["Field required"]}}
        missing = await client.get("/api/stories/zzz")
        assert missing.json() == {"errors": {"body": ["Story not found"]}}


async def test_duplicate_answers_409_and_changes_nothing(make_app: AppFactory) -> None:
    app = make_app(Stories)
    async with app.async_test_client() as client:
        _, auth = await add_user(app)
        first = await client.post("/api/stories", json={"slug": "a", "title": "A"}, headers=auth)
        assert first.status_code == 201
        again = await client.post("/api/stories", json={"slug": "a", "title": "B"}, headers=auth)
        assert again.status_code == 409, again.text
        assert again.json()["errors"][0]["loc"] == ["body", "slug"]
        await client.post("/api/stories", json={"slug": "b", "title": "B"}, headers=auth)
        clash = await client.patch("/api/stories/b", json={"slug": "a"}, headers=auth)
        assert clash.status_code == 409
        assert (await client.get("/api/stories/b")).json()["slug"] == "b"
        assert await _stories(app) == 2


async def test_if_match_refuses_stale_writes(make_app: AppFactory) -> None:
    app = make_app(Stories)
    async with app.async_test_client() as client:
        _, auth = await add_user(app)
        await client.post("/api/stories", json={"slug": "a", "title": "A"}, headers=auth)
        etag = (await client.get("/api/stories/a")).headers["etag"]
        fresh = await client.patch(
            "/api/stories/a", json={"title": "B"}, headers={**auth, "if-match": etag}
        )
        assert fresh.status_code == 200
        stale = await client.patch(
            "/api/stories/a", json={"title": "C"}, headers={**auth, "if-match": etag}
        )
        assert stale.status_code == 412
        assert stale.json()["status"] == 412
        stale_delete = await client.delete("/api/stories/a", headers={**auth, "if-match": etag})
        assert stale_delete.status_code == 412
        assert (await client.get("/api/stories/a")).json()["title"] == "B"
        current = fresh.headers["etag"]
        gone = await client.delete("/api/stories/a", headers={**auth, "if-match": current})
        assert gone.status_code == 204


async def test_labels_are_written_and_read_as_ids(make_app: AppFactory) -> None:
    app = make_app(Stories)
    async with get_database(app).session() as db:
        db.add_all([Label(name="x"), Label(name="y")])
        await db.commit()
        ids = list((await db.execute(select(Label.id).order_by(Label.name))).scalars())
    async with app.async_test_client() as client:
        _, auth = await add_user(app)
        created = await client.post(
            "/api/stories", json={"slug": "a", "title": "A", "labels": ids}, headers=auth
        )
        assert sorted(created.json()["labels"]) == sorted(ids)
        patched = await client.patch("/api/stories/a", json={"labels": ids[:1]}, headers=auth)
        assert patched.json()["labels"] == ids[:1]


async def test_custom_actions(make_app: AppFactory) -> None:
    app = make_app(Stories)
    async with app.async_test_client() as client:
        _, auth = await add_user(app)
        _, other = await add_user(app, "bob")
        await client.post("/api/stories", json={"slug": "a", "title": "A"}, headers=auth)
        refused = await client.post("/api/stories/a/publish", headers=other)
        assert refused.status_code == 403  # OwnerCanEdit: not bob's story
        published = await client.post("/api/stories/a/publish", headers=auth)
        assert published.status_code == 200, published.text
        assert published.json()["status"] == "published"
        assert published.json()["published_at"] == "2024-05-01T00:00:00Z"
        assert (await client.get("/api/stories/a")).json()["status"] == "published"
        assert (await client.post("/api/stories/zz/publish", headers=auth)).status_code == 404
        assert (await client.get("/api/stories/drafts")).json() == {"count": 0}


class Guarded(Stories, prefix="/api/guarded"):
    """Hooks run inside the write's transaction: a refusal there stores nothing."""

    async def before_create(self, ctx: Context, obj: Any) -> None:
        if obj.title == "forbidden":
            raise Problem(422, "That title is not allowed")

    async def after_create(self, ctx: Context, obj: Any) -> None:
        assert obj.id is not None  # flushed
        if obj.title == "late":
            raise Problem(409, "Too late")


async def test_hooks_run_in_the_transaction(make_app: AppFactory) -> None:
    app = make_app(Guarded)
    async with app.async_test_client() as client:
        _, auth = await add_user(app)
        refused = await client.post(
            "/api/guarded", json={"slug": "a", "title": "forbidden"}, headers=auth
        )
        assert refused.status_code == 422
        assert refused.json()["detail"] == "That title is not allowed"
        late = await client.post("/api/guarded", json={"slug": "b", "title": "late"}, headers=auth)
        assert late.status_code == 409
        assert await _stories(app) == 0  # the flushed insert was rolled back
        ok = await client.post("/api/guarded", json={"slug": "c", "title": "ok"}, headers=auth)
        assert ok.status_code == 201
        assert ok.headers["location"] == "/api/guarded/c"


class ReadOnlyStories(ModelResource, model=Story, prefix="/api/read"):
    operations = ["list", "retrieve"]
    exclude = ["body"]


async def test_operations_can_be_limited(make_app: AppFactory) -> None:
    app = make_app(ReadOnlyStories)
    async with app.async_test_client() as client:
        _, auth = await add_user(app)
        response = await client.post("/api/read", json={"slug": "a", "title": "A"}, headers=auth)
        assert response.status_code == 405
        assert (await client.get("/api/read")).json()["items"] == []
