#!/usr/bin/env python3
"""In-process WebSocket echo: CPU time per message of Transom's per-message path beside the
raw ASGI floor, no server, no socket (``bench/apps/ws_raw.py`` and ``ws_transom.py``).

``python bench/ws_micro.py [--messages 20000] [--connections 100] [--rounds 5] [--profile]``

Each connection gets its messages from an in-memory queue and puts its echoes in another, as
a server's ``receive``/``send`` would, so what differs between the two apps is the framework's
own work per message (the queues cost both the same). Rounds alternate raw and Transom; the
best of each is reported, with the ratio. To compare another source tree (a branch before a
change), put its ``src`` first: ``PYTHONPATH=/path/to/other/src python bench/ws_micro.py``.
``--profile`` prints a cProfile of the Transom app instead.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib
import io
import os
import pstats
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH / "apps")]
os.environ.setdefault("TRANSOM_SECRET_KEY", "bench")
os.environ.setdefault("TRANSOM_ACCESS_LOG", "0")

SCOPE: dict[str, Any] = {
    "type": "websocket",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "scheme": "ws",
    "path": "/echo",
    "raw_path": b"/echo",
    "root_path": "",
    "query_string": b"",
    "headers": [(b"host", b"127.0.0.1")],
    "server": ("127.0.0.1", 8000),
    "client": ("127.0.0.1", 50000),
    "subprotocols": [],
}


async def echo_cpu_us(app: Any, messages: int, connections: int) -> float:
    """CPU microseconds per echoed message, ``connections`` conversations at once."""
    each = max(1, messages // connections)

    async def conversation() -> None:
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        inbox.put_nowait({"type": "websocket.connect"})

        async def send(message: dict[str, Any]) -> None:
            outbox.put_nowait(message)

        served = asyncio.ensure_future(app(dict(SCOPE), inbox.get, send))
        assert (await outbox.get())["type"] == "websocket.accept"
        for _ in range(each):
            inbox.put_nowait({"type": "websocket.receive", "text": "x" * 32})
            await outbox.get()
        inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
        await served

    began = time.process_time()
    await asyncio.gather(*(conversation() for _ in range(connections)))
    return (time.process_time() - began) / (each * connections) * 1e6


async def start(app: Any) -> asyncio.Future[None]:
    """Run the app's lifespan startup (Transom builds the app there); the lifespan task."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    inbox.put_nowait({"type": "lifespan.startup"})

    async def send(message: dict[str, Any]) -> None:
        outbox.put_nowait(message)

    lifespan = asyncio.ensure_future(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, send)
    )
    assert (await outbox.get())["type"] == "lifespan.startup.complete"
    return lifespan


async def run(args: argparse.Namespace) -> None:
    raw = importlib.import_module("ws_raw").app
    transom = importlib.import_module("ws_transom").app
    lifespan = await start(transom)
    for app in (raw, transom):  # warm up
        await echo_cpu_us(app, 2000, 10)
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        await echo_cpu_us(transom, args.messages, args.connections)
        profile.disable()
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(25)
        print(out.getvalue())
        lifespan.cancel()
        return
    raws, ours = [], []
    for _ in range(args.rounds):
        raws.append(await echo_cpu_us(raw, args.messages, args.connections))
        ours.append(await echo_cpu_us(transom, args.messages, args.connections))
    import transom as package

    print(f"transom from {Path(package.__file__).parent}; load average {os.getloadavg()[0]:.2f}")
    print(
        f"raw {min(raws):.2f} us/msg, transom {min(ours):.2f} us/msg: "
        f"{min(ours) / min(raws):.2f}x the raw floor's CPU per message"
    )
    lifespan.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
