"""Transom through its public API only: typed parameters, a Pydantic body, str/dict returns.

``/plaintext`` returns a :class:`~transom.PlainTextResponse` because a bare ``str`` is served as
``text/html`` and the TechEmpower plaintext test wants ``text/plain``. ``/html`` returns a
``str`` (served as ``text/html``). ``transom_secure_app`` serves the same apps with the security
battery installed.
"""

from __future__ import annotations

from typing import Any

from transom import App, PlainTextResponse, Settings

from .common import HELLO, HTML, Item


def _settings() -> Settings:
    return Settings(secret_key="bench")


def make_app() -> App:
    """``/plaintext``, ``/json``, ``/html`` and ``/typed/{item_id}``."""
    app = App(settings=_settings())

    @app.get("/plaintext")
    async def plaintext() -> PlainTextResponse:
        return PlainTextResponse(HELLO)

    @app.get("/json")
    async def json() -> dict[str, str]:
        return {"message": HELLO}

    @app.get("/html")
    async def html() -> str:
        return HTML

    @app.post("/typed/{item_id:int}")
    async def typed(item_id: int, q: str, limit: int, item: Item) -> dict[str, Any]:
        return {
            "item_id": item_id,
            "q": q,
            "limit": limit,
            "name": item.name,
            "total": item.price * limit,
        }

    return app


def make_routes_app(count: int) -> App:
    routes_app = App(settings=_settings())

    def make(route: int) -> None:
        @routes_app.get(f"/r{route}/{{id:int}}", name=f"r{route}")
        async def endpoint(id: int) -> dict[str, int]:
            return {"route": route, "id": id}

    for route in range(count):
        make(route)
    return routes_app


app = make_app()
routes_1000 = make_routes_app(1000)
routes_10 = make_routes_app(10)
