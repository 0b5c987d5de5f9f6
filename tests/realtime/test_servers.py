"""WebSockets and server-sent events on real servers (granian, uvicorn) with real clients
(the ``websockets`` library, httpx), and two server processes sharing Redis."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from sqlalchemy import create_engine
from websockets.exceptions import ConnectionClosed, InvalidStatus

from _services import remove_redis_keys as _remove_keys
from _services import require_service
from auth.conftest import tables
from test_cli import _free_port, serving
from transom.db import Model
from transom.db.config import sync_url

pytestmark = pytest.mark.anyio
HERE = Path(__file__).parent
REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A folder with the app as app.py, its SQLite database, and a Redis key prefix."""
    require_service("Redis", "127.0.0.1", 6379)
    folder = tmp_path_factory.mktemp("realtime-servers")
    shutil.copy(HERE / "server_app.py", folder / "app.py")
    db_url = f"sqlite+aiosqlite:///{folder / 'app.sqlite3'}"
    engine = create_engine(sync_url(db_url))
    Model.metadata.create_all(engine, tables=tables())
    engine.dispose()
    prefix = f"transom-test-rt-srv-{uuid.uuid4().hex[:10]}"
    yield folder, prefix
    asyncio.run(_remove_keys(prefix))


@contextlib.contextmanager
def run_server(
    project: tuple[Path, str], server: str
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    folder, prefix = project
    port = _free_port()
    command = [sys.executable, "-m", "transom.cli", "run", "--no-debug", "--no-reload"]
    command += ["--port", str(port), "--server", server]
    env = {
        **__import__("os").environ,
        "RT_DB_URL": f"sqlite+aiosqlite:///{folder / 'app.sqlite3'}",
        "RT_CHANNELS_URL": REDIS,
        "RT_PREFIX": prefix,
        "TRANSOM_ACCESS_LOG": "0",
    }
    with serving(command, folder, port, env) as process:
        yield port, process


@pytest.fixture(scope="module", params=["granian", "uvicorn"])
def server(request: pytest.FixtureRequest, project: tuple[Path, str]) -> Iterator[int]:
    with run_server(project, request.param) as (port, _):
        yield port


async def close_code(ws: Any) -> int:
    """Read until the server closes; its close code."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 20)
    except ConnectionClosed as exc:
        received = exc.rcvd
    if received is None:
        pytest.fail("the connection ended without a close frame from the server")
    return int(received.code)


async def login(port: int) -> tuple[str, str]:
    """The session cookie header and a bearer token for alice."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        response = await client.get("/test-login")
        assert response.status_code == 200, response.text
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        return cookie, response.json()["token"]


async def test_session_and_token_handshakes(server: int) -> None:
    cookie, token = await login(server)
    url = f"ws://127.0.0.1:{server}/me"
    async with websockets.connect(url, additional_headers={"Cookie": cookie}) as ws:
        assert json.loads(await ws.recv()) == {"username": "alice"}
    bearer = {"Authorization": f"Bearer {token}"}
    async with websockets.connect(url, additional_headers=bearer) as ws:
        assert json.loads(await ws.recv()) == {"username": "alice"}
    # Nobody: refused before accept (401 where the server passes denials on, else 403).
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(url):
            pass
    assert refused.value.response.status_code in (401, 403)


async def test_foreign_origin_refused_own_origin_accepted(server: int) -> None:
    cookie, _ = await login(server)
    url = f"ws://127.0.0.1:{server}/me"
    # A page on another site opening a WebSocket to us: the browser sends our cookie along.
    evil = {"Cookie": cookie, "Origin": "https://evil.example"}
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(url, additional_headers=evil):
            pass
    assert refused.value.response.status_code == 403
    own = {"Cookie": cookie, "Origin": f"http://127.0.0.1:{server}"}
    async with websockets.connect(url, additional_headers=own) as ws:
        assert json.loads(await ws.recv()) == {"username": "alice"}


async def test_oversize_1009_bad_json_1007_and_disconnect(server: int) -> None:
    async with websockets.connect(f"ws://127.0.0.1:{server}/echo") as ws:
        await ws.send("x" * 1024)
        assert await ws.recv() == "x" * 1024
        await ws.send("x" * 1025)
        assert await close_code(ws) == 1009
    async with websockets.connect(f"ws://127.0.0.1:{server}/moves") as ws:
        await ws.send('{"x": 1, "y": 2}')
        assert json.loads(await ws.recv()) == {"x": 1, "y": 2}
        await ws.send("{oops")
        assert await close_code(ws) == 1007
    async with websockets.connect(f"ws://127.0.0.1:{server}/moves") as ws:
        await ws.send('{"x": "left", "y": 2}')
        assert await close_code(ws) == 1007
    # A client that just goes away; the server keeps serving.
    ws = await websockets.connect(f"ws://127.0.0.1:{server}/echo")
    ws.transport.abort()
    async with websockets.connect(f"ws://127.0.0.1:{server}/echo") as ws:
        await ws.send("still here")
        assert await ws.recv() == "still here"


async def test_sse_stream_over_http(server: int) -> None:
    async with (
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{server}") as client,
        client.stream("GET", "/ticks", headers={"Last-Event-ID": "5"}) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-accel-buffering"] == "no"
        assert response.headers["cache-control"] == "no-cache"
        body = (await response.aread()).decode()
    assert body == ('id: 6\ndata: {"n":6}\n\nid: 7\ndata: {"n":7}\n\nid: 8\ndata: {"n":8}\n\n')


@pytest.fixture(scope="module")
def two_servers(project: tuple[Path, str]) -> Iterator[tuple[int, int]]:
    with (
        run_server(project, "granian") as (first, _),
        run_server(project, "uvicorn") as (second, _),
    ):
        yield first, second


async def ready(ws: Any) -> int:
    hello = json.loads(await asyncio.wait_for(ws.recv(), 20))
    return int(hello["ready"])


async def test_publish_through_one_process_reaches_the_other_in_order(
    two_servers: tuple[int, int],
) -> None:
    first, second = two_servers
    room = f"ws://127.0.0.1:{{}}/rooms/{uuid.uuid4().hex[:8]}"
    async with (
        websockets.connect(room.format(first)) as talker,
        websockets.connect(room.format(second)) as listener,
    ):
        talker_pid, listener_pid = await ready(talker), await ready(listener)
        assert talker_pid != listener_pid
        for n in range(50):
            await talker.send(str(n))
        got = [json.loads(await asyncio.wait_for(listener.recv(), 20)) for _ in range(50)]
        assert [m["said"] for m in got] == [str(n) for n in range(50)]
        assert {m["via"] for m in got} == {talker_pid}


async def test_sse_subscriber_on_the_other_process(two_servers: tuple[int, int]) -> None:
    first, second = two_servers
    name = uuid.uuid4().hex[:8]
    async with (
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{second}", timeout=20) as client,
        client.stream("GET", f"/rooms/{name}/events") as response,
        websockets.connect(f"ws://127.0.0.1:{first}/rooms/{name}") as talker,
    ):
        await ready(talker)
        await talker.send("hello")
        lines = response.aiter_lines()
        data = None
        while data is None:
            line = await asyncio.wait_for(anext(lines), 20)
            if line.startswith("data: "):
                data = json.loads(line[6:])
        assert data["said"] == "hello"


# uvicorn only: granian 2.8 was seen, on SIGTERM with a WebSocket open, to send 1001 (the app's
# shutdown ran first), to drop the connection without a close frame, or to hang in "Stopping
# worker" -- behaviour of the server, not something the app can change.
async def test_sigterm_closes_websockets_1001_and_ends_event_streams(
    project: tuple[Path, str],
) -> None:
    with run_server(project, "uvicorn") as (port, process):
        ws = await websockets.connect(f"ws://127.0.0.1:{port}/echo")
        await ws.send("hi")
        assert await ws.recv() == "hi"
        async with (
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as client,
            client.stream("GET", "/rooms/quiet/events") as stream,
        ):
            assert stream.status_code == 200
            # SIGTERM, as an orchestrator stops a server.
            process.send_signal(signal.SIGTERM)
            assert await close_code(ws) == 1001
            # The stream (which never ends by itself) ends, so the server is not held up.
            assert [line async for line in stream.aiter_lines()] == []
        # ... and the server exits (bounded: 20 s) instead of waiting on the connections.
        await asyncio.to_thread(process.wait, 20)
