"""Starlette: routes, request and response classes; the typed endpoint parses by hand."""

from __future__ import annotations

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .common import HELLO, HTML, Item


async def plaintext(request: Request) -> Response:
    return PlainTextResponse(HELLO)


async def json(request: Request) -> Response:
    return JSONResponse({"message": HELLO})


async def html(request: Request) -> Response:
    return HTMLResponse(HTML)


async def typed(request: Request) -> Response:
    item_id: int = request.path_params["item_id"]
    q = request.query_params.get("q")
    limit_text = request.query_params.get("limit")
    if q is None or limit_text is None:
        return JSONResponse({"detail": "missing query parameter"}, status_code=422)
    try:
        limit = int(limit_text)
    except ValueError:
        return JSONResponse({"detail": "limit must be an integer"}, status_code=422)
    try:
        item = Item.model_validate_json(await request.body())
    except ValidationError as exc:
        return JSONResponse({"detail": exc.errors(include_url=False)}, status_code=422)
    return JSONResponse(
        {"item_id": item_id, "q": q, "limit": limit, "name": item.name, "total": item.price * limit}
    )


app = Starlette(
    routes=[
        Route("/plaintext", plaintext),
        Route("/json", json),
        Route("/html", html),
        Route("/typed/{item_id:int}", typed, methods=["POST"]),
    ]
)


def make_routes_app(count: int) -> Starlette:
    def make(route: int) -> Route:
        async def endpoint(request: Request) -> Response:
            return JSONResponse({"route": route, "id": request.path_params["id"]})

        return Route(f"/r{route}/{{id:int}}", endpoint, name=f"r{route}")

    return Starlette(routes=[make(i) for i in range(count)])


routes_1000 = make_routes_app(1000)
routes_10 = make_routes_app(10)
