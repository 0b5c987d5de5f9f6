"""401/403/404/422/429 in /openapi.json where they can happen, with the bodies really sent.

The auth battery's dependencies and guards, the CSRF check and rate limits declare what they
answer (``declare_responses`` / a responses provider); a plain route gets none of it, a
route's own ``responses={...}`` still wins, and the document stays valid OpenAPI 3.1.
"""

from __future__ import annotations

from typing import Annotated, Any

import jsonschema
import pytest
from openapi_spec_validator import validate
from pydantic import BaseModel

from transom import App, Depends, HTTPException
from transom.auth import CurrentUser, requires
from transom.openapi import declare_responses
from transom.security import csrf_exempt, limit

from .conftest import AppFactory, add_user, log_in

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("backend", ["sqlite"])]


class Note(BaseModel):
    text: str


@declare_responses({404: "No such book"})
def load_book(book_id: int) -> dict[str, int]:
    if book_id != 1:
        raise HTTPException(404, "No such book")
    return {"id": book_id}


CUSTOM_401 = {
    "description": "Our own format",
    "content": {"application/json": {"schema": {"type": "object", "required": ["error"]}}},
}


def add_routes(app: App) -> None:
    @app.post("/notes", status_code=201)
    async def add_note(note: Note, user: CurrentUser) -> dict[str, str]:
        return {"text": note.text, "by": user.username}

    @app.post("/publish/{note_id:int}")
    @requires("auth.change_user")
    async def publish(note_id: int) -> dict[str, int]:
        return {"id": note_id}

    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"pong": True}

    @app.post("/hook")
    @csrf_exempt
    async def hook() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/custom", responses={401: CUSTOM_401})
    async def custom(user: CurrentUser) -> dict[str, bool]:
        return {"ok": True}

    @app.get("/books/{book_id:int}")
    async def book(found: Annotated[dict[str, int], Depends(load_book)]) -> dict[str, int]:
        return found

    @app.get("/shelves/{shelf_id:int}", responses={404: "No such shelf"})
    async def shelf(shelf_id: int) -> dict[str, int]:
        raise HTTPException(404, "No such shelf")

    @app.post("/limited")
    @limit("1/minute")
    async def limited() -> dict[str, bool]:
        return {"ok": True}


def _body_schema(document: dict[str, Any], response: dict[str, Any], media: str) -> Any:
    """The documented schema of ``response`` for ``media``, its references resolvable."""
    schema = response["content"][media]["schema"]
    return {**schema, "components": document["components"]}


async def test_errors_are_documented_where_they_can_happen(make_app: AppFactory) -> None:
    app = make_app()
    add_routes(app)
    async with app.async_test_client() as client:
        document = (await client.get("/openapi.json")).json()
    validate(document)
    paths = document["paths"]

    def codes(path: str, method: str) -> set[str]:
        return {c for c in paths[path][method]["responses"] if not c.startswith("2")}

    # A plain route: nothing can refuse it.
    assert codes("/ping", "get") == set()
    # Login required (GET: no CSRF check on a safe method).
    assert codes("/me", "get") == {"401"}
    assert codes("/private", "get") == {"401"}
    note = paths["/notes"]["post"]["responses"]
    assert set(note) == {"201", "401", "403", "422"}
    assert note["401"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/HTTPError"
    }
    assert "WWW-Authenticate" in note["401"]["headers"]
    assert "CSRF" in note["403"]["description"]
    # A permission guard and the CSRF check share the 403: both causes are named.
    publish = paths["/publish/{note_id}"]["post"]["responses"]
    assert {"401", "403", "422"} <= set(publish)
    assert "Permission denied" in publish["403"]["description"]
    assert "CSRF" in publish["403"]["description"]
    # CSRF-exempt and nothing validated: nothing to document.
    assert codes("/hook", "post") == set()
    # The route's own entry wins over the dependency's.
    assert paths["/custom"]["post"]["responses"]["401"] == CUSTOM_401
    # A dependency that looks objects up, and a route that says so itself.
    assert paths["/books/{book_id}"]["get"]["responses"]["404"]["description"] == "No such book"
    shelf = paths["/shelves/{shelf_id}"]["get"]["responses"]["404"]
    assert shelf["content"]["application/json"]["schema"]["$ref"].endswith("/HTTPError")
    limited = paths["/limited"]["post"]["responses"]
    assert {"403", "429"} <= set(limited)
    assert "Retry-After" in limited["429"]["headers"]


async def test_the_documented_bodies_are_the_ones_sent(make_app: AppFactory) -> None:
    app = make_app()
    add_routes(app)
    async with app.async_test_client() as client:
        document = (await client.get("/openapi.json")).json()
        paths = document["paths"]
        await add_user(app)

        anonymous = await client.post("/notes", json={"text": "hi"})
        assert anonymous.status_code == 401
        schema = _body_schema(
            document, paths["/notes"]["post"]["responses"]["401"], "application/json"
        )
        jsonschema.validate(anonymous.json(), schema)

        missing = await client.get("/books/2")
        assert missing.status_code == 404
        schema = _body_schema(
            document, paths["/books/{book_id}"]["get"]["responses"]["404"], "application/json"
        )
        jsonschema.validate(missing.json(), schema)

        await log_in(client)
        forged = await client.post("/notes", json={"text": "hi"})
        assert forged.status_code == 403
        schema = _body_schema(
            document, paths["/notes"]["post"]["responses"]["403"], "application/json"
        )
        jsonschema.validate(forged.json(), schema)

        token = (await client.get("/csrf")).json()["token"]
        headers = {"X-CSRF-Token": token}
        invalid = await client.post("/notes", json={"txt": "hi"}, headers=headers)
        assert invalid.status_code == 422
        schema = _body_schema(
            document, paths["/notes"]["post"]["responses"]["422"], "application/json"
        )
        jsonschema.validate(invalid.json(), schema)
        assert (
            await client.post("/notes", json={"text": "hi"}, headers=headers)
        ).status_code == 201

        refused = await client.post("/publish/1", headers=headers)
        assert refused.status_code == 403
        assert refused.json() == {"detail": "Permission denied: auth.change_user"}

        assert (await client.post("/limited", headers=headers)).status_code == 200
        throttled = await client.post("/limited", headers=headers)
        assert throttled.status_code == 429
        schema = _body_schema(
            document, paths["/limited"]["post"]["responses"]["429"], "application/json"
        )
        jsonschema.validate(throttled.json(), schema)
