#!/usr/bin/env python3
"""What the production features cost a request, in process (no server, no socket).

``python bench/production.py [--requests 20000] [--repeat 5] [--rounds 3]``

The same one-route app is called directly through ASGI with each feature added in turn
(request ids, the Health battery's probe check, the Metrics battery, in one process and in
prometheus-client's multiprocess mode); it prints microseconds per request, the best of
``--rounds`` x ``--repeat`` runs of ``--requests`` each, and the added cost over the bare app.
Each variant includes the request ids. A server adds tens of microseconds more per request,
so the relative figures here are upper bounds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("bare", "request-id", "health", "metrics", "metrics-multiprocess")


def build(variant: str) -> Any:
    from transom import App, Settings

    app = App(
        Settings(access_log=False, request_id_header="" if variant == "bare" else "X-Request-ID")
    )

    @app.get("/plaintext")
    async def plaintext() -> str:
        return "Hello, World!"

    if variant == "health":
        from transom.health import Health

        Health(app)
    if variant.startswith("metrics"):
        from transom.metrics import Metrics

        Metrics(app)
    app.build()
    return app


async def measure(app: Any, count: int) -> float:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/plaintext",
        "raw_path": b"/plaintext",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    request = {"type": "http.request", "body": b"", "more_body": False}

    async def receive() -> dict[str, Any]:
        return request

    async def send(message: dict[str, Any]) -> None:
        pass

    await app.startup()
    started = time.perf_counter()
    for _ in range(count):
        await app(dict(scope), receive, send)
    elapsed = time.perf_counter() - started
    await app.shutdown()
    return elapsed / count


def one(variant: str, count: int, repeat: int) -> float:
    app = build(variant)
    return min(asyncio.run(measure(app, count)) for _ in range(repeat))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.variant:  # one variant, in a fresh process (multiprocess mode is chosen at import)
        print(one(args.variant, args.requests, args.repeat))
        return 0
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        # Rounds of every variant in turn, the best of each kept: on a shared machine the
        # noise comes in bursts, and a burst then doesn't land on one variant only.
        for _ in range(args.rounds):
            for variant in VARIANTS:
                env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
                env.pop("PROMETHEUS_MULTIPROC_DIR", None)
                if variant == "metrics-multiprocess":
                    env["PROMETHEUS_MULTIPROC_DIR"] = folder
                command = [sys.executable, __file__, "--variant", variant]
                command += ["--requests", str(args.requests), "--repeat", str(args.repeat)]
                output = subprocess.run(
                    command, env=env, check=True, capture_output=True, text=True
                ).stdout
                seconds = float(output.strip().splitlines()[-1])
                results[variant] = min(results.get(variant, seconds), seconds)
    bare = results["bare"]
    print("| variant | µs/request | added |")
    print("|---|---|---|")
    for variant, seconds in results.items():
        print(f"| {variant} | {seconds * 1e6:.1f} | {(seconds - bare) * 1e6:+.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
