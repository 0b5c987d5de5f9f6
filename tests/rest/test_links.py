"""Relations as links: the path of the related resource's retrieve route, no extra query."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate

from transom.auth import User
from transom.db import get_database
from transom.exceptions import ImproperlyConfigured
from transom.rest import AllowAny, ModelResource

from .conftest import AppFactory, QueryCounter, add_user
from .models import Label, Reaction, Story
from .resources import Labels, Stories
from .test_list import seed

pytestmark = pytest.mark.anyio


class Users(ModelResource, model=User, prefix="/api/users"):
    fields = ["id", "username"]
    operations = ["list", "retrieve"]
    permissions = [AllowAny]


class LabelsByName(ModelResource, model=Label, prefix="/api/label-names"):
    lookup = "name"
    operations = ["list", "retrieve"]
    permissions = [AllowAny]


class LinkedStories(ModelResource, model=Story, prefix="/api/linked"):
    fields = ["id", "slug", "title", "author", "labels"]
    links = ["author", "labels"]
    ordering = ["slug"]


class Reactions(ModelResource, model=Reaction, prefix="/api/reactions"):
    links = ["story", "label"]
    ordering = ["id"]


@pytest.mark.parametrize("label_resource", [Labels, LabelsByName])
async def test_links_point_at_the_related_retrieve_routes(
    make_app: AppFactory, label_resource: type[ModelResource]
) -> None:
    app = make_app(LinkedStories, Users, label_resource)
    alice_id, _, (red_id, _) = await seed(app, 12)
    red = f"/api/labels/{red_id}" if label_resource is Labels else "/api/label-names/red"
    async with app.async_test_client() as client:
        await client.get("/api/linked")  # warm up (first connection, dialect checks)
        with QueryCounter(app) as small:
            few = await client.get("/api/linked", params={"limit": 2})
        with QueryCounter(app) as large:
            many = await client.get("/api/linked", params={"limit": 12})
        assert few.status_code == many.status_code == 200, many.text
        items = many.json()["items"]
        assert len(items) == 12
        assert items[0]["author"] == f"/api/users/{alice_id}"
        assert items[0]["labels"] == [red]
        assert items[2]["labels"] == []
        # The page and its count, the labels of all its stories in one IN query: the same
        # statements as ids cost, whatever the page size.
        assert len(large.selects) == len(small.selects) == 2, "\n\n".join(large.selects)

        # The links lead to the related objects.
        author = await client.get(items[0]["author"])
        assert author.status_code == 200
        assert author.json()["username"] == "alice"
        label = await client.get(items[0]["labels"][0])
        assert label.status_code == 200
        assert label.json()["name"] == "red"

        with QueryCounter(app) as one:
            story = await client.get(f"/api/linked/{items[4]['id']}")
        assert story.json()["labels"] == [red]
        assert len(one.selects) == 2

        # Written by id; the answer of a write (the ORM path) links the same way, and the
        # same bytes as a read give the same ETag.
        _, auth = await add_user(app, "carol")
        created = await client.post(
            "/api/linked",
            json={"slug": "new", "title": "New", "author": alice_id, "labels": [red_id]},
            headers=auth,
        )
        assert created.status_code == 201, created.text
        assert created.json()["author"] == f"/api/users/{alice_id}"
        assert created.json()["labels"] == [red]
        read = await client.get(created.headers["Location"])
        assert read.headers["ETag"] == created.headers["ETag"]


async def _reactions(app: Any) -> tuple[list[int], int]:
    async with get_database(app).session() as db:
        stories = (await db.execute(Story.__table__.select().order_by(Story.id))).all()
        label = Label(name="green")
        db.add(label)
        await db.flush()
        rows = [
            Reaction(story_id=stories[0].id, label_id=label.id),
            Reaction(story_id=stories[1].id, label_id=None),
        ]
        db.add_all(rows)
        await db.commit()
        return [r.id for r in rows], label.id


async def test_a_to_one_link_by_slug_or_id_and_null(make_app: AppFactory) -> None:
    # Stories are looked up by slug: the link joins the story's slug in the same statement.
    app = make_app(Reactions, Stories, Labels)
    await seed(app, 2)
    ids, green = await _reactions(app)
    async with app.async_test_client() as client:
        await client.get("/api/reactions")
        with QueryCounter(app) as counter:
            page = await client.get("/api/reactions")
        assert page.status_code == 200, page.text
        first, second = page.json()["items"]
        assert first == {"id": ids[0], "story": "/api/stories/s00", "label": f"/api/labels/{green}"}
        assert second == {"id": ids[1], "story": "/api/stories/s01", "label": None}
        assert len(counter.selects) == 1, counter.selects
        assert (await client.get(first["story"])).json()["slug"] == "s00"

        with QueryCounter(app) as counter:
            one = await client.get(f"/api/reactions/{ids[1]}")
        assert one.json()["story"] == "/api/stories/s01"
        assert len(counter.selects) == 1

        _, auth = await add_user(app, "carol")
        story_id = (await client.get("/api/stories/s01")).json()["id"]
        changed = await client.patch(
            f"/api/reactions/{ids[1]}", json={"label": green, "story": story_id}, headers=auth
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["label"] == f"/api/labels/{green}"
        assert (
            changed.headers["ETag"]
            == (await client.get(f"/api/reactions/{ids[1]}")).headers["ETag"]
        )


async def test_links_stay_within_their_version(make_app: AppFactory) -> None:
    app = make_app()
    for version in ("/v1", "/v2"):
        app.include(LinkedStories, version)
        app.include(Users, version)
        app.include(Labels, version)
    alice_id, _, _ = await seed(app, 2)
    async with app.async_test_client() as client:
        for version in ("/v1", "/v2"):
            item = (await client.get(f"{version}/api/linked")).json()["items"][0]
            assert item["author"] == f"{version}/api/users/{alice_id}"
            assert (await client.get(item["author"])).status_code == 200


async def test_link_targets_are_checked_when_the_app_is_built(make_app: AppFactory) -> None:
    alone = make_app(LinkedStories, Labels)  # nothing serves users
    with pytest.raises(ImproperlyConfigured, match=r"LinkedStories.links\['author'\].*User"):
        alone.build()

    class MoreUsers(Users, prefix="/api/people"):
        schema_prefix = "People"

    twice = make_app(LinkedStories, Labels, Users, MoreUsers)
    with pytest.raises(ImproperlyConfigured, match="several resources serve User"):
        twice.build()

    class ChosenStories(LinkedStories, prefix="/api/chosen"):
        links = {"author": MoreUsers, "labels": Labels}  # type: ignore[assignment]

    chosen = make_app(ChosenStories, Labels, Users, MoreUsers)
    alice_id, _, _ = await seed(chosen, 2)
    async with chosen.async_test_client() as client:
        item = (await client.get("/api/chosen")).json()["items"][0]
    assert item["author"] == f"/api/people/{alice_id}"


async def test_declarations_are_checked(make_app: AppFactory) -> None:
    class NotARelation(ModelResource, model=Story, prefix="/api/x"):
        links = ["title"]

    class Both(ModelResource, model=Story, prefix="/api/y"):
        links = ["author"]
        nested = {"author": ["id"]}

    class NestsLinks(ModelResource, model=Reaction, prefix="/api/z"):
        nested = {"story": LinkedStories}

    class OneString(ModelResource, model=Story, prefix="/api/w"):
        links = "author"

    with pytest.raises(ValueError, match="not a relation"):
        make_app(NotARelation)
    with pytest.raises(TypeError, match="not one string"):
        make_app(OneString)
    with pytest.raises(ValueError, match="link or nested, not both"):
        make_app(Both)
    with pytest.raises(TypeError, match="sends links"):
        make_app(NestsLinks)


async def test_links_are_documented_as_uri_references(make_app: AppFactory) -> None:
    class NamedReactions(Reactions, prefix="/api/named-reactions"):
        # Two resources serve stories here: this one names its target.
        links = {"story": Stories, "label": Labels}  # type: ignore[assignment]

    app = make_app(LinkedStories, NamedReactions, Stories, Users, Labels)
    async with app.async_test_client() as client:
        document = (await client.get("/openapi.json")).json()
    validate(document)
    schemas = document["components"]["schemas"]
    link = {"type": "string", "format": "uri-reference"}
    read = schemas["LinkedStoriesRead"]["properties"]
    assert read["author"] == {**link, "title": "Author"}
    assert read["labels"]["type"] == "array"
    assert read["labels"]["items"] == link
    label = schemas["NamedReactionsRead"]["properties"]["label"]
    assert label["anyOf"] == [link, {"type": "null"}]
    # Still written by id.
    assert schemas["LinkedStoriesCreate"]["properties"]["author"]["type"] == "integer"


async def test_the_orm_read_path_links_the_same(make_app: AppFactory) -> None:
    from sqlalchemy import Select, select

    from transom.rest import Context

    class Scoped(ModelResource, model=Reaction, prefix="/api/scoped"):
        links = {"story": Stories, "label": Labels}
        ordering = ["id"]

        def query(self, ctx: Context) -> Select[Any]:  # a hook: the ORM path serves reads
            return select(Reaction)

    class Core(Scoped, prefix="/api/core"):
        query = ModelResource.query

    app = make_app(Scoped, Core, Stories, Labels)
    await seed(app, 2)
    await _reactions(app)
    async with app.async_test_client() as client:
        await client.get("/api/scoped")
        with QueryCounter(app) as counter:
            orm = await client.get("/api/scoped")
        core = await client.get("/api/core")
        assert orm.status_code == 200, orm.text
        assert orm.json()["items"] == core.json()["items"]
        assert orm.json()["items"][1]["label"] is None
        # The page, its count and the stories' slugs joined: no query per item.
        assert len(counter.selects) == 2, counter.selects
