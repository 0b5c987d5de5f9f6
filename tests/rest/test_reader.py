"""Lists and reads in Core rows answer byte for byte what the ORM path answers."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Select, select

from transom.rest import AllowAny, Context, ModelResource, RestConfig

from .conftest import AppFactory, QueryCounter
from .models import Story
from .resources import Labels
from .test_list import seed

pytestmark = pytest.mark.anyio

FIELDS = ["id", "slug", "title", "status", "score", "published_at", "created_at", "author"]


class CoreStories(ModelResource, model=Story, prefix="/api/core"):
    fields = [*FIELDS, "labels"]
    nested = {"author": ["id", "username"], "labels": Labels}
    filters = ["score__gte", "labels"]
    ordering = ["slug", "score", "published_at"]
    search = ["title"]
    permissions = [AllowAny]
    schema_prefix = "Core"


class OrmStories(CoreStories, prefix="/api/orm"):
    schema_prefix = "Orm"

    def query(self, ctx: Context) -> Select[Any]:
        # A query() hook keeps the ORM path: the reference answer.
        return select(Story)


class IdStories(ModelResource, model=Story, prefix="/api/ids"):
    fields = [*FIELDS, "labels"]  # relations as ids
    permissions = [AllowAny]


class IdStoriesOrm(IdStories, prefix="/api/ids-orm"):
    def query(self, ctx: Context) -> Select[Any]:
        return select(Story)


def test_which_resources_read_rows() -> None:
    config = RestConfig()
    assert CoreStories()._compiled_for(config).reader is not None
    assert IdStories()._compiled_for(config).reader is not None
    assert OrmStories()._compiled_for(config).reader is None


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"limit": 3, "offset": 2},
        {"ordering": "-published_at"},
        {"ordering": "-score", "score__gte": 4, "limit": 4},
        {"labels": "1", "search": "python"},
        {"offset": 100},
    ],
)
async def test_lists_answer_as_the_orm_path(make_app: AppFactory, params: dict[str, Any]) -> None:
    app = make_app(CoreStories, OrmStories, IdStories, IdStoriesOrm)
    await seed(app, 9)
    async with app.async_test_client() as client:
        for core, orm in (("/api/core", "/api/orm"), ("/api/ids", "/api/ids-orm")):
            got = await client.get(core, params=params)
            want = await client.get(orm, params=params)
            assert got.status_code == want.status_code == 200, got.text
            assert got.json()["items"] == want.json()["items"]
            assert got.json()["total"] == want.json()["total"]
            links = {k: v and v.replace(orm, core) for k, v in want.json()["links"].items()}
            assert got.json()["links"] == links
            items = got.json()["items"]
            if core == "/api/core" and items:
                # Same JSON text: the ETags of retrieve and of writes' If-Match agree.
                one = await client.get(f"{core}/{items[0]['id']}")
                other = await client.get(f"{orm}/{items[0]['id']}")
                assert one.content == other.content
                assert one.headers["etag"] == other.headers["etag"]


async def test_bad_query_answers_422_and_unknown_ids_404(make_app: AppFactory) -> None:
    app = make_app(CoreStories)
    await seed(app, 3)
    async with app.async_test_client() as client:
        for params in ({"ordering": "body"}, {"score__gte": "x"}, {"limit": 0}):
            bad = await client.get("/api/core", params=params)
            assert bad.status_code == 422, (params, bad.text)
        assert (await client.get("/api/core/99999")).status_code == 404
        assert (await client.get(f"/api/core/{2**70}")).status_code == 404  # no column holds it
        with QueryCounter(app) as counter:
            empty = await client.get("/api/core", params={"offset": 50})
        assert empty.json()["items"] == []
        # The page and the count: no labels query for an empty page.
        assert len(counter.selects) == 2, counter.selects
