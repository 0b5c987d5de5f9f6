"""FastAPI: declared parameters and a Pydantic body model, return annotations as its docs do."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from .common import HELLO, Item

app = FastAPI()


@app.get("/plaintext")
async def plaintext() -> PlainTextResponse:
    return PlainTextResponse(HELLO)


@app.get("/json")
async def json() -> dict[str, str]:
    return {"message": HELLO}


@app.post("/typed/{item_id}")
async def typed(item_id: int, q: str, limit: int, item: Item) -> dict[str, Any]:
    return {
        "item_id": item_id,
        "q": q,
        "limit": limit,
        "name": item.name,
        "total": item.price * limit,
    }


def make_routes_app(count: int) -> FastAPI:
    routes_app = FastAPI()
    for route in range(count):

        def make(route: int) -> None:
            @routes_app.get(f"/r{route}/{{id}}", name=f"r{route}")
            async def endpoint(id: int) -> dict[str, int]:
                return {"route": route, "id": id}

        make(route)
    return routes_app


routes_1000 = make_routes_app(1000)
routes_10 = make_routes_app(10)
