#!/usr/bin/env python3
"""WebSocket echo, broadcast fan-out and memory per connection: Transom beside a raw ASGI app
and Starlette + ``broadcaster`` (over Redis), each served by the same server.

``python bench/realtime.py [--servers uvicorn,granian] [--duration 5] [--fanout 1000,5000]
[--rounds 1]`` (``--fanout ''``: the echo only)
(``make bench-realtime``; Redis on 127.0.0.1:6379). One server worker. The client is this
script (asyncio + the ``websockets`` library) on the same 2 cores, so every number includes
its cost; compare the rows, not the absolute figures.

- echo: one connection sending a 32-byte text and awaiting its echo, for ``--duration``
  seconds; then 100 connections doing the same at once. Messages per second, and the ratio to
  the raw app on the same server; with ``--rounds N`` the median of N rounds in which the
  apps take turns (a busy machine's load then hits them alike).
- fan-out: N subscribers connect to ``/sub``; ``POST /pub`` is sent 20 times, 100 ms apart,
  each carrying its send time; every subscriber records each message's delivery delay.
  p50/p99 of those delays and messages delivered per second (N x 20 / time until the last).
- memory: the server's RSS before and after N idle subscribers, per connection.

Transom runs with its in-memory channel (one process, like the raw floor) and with Redis
(like broadcaster); the per-connection message rate limit is off in the Transom app, since
the echo test sends faster than the default 100/s allows by design.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import websockets

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


@dataclass(frozen=True)
class Target:
    name: str
    module: str
    env: dict[str, str] = field(default_factory=dict)


def targets(channel: str) -> list[Target]:
    return [
        Target("raw", "bench.apps.ws_raw"),
        Target("transom (memory)", "bench.apps.ws_transom"),
        Target(
            "transom (redis)",
            "bench.apps.ws_transom",
            {"TRANSOM_CHANNELS_URL": REDIS_URL, "TRANSOM_CHANNELS_KEY_PREFIX": channel},
        ),
        Target("starlette+broadcaster", "bench.apps.ws_starlette", {"BENCH_CHANNEL": channel}),
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _more_files() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))


def server_command(server: str, module: str, port: int) -> list[str]:
    target = f"{module}:app"
    if server == "granian":
        return [
            sys.executable, "-m", "granian", "--interface", "asgi", "--host", HOST,
            "--port", str(port), "--workers", "1", "--log-level", "warning", target,
        ]  # fmt: skip
    return [
        sys.executable, "-m", "uvicorn", target, "--host", HOST, "--port", str(port),
        "--workers", "1", "--no-access-log", "--log-level", "warning", "--ws", "websockets",
    ]  # fmt: skip


@contextlib.contextmanager
def serving(server: str, target: Target) -> Iterator[tuple[int, int]]:
    """Start the app; yields (port, pid of the process that serves)."""
    port = free_port()
    env = {**os.environ, **target.env, "PYTHONPATH": f"{ROOT}:{ROOT / 'src'}"}
    process = subprocess.Popen(
        server_command(server, target.module, port),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=_more_files,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{target.name} on {server} exited: {process.stderr.read()!r}")  # type: ignore[union-attr]
            with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.5):
                break
            time.sleep(0.1)
        yield port, _serving_pid(process.pid)
    finally:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


def _serving_pid(pid: int) -> int:
    # granian serves from a child process; uvicorn with one worker from the process itself.
    children = Path(f"/proc/{pid}/task/{pid}/children")
    with contextlib.suppress(OSError):
        kids = children.read_text().split()
        if kids:
            return int(kids[-1])
    return pid


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def echo_rate(port: int, connections: int, seconds: float) -> float:
    payload = "x" * 32
    counts = [0] * connections
    stop = time.monotonic() + seconds

    async def one(i: int) -> None:
        async with websockets.connect(f"ws://{HOST}:{port}/echo", max_size=None) as ws:
            while time.monotonic() < stop:
                await ws.send(payload)
                await ws.recv()
                counts[i] += 1

    began = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(connections)))
    return sum(counts) / (time.monotonic() - began)


@dataclass
class Fanout:
    delays_ms: list[float]
    rate: float
    rss_per_connection_kib: float
    missing: int


async def fanout(port: int, pid: int, subscribers: int, messages: int = 20) -> Fanout:
    delays: list[float] = []
    last = [0.0]
    ready = asyncio.Event()
    connected = [0]
    done = asyncio.Event()
    received = [0]
    total = subscribers * messages
    before = rss_kib(pid)

    async def one() -> None:
        async with websockets.connect(f"ws://{HOST}:{port}/sub", max_size=None) as ws:
            connected[0] += 1
            if connected[0] == subscribers:
                ready.set()
            for _ in range(messages):
                raw = await ws.recv()
                now = time.time()
                delays.append((now - orjson.loads(raw)["t"]) * 1000)
                last[0] = now
                received[0] += 1
                if received[0] == total:
                    done.set()

    clients = [asyncio.ensure_future(one()) for _ in range(subscribers)]
    # Connect in batches so the server's accept backlog never overflows.
    await asyncio.wait_for(ready.wait(), timeout=120)
    await asyncio.sleep(1.0)  # every subscription live (Redis SUBSCRIBE is asynchronous)
    per_connection = (rss_kib(pid) - before) / subscribers
    first = time.time()
    async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}") as http:
        for i in range(messages):
            sent = await http.post(
                "/pub",
                content=orjson.dumps({"t": time.time(), "i": i}),
                headers={"Content-Type": "application/json"},
            )
            sent.raise_for_status()
            await asyncio.sleep(0.1)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), timeout=60)
    for client in clients:
        client.cancel()
    await asyncio.gather(*clients, return_exceptions=True)
    elapsed = max(last[0] - first, 1e-9)
    return Fanout(delays, received[0] / elapsed, per_connection, total - received[0])


def pct(values: list[float], p: int) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100)[p - 1] if len(values) > 1 else values[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", default="uvicorn,granian")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--fanout", default="1000,5000", help="subscriber counts")
    parser.add_argument(
        "--rounds", type=int, default=1, help="echo rounds, the apps in alternating order"
    )
    args = parser.parse_args(argv)
    _more_files()
    channel = f"bench-rt-{uuid.uuid4().hex[:8]}"
    counts = [int(n) for n in args.fanout.split(",") if n]
    rows: list[str] = []
    for server in args.servers.split(","):
        apps = targets(channel)
        # Interleaved rounds, medians: on a busy machine one round's rates swing more than
        # the apps differ, and load then hits every app alike.
        echoes: dict[str, list[tuple[float, float]]] = {t.name: [] for t in apps}
        for round_ in range(args.rounds):
            for target in apps if round_ % 2 == 0 else apps[::-1]:
                with serving(server, target) as (port, _pid):
                    one = asyncio.run(echo_rate(port, 1, args.duration))
                    many = asyncio.run(echo_rate(port, 100, args.duration))
                echoes[target.name].append((one, many))
        raw = _medians(echoes["raw"])
        for target in apps:
            mine = _medians(echoes[target.name])
            cells = [f"{m:,.0f} ({m / r:.2f}x)" for m, r in zip(mine, raw, strict=True)]
            for n in counts:
                with serving(server, target) as (port, pid):
                    result = asyncio.run(fanout(port, pid, n))
                cells += [
                    f"{pct(result.delays_ms, 50):,.0f} / {pct(result.delays_ms, 99):,.0f}",
                    f"{result.rate:,.0f}" + (f" ({result.missing} lost)" if result.missing else ""),
                    f"{result.rss_per_connection_kib:,.1f}",
                ]
            rows.append(f"| {server} | {target.name} | " + " | ".join(cells) + " |")
            print(rows[-1], file=sys.stderr, flush=True)
    header = ["server", "app", "echo 1 conn (msg/s, x raw)", "echo 100 conns (msg/s, x raw)"]
    for n in counts:
        header += [f"fan-out {n}: p50 / p99 ms", f"{n}: delivered msg/s", f"{n}: KiB/conn"]
    print(f"load average {os.getloadavg()[0]:.2f}; echo: median of {args.rounds} round(s)")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    print("\n".join(rows))
    return 0


def _medians(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


if __name__ == "__main__":
    sys.exit(main())
