#!/usr/bin/env python3
"""Memory under sustained load: RSS of the server worker after start-up, after a warm-up and
then every ``--interval`` seconds of a bounded soak (``make bench-soak``).

``python bench/soak.py [--only transom,transom-secure] [--servers granian,uvicorn]
[--duration 600] [--interval 30] [--connections 16]``

Each framework/server pair is served with one worker (as ``run.py`` does) and loaded with wrk,
cycling through ``/json``, ``/html`` (where served), ``/plaintext`` and the typed POST, one
``--interval`` at a time; after each interval the RSS of every process of the server is read
from ``/proc`` (the largest is the worker). The growth is measured from the end of the
warm-up (allocators and caches settle there) to the end; ``flat`` means under
``--max-growth-mb``. Fewer connections than ``run.py`` (16, not 64) keep the load below the
peak, as a soak should: the point is memory over time, not throughput.

A short in-process version of the same check runs in the tests (``tests/test_soak.py``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT)]

from bench.run import (  # noqa: E402
    ENDPOINTS_BY_NAME,
    FRAMEWORKS,
    RESULTS,
    Endpoint,
    ServerFailed,
    free_port,
    kill_all_children,
    parse_wrk,
    run_wrk,
    server_command,
    serving,
    wrk_command,
)

PAGE = os.sysconf("SC_PAGE_SIZE")


def tree(root: int) -> list[int]:
    """``root`` and every process descended from it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: the fields start after the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def rss_mb(pid: int) -> float:
    try:
        resident = int((Path("/proc") / str(pid) / "statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return resident * PAGE / 2**20


def worker_rss(server_pid: int) -> float:
    """The RSS of the largest process of the server (its worker), in MiB."""
    return max((rss_mb(pid) for pid in tree(server_pid)), default=0.0)


def soak(
    framework: str, server: str, endpoints: list[Endpoint], args: argparse.Namespace
) -> dict[str, object]:
    fw = FRAMEWORKS[framework]
    served = [e for e in endpoints if e.served_by(framework)]
    port = free_port()
    command = server_command(fw.module, server, "app", port)
    log = RESULTS / "logs" / f"soak-{framework}-{server}.log"
    samples: list[tuple[float, float, int]] = []  # (seconds, MiB, requests so far)
    requests = 0
    with serving(command, port, served[0], log) as process:
        started = time.monotonic()
        after_start = worker_rss(process.pid)
        for endpoint in served:  # warm-up: every endpoint once under load
            out = run_wrk(wrk_command(endpoint, port, args.warmup, args.connections), args.warmup)
            requests += parse_wrk(out).requests
        after_warmup = worker_rss(process.pid)
        index = 0
        while time.monotonic() - started < args.duration:
            endpoint = served[index % len(served)]
            index += 1
            out = run_wrk(
                wrk_command(endpoint, port, args.interval, args.connections), args.interval
            )
            requests += parse_wrk(out).requests
            samples.append((time.monotonic() - started, worker_rss(process.pid), requests))
            print(
                f"  {framework}/{server} {samples[-1][0]:6.0f} s  {samples[-1][1]:7.1f} MiB  "
                f"{requests:>10,} requests",
                file=sys.stderr,
                flush=True,
            )
    end = samples[-1][1] if samples else after_warmup
    peak = max([after_warmup, *(s[1] for s in samples)])
    return {
        "target": f"{framework}/{server}",
        "start": after_start,
        "warm": after_warmup,
        "end": end,
        "peak": peak,
        "requests": requests,
        "growth": end - after_warmup,
        "command": " ".join(command),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--only", default="transom,transom-secure")
    parser.add_argument("--servers", default="granian,uvicorn")
    parser.add_argument("--endpoints", default="json,html,plaintext,typed")
    parser.add_argument("--duration", type=int, default=600, help="seconds of soak per target")
    parser.add_argument("--interval", type=int, default=30, help="seconds between RSS samples")
    parser.add_argument("--warmup", type=int, default=5, help="warm-up seconds per endpoint")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--max-growth-mb", type=float, default=10.0)
    args = parser.parse_args(argv)
    endpoints = [ENDPOINTS_BY_NAME[e] for e in args.endpoints.split(",") if e]
    (RESULTS / "logs").mkdir(parents=True, exist_ok=True)
    rows = []
    failed = False
    try:
        for framework in [f for f in args.only.split(",") if f]:
            for server in [s for s in args.servers.split(",") if s]:
                try:
                    rows.append(soak(framework, server, endpoints, args))
                except (ServerFailed, OSError, ValueError) as exc:
                    print(f"  {framework}/{server} failed: {exc}", file=sys.stderr)
                    failed = True
    finally:
        kill_all_children()
    print(
        f"## RSS of the worker (MiB): {args.duration} s soak, wrk -t1 -c{args.connections}, "
        f"{args.interval} s per endpoint in turn ({args.endpoints})\n"
    )
    print("| target | after start-up | after warm-up | end | peak | requests | growth | |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        growth = float(row["growth"])  # type: ignore[arg-type]
        flat = growth <= args.max_growth_mb
        failed = failed or not flat
        print(
            f"| {row['target']} | {row['start']:.1f} | {row['warm']:.1f} | {row['end']:.1f} "
            f"| {row['peak']:.1f} | {row['requests']:,} | {growth:+.1f} "
            f"| {'flat' if flat else 'GROWS'} |"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
