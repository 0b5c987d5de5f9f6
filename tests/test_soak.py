"""A short soak, in-process: thousands of requests to the bench apps (bare and with the
security battery) leave no objects and no memory behind.

The long version against real servers is ``make bench-soak`` (``bench/soak.py``). Here the
app is called directly; what is measured is counts (live objects, resident memory) with
generous bounds, never time.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import os
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # bench/ is not an installed package
    sys.path.insert(0, str(ROOT))

TYPED_BODY = b'{"name":"Widget","price":9.5,"tags":["a","b"]}'
REQUESTS = [
    ("GET", "/json", b"", b""),
    ("GET", "/html", b"", b""),
    ("GET", "/plaintext", b"", b""),
    ("POST", "/typed/42", b"q=hello&limit=3", TYPED_BODY),
    ("GET", "/missing", b"", b""),  # the error path too
]
# Generous: a leak of one object per request would add ten thousand.
MAX_NEW_BLOCKS = 3_000
MAX_RSS_GROWTH_MB = 24.0


def rss_mb() -> float:
    resident = int(Path("/proc/self/statm").read_text().split()[1])
    return resident * os.sysconf("SC_PAGE_SIZE") / 2**20


async def serve(app: Any, rounds: int) -> None:
    for _ in range(rounds):
        for method, path, query, body in REQUESTS:
            headers = [(b"host", b"127.0.0.1:8000")]
            if body:
                headers += [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ]
            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": method,
                "scheme": "http",
                "path": path,
                "raw_path": path.encode(),
                "root_path": "",
                "query_string": query,
                "headers": headers,
                "client": ("127.0.0.1", 50000),
                "server": ("127.0.0.1", 8000),
            }
            statuses: list[int] = []

            async def receive(body: bytes = body) -> dict[str, Any]:
                return {"type": "http.request", "body": body, "more_body": False}

            async def send(message: dict[str, Any], statuses: list[int] = statuses) -> None:
                if message["type"] == "http.response.start":
                    statuses.append(message["status"])

            await app(scope, receive, send)
            assert statuses == [404 if path == "/missing" else 200]


def bench_app(secure: bool) -> Any:
    """A fresh bench app (bare or with ``Security``), without the access log, as the bench
    servers run it: a test run captures log records, which would look like growth."""
    from transom import Settings

    bench = importlib.import_module("bench.apps.transom_app")
    app = bench.make_app()
    app.settings = Settings(secret_key="bench", access_log=False)
    if secure:
        importlib.import_module("bench.apps.transom_secure_app").secure(app)
    return app


@pytest.mark.parametrize("secure", [False, True], ids=["bare", "secure"])
def test_no_growth_over_thousands_of_requests(secure: bool) -> None:
    app = bench_app(secure)

    async def run() -> tuple[int, float, int, float]:
        await serve(app, 400)  # warm-up: caches, compiled routes, pools settle
        gc.collect()
        # Every live Python object holds at least one allocated block (tracked by the garbage
        # collector or not: a leaked str or int counts too).
        blocks, rss = sys.getallocatedblocks(), rss_mb()
        await serve(app, 2_000)  # 10,000 requests
        gc.collect()
        return blocks, rss, sys.getallocatedblocks(), rss_mb()

    before_blocks, before_rss, after_blocks, after_rss = asyncio.run(run())
    assert after_blocks - before_blocks < MAX_NEW_BLOCKS
    assert after_rss - before_rss < MAX_RSS_GROWTH_MB
