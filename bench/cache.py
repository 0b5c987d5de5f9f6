#!/usr/bin/env python3
"""The cache battery's costs: ``Cache.get``/``set`` on Redis next to bare redis-py, and a
``@cached`` view next to a plain JSON endpoint, in-process and (``--server``) on a real server.

``python bench/cache.py [--ops 3000] [--requests 5000] [--rounds 5] [--server] [--duration 5]``
(Redis on 127.0.0.1:6379, ``BENCH_REDIS_URL`` to change it). Every measurement is
interleaved: each round measures every row once, and the best round of each row is reported
(on a shared machine other load only ever slows a measurement down).

* Redis rows: operations per second, one at a time (wall time: the round trip), and the
  client's CPU time per operation next to bare redis-py's (steadier on a loaded machine).
* In-process rows: CPU time per request (``time.process_time``, no server, no socket, no
  access log, as ``bench/micro.py``), as requests per CPU-second. The list endpoint builds 50
  Pydantic items per request (no database).
* ``--server``: ``bench/cache_app.py`` served by granian (one worker, as ``bench/run.py``),
  ``wrk -t1 -c64`` on ``/json`` and the ``@cached`` ``/list`` (memory), alternately: there the
  server's own per-request cost counts too.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]
os.environ.setdefault("TRANSOM_SECRET_KEY", "bench")
os.environ.setdefault("TRANSOM_ACCESS_LOG", "0")  # as bench/micro.py and bench/run.py

from redis.asyncio import Redis  # noqa: E402

from bench.cache_app import make_app  # noqa: E402
from transom import App  # noqa: E402
from transom.cache import Cache, CacheConfig  # noqa: E402

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
Call = Callable[[], Awaitable[Any]]


async def interleaved(
    calls: dict[str, Call], n: int, rounds: int, clock: Callable[[], float]
) -> dict[str, float]:
    """Operations per second of ``clock`` for each call: the best of ``rounds`` rounds, each
    round running every call ``n`` times, in an order that rotates every round."""
    best = dict.fromkeys(calls, 0.0)
    names = list(calls)
    for number in range(rounds):
        turn = number % len(names)
        for name in names[turn:] + names[:turn]:
            call = calls[name]
            start = clock()
            for _ in range(n):
                await call()
            best[name] = max(best[name], n / max(clock() - start, 1e-9))
    return best


def asgi_get(app: App, path: str, method: str = "GET") -> Call:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
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


async def redis_rows(ops: int, rounds: int, prefix: str) -> list[tuple[str, float, str]]:
    client = Redis.from_url(REDIS_URL)
    cache = Cache(CacheConfig(url=REDIS_URL, key_prefix=prefix))
    try:
        value = {"id": 1, "title": "a cached value", "tags": ["x", "y"], "score": 1.5}
        await cache.set("k", value, ttl=600)
        raw_key = cache.make_key("k")
        calls: dict[str, Call] = {
            "bare GET": lambda: client.get(raw_key),
            "Cache.get": lambda: cache.get("k"),
            "bare SET": lambda: client.set(raw_key + "s", b'{"a":1}', px=600_000),
            "Cache.set": lambda: cache.set("ks", {"a": 1}, ttl=600),
        }
        rates = await interleaved(calls, ops, rounds, time.perf_counter)
        # The client's CPU per operation too: on a loaded machine the round trip's wall time
        # is mostly other processes' turn, while the CPU is what the layer itself adds.
        cpu = await interleaved(calls, ops, rounds, time.process_time)
    finally:
        await cache.clear()
        await cache.close()
        await client.aclose()

    def ratio(name: str, bare: str) -> str:
        return (
            f"{rates[name] / rates[bare]:.2f}x bare (wall); "
            f"{cpu[name] / cpu[bare]:.2f}x bare (CPU: {1e6 / cpu[name]:.0f} vs "
            f"{1e6 / cpu[bare]:.0f} µs)"
        )

    return [
        ("redis-py GET", rates["bare GET"], ""),
        ("Cache.get (Redis)", rates["Cache.get"], ratio("Cache.get", "bare GET")),
        ("redis-py SET", rates["bare SET"], ""),
        ("Cache.set (Redis)", rates["Cache.set"], ratio("Cache.set", "bare SET")),
    ]


async def view_rows(requests: int, rounds: int, prefix: str) -> list[tuple[str, float, str]]:
    plain = make_app(None, prefix)
    memory = make_app("memory://", prefix)
    redis = make_app(REDIS_URL, prefix)
    apps = (plain, memory, redis)
    for app in apps:
        await app.startup()
    calls = {
        "plain JSON endpoint (/json)": asgi_get(plain, "/json"),
        "uncached list of 50 models": asgi_get(plain, "/plain-list"),
        "/json, cache battery installed": asgi_get(memory, "/json"),
        "@cached list (memory)": asgi_get(memory, "/list"),
        "@cached list (memory), HEAD": asgi_get(memory, "/list", "HEAD"),
        "@cached list (Redis)": asgi_get(redis, "/list"),
    }
    try:
        for call in calls.values():
            await call()  # fills the caches, warms everything up
        rates = await interleaved(calls, requests, rounds, time.process_time)
    finally:
        for app in (memory, redis):
            await Cache.of(app).clear()
        for app in apps:
            await app.shutdown()
    json_rate = rates["plain JSON endpoint (/json)"]
    return [
        (
            f"{name}, in-process ({1e6 / rate:.1f} µs CPU)",
            rate,
            "" if name.startswith("plain JSON") else f"{rate / json_rate:.2f}x /json",
        )
        for name, rate in rates.items()
    ]


def server_rows(duration: int, rounds: int) -> list[tuple[str, float, str]]:
    from bench.run import (
        Endpoint,
        free_port,
        parse_wrk,
        run_wrk,
        server_command,
        serving,
        wrk_command,
    )

    port = free_port()
    command = server_command("bench.cache_app", "granian", "app", port)
    json_endpoint = Endpoint("json", "app", "GET", "/json", "application/json", b"")
    list_endpoint = Endpoint("cached-list", "app", "GET", "/list", "application/json", b"")
    samples: dict[str, list[float]] = {"json": [], "cached-list": []}
    errors = 0
    log = ROOT / "bench" / "results" / "logs" / "cache-server.log"
    with serving(command, port, json_endpoint, log):
        for endpoint in (json_endpoint, list_endpoint):  # warm-up (and the list's fill)
            run_wrk(wrk_command(endpoint, port, 1, 64), 1)
        for number in range(rounds):
            order = [json_endpoint, list_endpoint]
            for endpoint in order if number % 2 == 0 else order[::-1]:
                sample = parse_wrk(run_wrk(wrk_command(endpoint, port, duration, 64), duration))
                errors += sample.non2xx + sample.socket_errors
                samples[endpoint.name].append(sample.rps)
    best = {name: max(values) for name, values in samples.items()}
    # Each round's two runs are back to back: their ratio is steadier than the ratio of the
    # best runs when the machine's load drifts over the minutes of the benchmark.
    paired = statistics.median(
        c / j for c, j in zip(samples["cached-list"], samples["json"], strict=True)
    )
    note = f" ({errors} errors)" if errors else ""
    ratio = best["cached-list"] / best["json"]
    return [
        ("/json, granian + wrk", best["json"], note),
        (
            "@cached list (memory), granian + wrk",
            best["cached-list"],
            f"{ratio:.2f}x /json (best runs); {paired:.2f}x (median of the rounds' ratios)",
        ),
    ]


async def main(args: argparse.Namespace) -> None:
    prefix = f"bench-cache-{uuid.uuid4().hex[:8]}"
    rows = await redis_rows(args.ops, args.rounds, prefix)
    rows += await view_rows(args.requests, args.rounds, prefix)
    if args.server:
        rows += server_rows(args.duration, args.rounds)
    print(f"| what | per second (best of {args.rounds}) | ratio |")
    print("|---|---:|---|")
    for name, per_second, note in rows:
        print(f"| {name} | {per_second:,.0f} | {note} |")
    print(f"\nload average after the run: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", type=int, default=3000)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--server", action="store_true", help="also wrk a granian server")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    asyncio.run(main(parser.parse_args()))
