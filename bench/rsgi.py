#!/usr/bin/env python3
"""Would serving Transom through granian's RSGI interface pay? The evaluation behind the
"Native RSGI" note in docs/performance.md.

``python bench/rsgi.py [--rounds 3] [--duration 5] [--only raw-asgi,transom-rsgi]``

Serves, each in turn on granian with one worker (rounds interleaved, the order rotating):
the raw ASGI floor (``--interface asgi``), a raw RSGI app doing the same by hand (``--interface
rsgi``), and the Transom bench apps (bare and with ``Security(app)``) both as ASGI and through
:class:`OnRSGI`, the adapter an ``App.__rsgi__`` would be: the core's request path works on an
ASGI scope, so RSGI's scope and header objects must become one, and the response's ASGI
messages RSGI calls. Loads ``/json`` and ``/html`` with ``wrk -t1 -c64`` and reports requests/s
and, steadier on a shared machine, the server's CPU time per request (user + system of its
process group, from /proc, over the wrk run).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import importlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from bench.apps.common import HELLO, HTML  # noqa: E402

_JSON = [("content-type", "application/json")]
_TEXT = [("content-type", "text/plain; charset=utf-8")]
_HTML = [("content-type", "text/html; charset=utf-8")]


class RawRSGI:
    """The RSGI floor: ``/json``, ``/plaintext`` and ``/html`` by hand."""

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        path = scope.path
        if path == "/json":
            proto.response_bytes(200, _JSON, orjson.dumps({"message": HELLO}))
        elif path == "/plaintext":
            proto.response_bytes(200, _TEXT, HELLO.encode())
        elif path == "/html":
            proto.response_bytes(200, _HTML, HTML.encode())
        else:
            proto.response_bytes(404, _JSON, b'{"detail":"Not Found"}')


class OnRSGI:
    """An ASGI app served through RSGI: what ``App.__rsgi__`` would have to do per request
    (build the ASGI scope and its byte headers, answer ``receive``, turn the messages sent
    into one RSGI call with text headers). HTTP only: enough to measure."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(self.app.startup())

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(self.app.shutdown())

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        path = scope.path
        client, _, client_port = scope.client.rpartition(":")
        server, _, server_port = scope.server.rpartition(":")
        asgi = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": scope.http_version,
            "method": scope.method,
            "scheme": scope.scheme,
            "path": unquote(path) if "%" in path else path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": scope.query_string.encode("latin-1"),
            "headers": [
                (k.encode("latin-1"), v.encode("latin-1")) for k, v in scope.headers.items()
            ],
            "client": (client, int(client_port)),
            "server": (server, int(server_port)),
        }
        read = False

        async def receive() -> dict[str, Any]:
            nonlocal read
            if read:  # the body was read: wait for the disconnect
                await proto.client_disconnect()
                return {"type": "http.disconnect"}
            read = True
            return {"type": "http.request", "body": await proto(), "more_body": False}

        start: list[dict[str, Any]] = []
        stream: list[Any] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.append(message)
                return
            body = message.get("body", b"")
            if not stream:
                head = start[0]
                headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in head["headers"]]
                if not message.get("more_body"):
                    proto.response_bytes(head["status"], headers, body)
                    return
                stream.append(proto.response_stream(head["status"], headers))
            if body:
                await stream[0].send_bytes(body)

        await self.app(asgi, receive, send)


def _on_rsgi(module: str) -> Callable[[], OnRSGI]:
    def make() -> OnRSGI:
        return OnRSGI(importlib.import_module(module).app)

    return make


raw = RawRSGI()
_lazy: dict[str, Callable[[], OnRSGI]] = {
    "transom": _on_rsgi("bench.apps.transom_app"),
    "transom_secure": _on_rsgi("bench.apps.transom_secure_app"),
}


def __getattr__(name: str) -> OnRSGI:
    # granian imports `bench.rsgi:transom`: build the app only in the server that serves it.
    if name in _lazy:
        return _lazy[name]()
    raise AttributeError(name)


TARGETS = {
    "raw-asgi": ("bench.apps.raw_asgi:app", "asgi"),
    "raw-rsgi": ("bench.rsgi:raw", "rsgi"),
    "transom-asgi": ("bench.apps.transom_app:app", "asgi"),
    "transom-rsgi": ("bench.rsgi:transom", "rsgi"),
    "secure-asgi": ("bench.apps.transom_secure_app:app", "asgi"),
    "secure-rsgi": ("bench.rsgi:transom_secure", "rsgi"),
}
ENDPOINTS = ("/json", "/html")


def _group_cpu(pgid: int) -> float:
    """User + system seconds of every process in the group ``pgid`` (granian and its worker)."""
    ticks = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(port: int, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _serve(name: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    target, interface = TARGETS[name]
    port = _free_port()
    command = [
        sys.executable, "-m", "granian", "--interface", interface, "--host", "127.0.0.1",
        "--port", str(port), "--workers", "1", "--log-level", "warning", target,
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, start_new_session=True
    )
    for _ in range(200):
        try:
            _get(port, "/json")
            return process, port
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    raise RuntimeError(f"{name} did not start")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--only", default=",".join(TARGETS))
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n]
    env = dict(os.environ, TRANSOM_SECRET_KEY="bench", TRANSOM_ACCESS_LOG="0")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "src")])
    rps: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    for round_ in range(args.rounds):
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in order:
            process, port = _serve(name, env)
            try:
                for path in ENDPOINTS:
                    if _get(port, path) != 200:
                        raise RuntimeError(f"{name} {path} failed")
                    url = f"http://127.0.0.1:{port}{path}"
                    subprocess.run(["wrk", "-t1", "-c64", "-d1s", url], capture_output=True)
                    before = _group_cpu(process.pid)
                    out = subprocess.run(
                        ["wrk", "-t1", "-c64", f"-d{args.duration}s", url],
                        capture_output=True,
                        text=True,
                    ).stdout
                    used = _group_cpu(process.pid) - before
                    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
                    count = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
                    rps.setdefault((name, path), []).append(rate)
                    cpu.setdefault((name, path), []).append(used / count * 1e6)
                    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
                    print(
                        f"round {round_ + 1} {name:13} {path:6} {rate:9.0f} req/s "
                        f"{used / count * 1e6:6.1f} µs CPU/req  (load {load})",
                        flush=True,
                    )
            finally:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(10)
    print("\n| app (granian) | " + " | ".join(f"{p} CPU µs/req" for p in ENDPOINTS) + " |")
    print("|---|" + "---|" * len(ENDPOINTS))
    for name in names:
        cells = [f"{min(cpu[(name, p)]):.1f}" for p in ENDPOINTS]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(json.dumps({f"{n} {p}": {"rps": rps[(n, p)], "cpu_us": cpu[(n, p)]} for n, p in rps}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
