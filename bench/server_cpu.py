#!/usr/bin/env python3
"""The server's CPU time per request under wrk, per app, server and endpoint.

``python bench/server_cpu.py [--only raw,raw_headers,transom,transom-secure]
[--servers granian,uvicorn]
[--endpoints json,html,typed] [--rounds 3] [--duration 4]``

Each app is served with one worker (the commands of ``bench/run.py``) and loaded with
``wrk -t1 -c64``; the user + system time of the server's process group over the run, divided by
the requests served, is what one request costs the worker, server included. Other load on a
shared machine changes requests/s far more than this. With a worker that is CPU-bound, the
throughput ratio of two apps is the inverse ratio of these figures: it gives the budget a
framework has for a target ratio (``docs/performance.md``).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from bench.rsgi import _free_port, _get, _group_cpu  # noqa: E402
from bench.run import (  # noqa: E402
    ENDPOINTS_BY_NAME,
    FRAMEWORKS,
    WRK_SCRIPTS,
    Endpoint,
    server_command,
)


def _wrk(port: int, endpoint: Endpoint, seconds: int) -> str:
    command = ["wrk", "-t1", "-c64", f"-d{seconds}s"]
    if endpoint.script:
        command += ["-s", str(WRK_SCRIPTS / endpoint.script)]
    command.append(f"http://127.0.0.1:{port}{endpoint.path}")
    if endpoint.script_args:
        command += ["--", *endpoint.script_args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def measure(
    framework: str, server: str, endpoints: Sequence[Endpoint], seconds: int
) -> dict[str, tuple[float, float]]:
    """``{endpoint: (CPU µs per request, requests/s)}`` for one app on one server."""
    # A framework of bench/run.py, or a module of bench/apps serving ``app`` (raw_headers).
    module = FRAMEWORKS[framework].module if framework in FRAMEWORKS else f"bench.apps.{framework}"
    assert module is not None
    port = _free_port()
    env = dict(os.environ, TRANSOM_SECRET_KEY="bench", TRANSOM_ACCESS_LOG="0")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "src")])
    process = subprocess.Popen(
        server_command(module, server, "app", port),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        for _ in range(200):
            try:
                _get(port, "/json")
                break
            except OSError:
                time.sleep(0.1)
        out: dict[str, tuple[float, float]] = {}
        for endpoint in endpoints:
            _wrk(port, endpoint, 1)  # warm-up
            before = _group_cpu(process.pid)
            report = _wrk(port, endpoint, seconds)
            used = _group_cpu(process.pid) - before
            count = int(re.search(r"(\d+) requests in", report).group(1))  # type: ignore[union-attr]
            rate = float(re.search(r"Requests/sec:\s+([\d.]+)", report).group(1))  # type: ignore[union-attr]
            if "Non-2xx" in report:
                raise RuntimeError(f"{framework}/{server} {endpoint.name}: non-2xx answers")
            out[endpoint.name] = (used / count * 1e6, rate)
        return out
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--only", default="raw,raw_headers,transom,transom-secure")
    parser.add_argument("--servers", default="granian,uvicorn")
    parser.add_argument("--endpoints", default="json,html,typed")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=4)
    args = parser.parse_args(argv)
    frameworks = [f for f in args.only.split(",") if f]
    servers = [s for s in args.servers.split(",") if s]
    endpoints = [ENDPOINTS_BY_NAME[e] for e in args.endpoints.split(",") if e]
    best: dict[tuple[str, str, str], float] = {}
    for round_ in range(args.rounds):
        for server in servers:
            order = frameworks[round_ % len(frameworks) :] + frameworks[: round_ % len(frameworks)]
            for framework in order:
                for name, (cpu, rate) in measure(
                    framework, server, endpoints, args.duration
                ).items():
                    key = (framework, server, name)
                    best[key] = min(cpu, best.get(key, cpu))
                    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
                    print(
                        f"round {round_ + 1} {framework:15} {server:8} {name:6} {rate:8.0f} "
                        f"req/s {cpu:6.1f} µs CPU/req (load {load})",
                        file=sys.stderr,
                        flush=True,
                    )
    names = [e.name for e in endpoints]
    print("\n| app | server | " + " | ".join(f"{n} µs CPU/req" for n in names) + " |")
    print("|---|---|" + "---|" * len(names))
    for framework in frameworks:
        for server in servers:
            cells = [f"{best[framework, server, n]:.1f}" for n in names]
            print(f"| {framework} | {server} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
