"""The app ``bench/cache.py`` measures, in-process and (``--server``) served by granian.

``make_app(url, prefix)``: ``/json`` (the trivial endpoint), ``/plain-list`` (50 Pydantic items
built per request, no database), ``/list``, the same list under ``@cached(ttl=600)``, and
``/same-bytes``, the list's bytes made once at start-up (the cost of the body's size); with
``url=None`` no cache battery is installed. ``app`` is what a server imports: the battery on
``BENCH_CACHE_URL`` (default ``memory://``).
"""

from __future__ import annotations

import os
import uuid

from pydantic import BaseModel

from transom import App, Response
from transom.cache import Cache, CacheConfig, cached
from transom.responses import json_dumps


class Item(BaseModel):
    id: int
    title: str
    score: float


def items() -> list[Item]:
    return [Item(id=i, title=f"post {i}", score=i / 3) for i in range(50)]


def make_app(cache_url: str | None, prefix: str) -> App:
    app = App()
    if cache_url is not None:
        Cache(app, CacheConfig(url=cache_url, key_prefix=prefix))

    @app.get("/list")
    @cached(ttl=600)
    async def cached_list() -> list[Item]:
        return items()

    @app.get("/plain-list")
    async def plain_list() -> list[Item]:
        return items()

    @app.get("/json")
    async def json() -> dict[str, str]:
        return {"message": "Hello, World!"}

    body = json_dumps(items())

    @app.get("/same-bytes")
    async def same_bytes() -> Response:
        # The list's bytes, made once: what sending a body of that size costs, cache aside.
        return Response(body, media_type="application/json")

    return app


app = make_app(
    os.environ.get("BENCH_CACHE_URL", "memory://"), f"bench-cache-app-{uuid.uuid4().hex[:8]}"
)
