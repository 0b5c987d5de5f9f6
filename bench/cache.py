#!/usr/bin/env python3
"""The cache battery's costs: ``Cache.get``/``set`` on Redis next to bare redis-py, and a
``@cached`` view next to a plain JSON endpoint, in-process (no server, no socket).

``python bench/cache.py [--ops 5000] [--requests 5000] [--rounds 3]`` (Redis on 127.0.0.1:6379,
``BENCH_REDIS_URL`` to change it). Best of the rounds, operations or requests per second,
one at a time. The list endpoint builds 50 Pydantic items per request (no database).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src")]
os.environ.setdefault("TRANSOM_SECRET_KEY", "bench")

from pydantic import BaseModel  # noqa: E402
from redis.asyncio import Redis  # noqa: E402

from transom import App  # noqa: E402
from transom.cache import Cache, CacheConfig, cached  # noqa: E402

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


class Item(BaseModel):
    id: int
    title: str
    score: float


def items() -> list[Item]:
    return [Item(id=i, title=f"post {i}", score=i / 3) for i in range(50)]


async def rate(call: Callable[[], Awaitable[Any]], n: int, rounds: int) -> float:
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            await call()
        best = max(best, n / (time.perf_counter() - start))
    return best


def asgi_get(app: App, path: str) -> Callable[[], Awaitable[None]]:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200, message

    async def call() -> None:
        await app(dict(scope), receive, send)

    return call


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

    return app


async def main(ops: int, requests: int, rounds: int) -> None:
    prefix = f"bench-cache-{uuid.uuid4().hex[:8]}"
    rows: list[tuple[str, float, str]] = []

    client = Redis.from_url(REDIS_URL)
    cache = Cache(CacheConfig(url=REDIS_URL, key_prefix=prefix))
    value = {"id": 1, "title": "a cached value", "tags": ["x", "y"], "score": 1.5}
    await cache.set("k", value, ttl=600)
    raw_key = cache.make_key("k")
    bare_get = await rate(lambda: client.get(raw_key), ops, rounds)
    cache_get = await rate(lambda: cache.get("k"), ops, rounds)
    bare_set = await rate(lambda: client.set(raw_key + "s", b'{"a":1}', px=600_000), ops, rounds)
    cache_set = await rate(lambda: cache.set("ks", {"a": 1}, ttl=600), ops, rounds)
    rows += [
        ("redis-py GET", bare_get, ""),
        ("Cache.get (Redis)", cache_get, f"{cache_get / bare_get:.2f}x bare"),
        ("redis-py SET", bare_set, ""),
        ("Cache.set (Redis)", cache_set, f"{cache_set / bare_set:.2f}x bare"),
    ]
    await cache.clear()
    await cache.close()
    await client.aclose()

    plain = make_app(None, prefix)
    await plain.startup()
    json_rate = await rate(asgi_get(plain, "/json"), requests, rounds)
    list_rate = await rate(asgi_get(plain, "/plain-list"), requests, rounds)
    rows += [
        ("plain JSON endpoint (/json)", json_rate, ""),
        ("uncached list of 50 models", list_rate, f"{list_rate / json_rate:.2f}x /json"),
    ]
    for label, url in (("memory", "memory://"), ("Redis", REDIS_URL)):
        app = make_app(url, prefix)
        await app.startup()
        if label == "memory":
            # A route without @cached on an app with the battery: what the battery costs
            # the requests that don't use it.
            other = await rate(asgi_get(app, "/json"), requests, rounds)
            rows.append(
                ("/json, cache battery installed", other, f"{other / json_rate:.2f}x /json")
            )
        call = asgi_get(app, "/list")
        await call()  # fill
        cached_rate = await rate(call, requests, rounds)
        rows.append(
            (f"@cached list ({label})", cached_rate, f"{cached_rate / json_rate:.2f}x /json")
        )
        await Cache.of(app).clear()
        await app.shutdown()
    await plain.shutdown()

    print(f"| what | per second (best of {rounds}) | ratio |")
    print("|---|---:|---|")
    for name, per_second, note in rows:
        print(f"| {name} | {per_second:,.0f} | {note} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.ops, args.requests, args.rounds))
