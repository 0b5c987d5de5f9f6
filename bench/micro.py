#!/usr/bin/env python3
"""In-process microbenchmark: call each bench app directly, no server, no socket.

``python bench/micro.py [--only transom,raw] [--endpoints json] [--requests 20000] [--profile]``

This isolates a framework's own per-request cost (routing, parameter parsing, validation,
serialization, response assembly) from the HTTP server's, and is far less noisy than
``run.py`` on a busy machine. It reports microseconds per request (best of ``--repeat``
interleaved rounds)
and the overhead over the raw-ASGI floor. ``--profile`` prints a cProfile of one framework
and endpoint (the first of ``--only`` / ``--endpoints``).

``--concurrency N`` (ASGI apps only) keeps N requests in flight, as a loaded server does, and
reports CPU time per request instead of wall time: with the database endpoints
(``--endpoints db,queries``) that is what bounds a worker's throughput, while the wall time
of one request at a time is mostly the database's round trip.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import importlib
import io
import os
import pstats
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src")]
os.environ.setdefault("TRANSOM_SECRET_KEY", "bench")
os.environ.setdefault("TRANSOM_ACCESS_LOG", "0")  # as the other frameworks: no access log

from bench.run import ENDPOINTS_BY_NAME, FRAMEWORKS, Endpoint, check_answer  # noqa: E402

Message = dict[str, Any]


def asgi_scope(endpoint: Endpoint) -> dict[str, Any]:
    path, _, query = endpoint.path.partition("?")
    headers = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"micro")]
    if endpoint.body is not None:
        headers += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(endpoint.body)).encode()),
        ]
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": endpoint.method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def asgi_lifespan(app: Any, message: str) -> None:
    sent: list[Message] = []

    async def receive() -> Message:
        if sent:  # startup done: park until the task is cancelled
            await asyncio.sleep(3600)
        return {"type": message}

    async def send(msg: Message) -> None:
        sent.append(msg)

    task = asyncio.ensure_future(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    )
    for _ in range(10000):  # at most 10 s
        if sent or task.done():
            break
        await asyncio.sleep(0.001)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


async def asgi_loop(
    app: Any, endpoint: Endpoint, count: int, concurrency: int = 1
) -> tuple[float, bytes]:
    """Seconds per request (wall time; CPU time with ``concurrency`` > 1), and the body."""
    scope = asgi_scope(endpoint)
    body = (endpoint.body or "").encode()
    request_message = {"type": "http.request", "body": body, "more_body": False}
    chunks: list[bytes] = []
    status: list[int] = []
    content_type: list[str] = []

    async def receive() -> Message:
        return request_message

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
            for key, value in message.get("headers", []):
                if key.lower() == b"content-type":
                    content_type.append(value.decode())
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(dict(scope), receive, send)  # the check request
    answer = (status[0], content_type[0] if content_type else "", b"".join(chunks))
    problem = check_answer(endpoint, answer)
    if problem:
        raise RuntimeError(problem)
    if concurrency > 1:
        per_worker = max(1, count // concurrency)

        async def worker() -> None:
            for _ in range(per_worker):
                chunks.clear()
                await app(dict(scope), receive, send)

        started = time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return (time.process_time() - started) / (per_worker * concurrency), answer[2]
    start = time.perf_counter()
    for _ in range(count):
        chunks.clear()
        await app(dict(scope), receive, send)
    return (time.perf_counter() - start) / count, answer[2]


def wsgi_loop(app: Any, endpoint: Endpoint, count: int) -> tuple[float, bytes]:
    path, _, query = endpoint.path.partition("?")
    body = (endpoint.body or "").encode()
    base = {
        "REQUEST_METHOD": endpoint.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if endpoint.body is not None:
        base["CONTENT_TYPE"] = "application/json"
        base["CONTENT_LENGTH"] = str(len(body))
    seen: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc: Any = None) -> None:
        seen[:] = [status, dict(headers).get("Content-Type", "")]

    def one() -> bytes:
        environ = dict(base)
        environ["wsgi.input"] = io.BytesIO(body)
        result = app(environ, start_response)
        try:
            return b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    first = one()
    problem = check_answer(endpoint, (int(seen[0].split()[0]), seen[1], first))
    if problem:
        raise RuntimeError(problem)
    start = time.perf_counter()
    for _ in range(count):
        one()
    return (time.perf_counter() - start) / count, first


_LOOP: asyncio.AbstractEventLoop | None = None


def _loop() -> asyncio.AbstractEventLoop:
    """One event loop for the whole run: apps keep pools bound to the loop that opened them."""
    global _LOOP
    if _LOOP is None:
        try:
            import uvloop

            _LOOP = uvloop.new_event_loop()
        except ImportError:
            _LOOP = asyncio.new_event_loop()
        asyncio.set_event_loop(_LOOP)
    return _LOOP


def measure(
    framework: str, endpoint: Endpoint, count: int, repeat: int, concurrency: int = 1
) -> float:
    """Best microseconds per request over ``repeat`` runs of ``count`` requests."""
    fw = FRAMEWORKS[framework]
    module = fw.tfb_module if endpoint.suite == "tfb" else fw.module
    if module is None:
        raise LookupError(f"{framework} has no {endpoint.suite} app")
    if not endpoint.served_by(framework):
        raise LookupError(f"{framework} does not serve {endpoint.name}")
    app = getattr(importlib.import_module(module), endpoint.app)
    timings: list[float] = []
    if fw.interface == "wsgi":
        if concurrency > 1:
            raise LookupError("--concurrency is for ASGI apps")
        for _ in range(repeat):
            timings.append(wsgi_loop(app, endpoint, count)[0])
    else:

        async def main() -> None:
            await asgi_lifespan(app, "lifespan.startup")
            for _ in range(repeat):
                timings.append((await asgi_loop(app, endpoint, count, concurrency))[0])

        _loop().run_until_complete(main())
    return min(timings) * 1e6


def profile(framework: str, endpoint: Endpoint, count: int) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    measure(framework, endpoint, count, 1)
    profiler.disable()
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(30)
    return stream.getvalue()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--only", default=",".join(FRAMEWORKS))
    parser.add_argument("--endpoints", default="plaintext,json,html,typed,routes-10,routes-1000")
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    frameworks = [f for f in args.only.split(",") if f]
    endpoints = [ENDPOINTS_BY_NAME[e] for e in args.endpoints.split(",") if e]
    endpoints = [e for e in endpoints if e.script != "pipeline.lua"]  # same work as plaintext
    if args.profile:
        print(profile(frameworks[0], endpoints[0], args.requests))
        return 0
    table: dict[tuple[str, str], float | str] = {}
    # Interleaved: each round measures every framework once, and the best round is kept, so
    # other load on a shared machine slows all of them alike instead of whichever ran then.
    for round_no in range(args.repeat):
        for framework in frameworks:
            for endpoint in endpoints:
                key = framework, endpoint.name
                if isinstance(table.get(key), str):
                    continue  # failed in an earlier round
                try:
                    value = measure(framework, endpoint, args.requests, 1, args.concurrency)
                except Exception as exc:  # report and go on: a missing peer, a wrong answer
                    table[key] = f"{type(exc).__name__}: {exc}"[:60]
                    print(f"  {framework}/{endpoint.name}: {table[key]}", file=sys.stderr)
                    continue
                previous = table.get(key)
                table[key] = value if previous is None else min(value, previous)  # type: ignore[type-var]
        print(f"  round {round_no + 1}/{args.repeat} done", file=sys.stderr)
    names = [e.name for e in endpoints]
    what = (
        f"CPU microseconds per request, {args.concurrency} in flight"
        if args.concurrency > 1
        else "microseconds per request"
    )
    print(f"## In-process cost, {what} (lower is better; + over raw)\n")
    print("| framework | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for framework in frameworks:
        cells = []
        for name in names:
            value = table[framework, name]
            raw = table.get(("raw", name))
            if isinstance(value, float):
                extra = (
                    f" (+{value - raw:.1f})"
                    if isinstance(raw, float) and framework != "raw"
                    else ""
                )
                cells.append(f"{value:.1f}{extra}")
            else:
                cells.append(value)
        print(f"| {framework} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
