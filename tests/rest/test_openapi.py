"""Every resource operation is in /openapi.json with its real schemas, and the document is valid."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate

from transom.rest import RestConfig

from .conftest import AppFactory
from .resources import Labels, Stories
from .test_list import Feed
from .test_nested import NestedStories

pytestmark = pytest.mark.anyio


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    resolved: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return resolved


async def test_document_describes_the_resources(make_app: AppFactory) -> None:
    app = make_app(Stories, Labels, Feed, NestedStories)
    async with app.async_test_client() as client:
        document = (await client.get("/openapi.json")).json()
    validate(document)
    paths = document["paths"]
    schemas = document["components"]["schemas"]
    assert set(paths["/api/stories"]) == {"get", "post"}
    assert set(paths["/api/stories/{slug}"]) == {"get", "put", "patch", "delete"}
    assert "post" in paths["/api/stories/{slug}/publish"]

    create = paths["/api/stories"]["post"]
    assert create["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/StoriesRead"
    }
    problem = {"$ref": "#/components/schemas/Problem"}
    for status in ("401", "403", "409", "422"):
        assert create["responses"][status]["content"]["application/problem+json"]["schema"] == (
            problem
        )
    # The CSRF check (Security, sessions on) refuses unsafe methods in the framework's shape,
    # before the resource answers: both bodies are documented for that 403.
    assert create["responses"]["403"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/HTTPError"
    }
    assert "CSRF" in create["responses"]["403"]["description"]
    # Documented where they can happen: reads are public (IsAuthenticatedOrReadOnly,
    # OwnerCanEdit), so no 401/403 there; the slug is unique, so writes can clash; nothing
    # references a story with a key that refuses its delete (labels' link cascades).
    listing = paths["/api/stories"]["get"]["responses"]
    assert set(listing) == {"200", "422"}
    retrieve = paths["/api/stories/{slug}"]["get"]["responses"]
    assert set(retrieve) == {"200", "404"}
    item = paths["/api/stories/{slug}"]
    for method in ("put", "patch"):
        assert set(item[method]["responses"]) == {"200", "401", "403", "404", "409", "412", "422"}
    assert set(item["delete"]["responses"]) == {"204", "401", "403", "404", "412"}
    # Labels need model permissions to write, reading stays public.
    labels = paths["/api/labels"]
    assert {"401", "403", "409"} <= set(labels["post"]["responses"])
    assert "401" not in labels["get"]["responses"]
    body = _resolve(document, create["requestBody"]["content"]["application/json"]["schema"])
    assert body["additionalProperties"] is False  # unknown fields refused
    assert set(body["required"]) == {"slug", "title"}
    props = body["properties"]
    assert not {"id", "author", "created_at"} & set(props)
    assert props["title"]["maxLength"] == 200
    assert props["score"]["default"] == 0
    assert _resolve(document, props["status"])["enum"] == ["draft", "published"]
    assert props["labels"]["type"] == "array"

    patch = paths["/api/stories/{slug}"]["patch"]
    patch_body = _resolve(document, patch["requestBody"]["content"]["application/json"]["schema"])
    assert "required" not in patch_body
    assert {p["name"] for p in patch["parameters"]} == {"slug", "If-Match"}
    assert "412" in patch["responses"]
    delete = paths["/api/stories/{slug}"]["delete"]
    assert delete["responses"]["204"] == {"description": "Successful response"}

    read = schemas["StoriesRead"]
    assert set(read["required"]) >= {"id", "slug", "author", "labels", "created_at"}
    assert read["properties"]["author"] == {"type": "integer", "title": "Author"}

    listing = paths["/api/stories"]["get"]
    params = {p["name"]: p for p in listing["parameters"]}
    assert {"limit", "offset", "ordering", "search", "score__gte", "labels__in"} <= set(params)
    assert params["score__gte"]["schema"] == {"type": "integer"}
    assert params["published_at__isnull"]["schema"] == {"type": "boolean"}
    assert params["status"]["schema"]["enum"] == ["draft", "published"]
    assert "-created_at" in params["ordering"]["description"]
    page = _resolve(document, listing["responses"]["200"]["content"]["application/json"]["schema"])
    assert set(page["properties"]) == {"items", "total", "limit", "offset", "links"}

    feed = {p["name"] for p in paths["/api/feed"]["get"]["parameters"]}
    assert {"cursor", "limit"} <= feed
    nested = schemas["NestedStoriesRead"]["properties"]["author"]
    assert _resolve(document, nested)["required"] == ["id", "username"]
    assert {"StoriesRead", "FeedPage"} <= set(schemas)
    ids = [op["operationId"] for ops in paths.values() for op in ops.values()]
    assert len(ids) == len(set(ids))


async def test_the_errors_format_is_documented_too(make_app: AppFactory) -> None:
    app = make_app(Labels, rest=RestConfig(error_format="errors", unknown_fields="ignore"))
    async with app.async_test_client() as client:
        document = (await client.get("/openapi.json")).json()
    validate(document)
    create = document["paths"]["/api/labels"]["post"]
    assert create["responses"]["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/FieldErrors"
    }
    body = _resolve(document, create["requestBody"]["content"]["application/json"]["schema"])
    assert "additionalProperties" not in body
    assert document["components"]["schemas"]["FieldErrors"]["required"] == ["errors"]
