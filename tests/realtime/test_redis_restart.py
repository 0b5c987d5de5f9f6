"""Redis killed (SIGKILL) and restarted under load, with a real server and real clients.

A private ``redis-server`` on a free port (never the shared one on 6379: other test runs use
it) carries the channels of ``transom run`` (2 workers). WebSocket clients (``websockets``)
and server-sent event clients (httpx) listen on two channels while HTTP publishes stream in;
Redis is killed and started again on the same port in the middle. What must hold:

- the server process survives and its clients stay connected: each worker's subscription
  reconnects by itself, and a client connecting after the restart is served too;
- a publish while Redis is down answers 503 with ``Retry-After``, never a 500;
- every message accepted (200) after the restart reaches every subscriber of its channel, and
  every subscriber sees its channel's messages in publish order, without duplicates;
- what is lost is measured and printed (``docs/realtime.md`` says what it is).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from sqlalchemy import create_engine

from _services import is_ci
from auth.conftest import tables
from test_cli import _free_port, serving
from transom.db import Model
from transom.db.config import sync_url

pytestmark = pytest.mark.anyio
HERE = Path(__file__).parent
REDIS_SERVER = shutil.which("redis-server")
ROOMS = ("a", "b", "c")
#: Bounded waits (not timings under test): how long a step may take on a loaded machine.
PATIENCE = 60.0


class PrivateRedis:
    """A redis-server of this test only, without persistence (as a cache-like deployment
    runs it): a restart comes back empty, the worst case for what subscribers can resume."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert REDIS_SERVER is not None
        log = (self.folder / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                *(REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.folder)),
            ],
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + PATIENCE
        while not self._answers():
            assert self.process.poll() is None, (self.folder / "redis.log").read_text()
            assert time.monotonic() < deadline, "the private redis-server did not start"
            time.sleep(0.05)

    def _answers(self) -> bool:
        import socket

        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: no shutdown, connections reset, nothing saved."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(PATIENCE)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    if REDIS_SERVER is None:
        if is_ci():
            pytest.fail("redis-server is not installed")
        pytest.skip("redis-server is not installed")
    redis = PrivateRedis(tmp_path)
    redis.start()
    try:
        yield redis
    finally:
        redis.kill()


@contextlib.contextmanager
def app_server(
    folder: Path, redis_port: int, server: str
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    shutil.copy(HERE / "server_app.py", folder / "app.py")
    db_url = f"sqlite+aiosqlite:///{folder / 'app.sqlite3'}"
    engine = create_engine(sync_url(db_url))
    Model.metadata.create_all(engine, tables=tables())
    engine.dispose()
    port = _free_port()
    command = [sys.executable, "-m", "transom.cli", "run", "--no-debug", "--no-reload"]
    command += ["--port", str(port), "--server", server, "--workers", "2"]
    env = {
        **os.environ,
        "RT_DB_URL": db_url,
        "RT_CHANNELS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "RT_PREFIX": f"transom-test-rt-restart-{uuid.uuid4().hex[:8]}",
        "TRANSOM_ACCESS_LOG": "0",
    }
    with serving(command, folder, port, env) as process:
        yield port, process


@dataclass
class Listener:
    """One client's view of one channel: the numbers it received, in arrival order."""

    room: str
    kind: str
    got: list[int] = field(default_factory=list)
    error: BaseException | None = None


async def listen_ws(port: int, listener: Listener, connected: asyncio.Event) -> None:
    try:
        async with websockets.connect(f"ws://127.0.0.1:{port}/rooms/{listener.room}") as ws:
            hello = json.loads(await ws.recv())
            assert "ready" in hello, hello
            connected.set()
            async for text in ws:
                listener.got.append(json.loads(text)["n"])
    except asyncio.CancelledError:
        raise
    except BaseException as exc:  # the test reports it
        listener.error = exc


async def listen_sse(port: int, listener: Listener, connected: asyncio.Event) -> None:
    url = f"http://127.0.0.1:{port}/rooms/{listener.room}/events"
    try:
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(PATIENCE, read=None)) as client,
            client.stream("GET", url) as response,
        ):
            assert response.status_code == 200, response.status_code
            connected.set()  # the stream subscribed before sending its headers
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    listener.got.append(json.loads(line[6:])["n"])
    except asyncio.CancelledError:
        raise
    except BaseException as exc:
        listener.error = exc


@dataclass
class Publish:
    room: str
    n: int
    status: int
    retry_after: str | None
    phase: str  # "before" the kill, "down" (after it), "after" (once Redis answers again)
    took: float  # seconds, reported (not asserted: the machine is shared)


@dataclass
class Publisher:
    port: int
    phase: str = "before"
    sent: list[Publish] = field(default_factory=list)
    next_n: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ROOMS, 0))

    def accepted(self, room: str, phase: str | None = None) -> list[int]:
        return [
            p.n
            for p in self.sent
            if p.room == room and p.status == 200 and (phase is None or p.phase == phase)
        ]

    def count(self, phase: str, status: int) -> int:
        return sum(1 for p in self.sent if p.phase == phase and p.status == status)

    async def run(self, stop: asyncio.Event) -> None:
        """Publish a steady stream, alternating rooms, numbers counting up per room."""
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{self.port}", timeout=PATIENCE
        ) as client:
            while not stop.is_set():
                for room in ROOMS:
                    n = self.next_n[room]
                    self.next_n[room] = n + 1
                    phase = self.phase
                    began = time.monotonic()
                    response = await client.post(f"/rooms/{room}/messages", json={"n": n})
                    took = time.monotonic() - began
                    retry_after = response.headers.get("retry-after")
                    self.sent.append(
                        Publish(room, n, response.status_code, retry_after, phase, took)
                    )
                await asyncio.sleep(0.02)


async def until(predicate: Any, what: str) -> None:
    """Wait for ``predicate()``: a bounded wait, failing with ``what``, not a timing."""
    deadline = time.monotonic() + PATIENCE
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running(*coroutines: Any) -> AsyncIterator[list[asyncio.Task[None]]]:
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        yield tasks
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@pytest.mark.parametrize("server", ["granian", "uvicorn"])
async def test_redis_killed_and_restarted_mid_stream(
    tmp_path: Path, private_redis: PrivateRedis, server: str, record_property: Any
) -> None:
    with app_server(tmp_path, private_redis.port, server) as (port, process):
        # Room c has no subscriber until one joins during the outage.
        listeners = [Listener(room, "ws") for room in ("a", "b") for _ in range(3)]
        listeners += [Listener(room, "sse") for room in ("a", "b") for _ in range(2)]
        connected = [asyncio.Event() for _ in listeners]
        clients = [
            (listen_ws if lst.kind == "ws" else listen_sse)(port, lst, ready)
            for lst, ready in zip(listeners, connected, strict=True)
        ]
        publisher = Publisher(port)
        stop = asyncio.Event()
        async with running(*clients) as client_tasks:
            for ready, task in zip(connected, client_tasks, strict=True):
                await asyncio.wait(
                    {asyncio.ensure_future(ready.wait()), task},
                    timeout=PATIENCE,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            assert all(ready.is_set() for ready in connected), [lst.error for lst in listeners]
            async with running(publisher.run(stop)) as [publishing]:
                # Flowing: every client has messages.
                await until(lambda: all(len(lst.got) >= 5 for lst in listeners), "first messages")
                publisher.phase = "down"
                private_redis.kill()
                # Publishes keep coming and are refused while Redis is gone.
                await until(lambda: publisher.count("down", 503) >= 30, "503s during the outage")
                # A client joining a channel nobody in its process listened to yet, and an
                # event stream, while Redis is down: they wait for it rather than fail.
                joiners = [Listener("c", "ws"), Listener("c", "sse")]
                joined = [asyncio.Event(), asyncio.Event()]
                joining = [
                    (listen_ws if j.kind == "ws" else listen_sse)(port, j, ready)
                    for j, ready in zip(joiners, joined, strict=True)
                ]
                joining_tasks = [asyncio.ensure_future(c) for c in joining]
                # A browser's EventSource reconnecting with Last-Event-ID while Redis is down:
                # the history can't be read. Not a 503 (EventSource would give up for good):
                # an empty stream setting the reconnection delay to Retry-After.
                async with httpx.AsyncClient(timeout=PATIENCE) as client:
                    resumed = await client.get(
                        f"http://127.0.0.1:{port}/rooms/a/events", headers={"Last-Event-ID": "1-0"}
                    )
                assert resumed.status_code == 200, resumed.text
                assert resumed.text == "retry: 5000\n\n"
                await until(lambda: publisher.count("down", 503) >= 60, "more 503s")
                private_redis.start()  # same port, empty: nothing was persisted
                publisher.phase = "restarted"
                await until(
                    lambda: publisher.count("restarted", 200) >= 1, "a publish accepted again"
                )
                # Late: a client that connects once Redis is back.
                late = Listener("a", "ws")
                late_ready = asyncio.Event()
                async with running(listen_ws(port, late, late_ready)):
                    await until(late_ready.is_set, "the late client to subscribe")
                    await until(lambda: all(e.is_set() for e in joined), "the joiners")
                    publisher.phase = "after"
                    await until(lambda: publisher.count("after", 200) >= 40, "publishes after")
                    stop.set()
                    await publishing
                    everyone = [*listeners, late, *joiners]
                    last = {room: publisher.accepted(room)[-1] for room in ROOMS}
                    await until(
                        lambda: all(
                            (lst.got and lst.got[-1] == last[lst.room]) or lst.error
                            for lst in everyone
                        ),
                        "every subscriber to receive the last message of its channel",
                    )
                    assert process.poll() is None, "the server process died"
                    for task in joining_tasks:
                        task.cancel()
                    await asyncio.gather(*joining_tasks, return_exceptions=True)
        # The same reconnection once Redis is back replays its history: what was published
        # since the restart (the old history died with the unpersisted Redis). A publish sent
        # while Redis was down can still be accepted, by the new Redis, when redis-py's
        # bounded retry outlasts the outage: it is in that history too, in publish order (the
        # publisher sends one at a time). None of the "down" ones reached the killed Redis:
        # each was sent after the kill had returned.
        expected = [
            n for phase in ("down", "restarted", "after") for n in publisher.accepted("a", phase)
        ]
        expected.sort()
        replayed: list[int] = []
        async with (
            httpx.AsyncClient(timeout=PATIENCE) as client,
            client.stream(
                "GET", f"http://127.0.0.1:{port}/rooms/a/events", headers={"Last-Event-ID": "1-0"}
            ) as response,
        ):
            lines = response.aiter_lines()
            while len(replayed) < len(expected):
                line = await asyncio.wait_for(anext(lines), PATIENCE)
                if line.startswith("data: "):
                    replayed.append(json.loads(line[6:])["n"])
        assert replayed == expected
        # The server is still whole: the same clients stayed connected throughout.
        assert [lst.error for lst in everyone] == [None] * len(everyone)

    output = process.stdout.read().decode() if process.stdout else ""
    statuses = {p.status for p in publisher.sent}
    assert statuses <= {200, 503}, (statuses, output)
    refused = [p for p in publisher.sent if p.status == 503]
    assert refused, "no publish saw the outage"
    assert all(p.retry_after == "5" for p in refused)
    assert "Traceback" not in output, output

    lost_before_kill: dict[str, int] = {}
    for lst in everyone:
        # In publish order, each message once.
        assert lst.got == sorted(set(lst.got)), (lst.kind, lst.room, lst.got)
        # Everything accepted once Redis was back and the client subscribed arrives.
        after = set(publisher.accepted(lst.room, "after"))
        assert after <= set(lst.got), (lst.kind, lst.room, sorted(after - set(lst.got)))
        if lst in joiners:
            # Joined while Redis was down: what was accepted once it was back arrives,
            # including what was published before this process had resubscribed.
            restarted = set(publisher.accepted(lst.room, "restarted"))
            assert restarted <= set(lst.got), (lst.kind, sorted(restarted - set(lst.got)))
        elif lst is not late:
            restarted = set(publisher.accepted(lst.room, "restarted"))
            assert restarted <= set(lst.got), (lst.kind, sorted(restarted - set(lst.got)))
            # Accepted by the Redis that was then killed, and never delivered: the loss.
            accepted = publisher.accepted(lst.room, "before") + publisher.accepted(lst.room, "down")
            missing = set(accepted) - set(lst.got)
            lost_before_kill[f"{lst.kind}-{lst.room}-{id(lst)}"] = len(missing)
    down_accepted = publisher.count("down", 200)
    figures = {
        "refused_503_while_down": len(refused),
        "accepted_while_down": down_accepted,
        "accepted_before_kill_never_delivered_max": max(lost_before_kill.values()),
        "published_total": len(publisher.sent),
        "slowest_503_s": round(max(p.took for p in refused), 2),
    }
    record_property("redis_restart", figures)
    print(f"{server}: {figures}")

    # Logged: once per outage and process (2 workers), not once per refused publish; the
    # reader's lines belong to no request.
    records = [json.loads(text) for text in output.splitlines() if text.startswith("{")]
    realtime = [line for line in records if line.get("logger") == "transom.realtime"]
    failed = [line for line in realtime if line["message"].startswith("publish to")]
    assert 1 <= len(failed) <= 2, failed
    assert any("publishing again" in line["message"] for line in realtime), realtime
    reader = [line for line in realtime if "subscription" in line["message"]]
    assert any("subscription lost" in line["message"] for line in reader), realtime
    assert any("subscriptions restored" in line["message"] for line in reader), realtime
    assert {line["request_id"] for line in reader} == {"-"}, reader
    assert any("replay deferred" in line["message"] for line in realtime), realtime
