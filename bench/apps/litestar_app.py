"""Litestar: declared parameters and a Pydantic ``data`` model (its Pydantic plugin)."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, MediaType, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, FromQuery, JSONBody

from .common import HELLO, Item


@get("/plaintext", media_type=MediaType.TEXT)
async def plaintext() -> str:
    return HELLO


@get("/json")
async def json() -> dict[str, str]:
    return {"message": HELLO}


@post("/typed/{item_id:int}", status_code=200)
async def typed(
    item_id: FromPath[int], q: FromQuery[str], limit: FromQuery[int], data: JSONBody[Item]
) -> dict[str, Any]:
    return {
        "item_id": item_id,
        "q": q,
        "limit": limit,
        "name": data.name,
        "total": data.price * limit,
    }


app = Litestar(route_handlers=[plaintext, json, typed])


def make_routes_app(count: int) -> Litestar:
    def make(route: int) -> HTTPRouteHandler:
        @get(f"/r{route}/{{id:int}}", name=f"r{route}")
        async def endpoint(id: FromPath[int]) -> dict[str, int]:
            return {"route": route, "id": id}

        return endpoint

    return Litestar(route_handlers=[make(i) for i in range(count)])


routes_1000 = make_routes_app(1000)
routes_10 = make_routes_app(10)
