#!/usr/bin/env python3
"""Where a single-query request's CPU goes in Transom, one layer at a time.

``python bench/db_layers.py [--requests 20000] [--rounds 3] [--concurrency 64]``
(needs ``bench/tfb/setup_postgres.sh``).

The TechEmpower ``/db`` endpoint is measured in-process (as ``bench/micro.py --concurrency``
does: CPU time per request with N requests in flight) next to variants of it that each add
one layer of what ``await session.get(World, id)`` does, from a handler that checks out a
pooled connection and runs the ``SELECT`` on the driver up to the real endpoint, and next to
the raw asyncpg floor. Every variant uses SQLAlchemy's public API only.

The differences between neighbouring rows are what each layer costs. Rounds are interleaved
(every variant once per round), and the table shows the median of the rounds, because this
machine's speed drifts within minutes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from random import randint
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH.parent / "src")]
# Before the bench app is imported (its Settings read the environment when it is built): as
# bench/micro.py and bench/run.py, no access log, or every row would pay for writing one.
os.environ.setdefault("TRANSOM_SECRET_KEY", "bench")
os.environ.setdefault("TRANSOM_ACCESS_LOG", "0")

from sqlalchemy import select  # noqa: E402

from bench.apps import tfb_transom  # noqa: E402
from bench.apps.tfb_transom import World  # noqa: E402
from bench.micro import _loop, asgi_lifespan, asgi_loop  # noqa: E402
from bench.run import ENDPOINTS_BY_NAME, Endpoint  # noqa: E402
from transom import Request  # noqa: E402
from transom.db import DbSessionDep, get_database  # noqa: E402

app = tfb_transom.app
_SQL = "SELECT id, randomnumber FROM world WHERE id = $1"


@app.get("/layer/driver")
async def driver_only(request: Request) -> dict[str, int]:
    async with get_database(request.app).engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert raw.driver_connection is not None
        row = await raw.driver_connection.fetchrow(_SQL, randint(1, 10000))
    return {"id": row[0], "randomNumber": row[1]}


@app.get("/layer/core")
async def core(request: Request) -> dict[str, int]:
    async with get_database(request.app).engine.connect() as conn:
        stmt = select(World.id, World.randomnumber).where(World.id == randint(1, 10000))
        row = (await conn.execute(stmt)).one()
    return {"id": row[0], "randomNumber": row[1]}


@app.get("/layer/orm")
async def orm(request: Request) -> dict[str, int]:
    async with get_database(request.app).session() as session:
        world = await session.get(World, randint(1, 10000))
        assert world is not None
        return {"id": world.id, "randomNumber": world.randomnumber}


@app.get("/layer/dependency")
async def with_dependency(session: DbSessionDep) -> dict[str, int]:
    world = await session.get(World, randint(1, 10000))
    assert world is not None
    return {"id": world.id, "randomNumber": world.randomnumber}


LAYERS: list[tuple[str, str]] = [
    ("/layer/driver", "Transom route; SQLAlchemy checkout + asyncpg fetchrow + checkin"),
    ("/layer/core", "+ Core: select() executed on the AsyncConnection"),
    ("/layer/orm", "+ ORM: a session made in the handler, session.get(World, id), close"),
    ("/layer/dependency", "the same, with the session from the DbSessionDep dependency"),
    ("/db", "the real endpoint (as /layer/dependency)"),
]


def _endpoint(path: str) -> Endpoint:
    db = ENDPOINTS_BY_NAME["db"]
    return Endpoint(path, "app", "GET", path, db.expect_type, b"", suite="tfb", check=db.check)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args(argv)
    from bench.apps import tfb_raw

    runs: list[tuple[str, str, Callable[..., Any], Endpoint]] = [
        ("raw asyncpg (floor)", "bench/apps/tfb_raw.py", tfb_raw.app, _endpoint("/db"))
    ]
    runs += [(path, what, app, _endpoint(path)) for path, what in LAYERS]

    async def prepare() -> None:
        await asgi_loop(app, _endpoint("/db"), 64, 1)  # opens the pool's connections

    return run_layers(app, runs, args, prepare)


#: One measured variant: (name, what it does, the ASGI app, the endpoint it is loaded on).
Run = tuple[str, str, Callable[..., Any], Endpoint]


def run_layers(
    layer_app: Callable[..., Any],
    runs: list[Run],
    args: argparse.Namespace,
    prepare: Callable[[], Awaitable[None]],
) -> int:
    """Start ``layer_app`` and the raw floor, run ``prepare``, then measure every run in
    ``args.rounds`` interleaved rounds and print the table (median CPU µs per request, and what
    each row adds to the previous one). Shared with ``bench/tfb_layers.py``."""
    from bench.apps import tfb_raw

    times: dict[str, list[float]] = {name: [] for name, *_ in runs}

    async def measure() -> None:
        await asgi_lifespan(layer_app, "lifespan.startup")
        await asgi_lifespan(tfb_raw.app, "lifespan.startup")
        await prepare()
        for _ in range(args.rounds):
            for name, _what, target, endpoint in runs:
                seconds, _ = await asgi_loop(target, endpoint, args.requests, args.concurrency)
                times[name].append(seconds * 1e6)
                print(f"  {name}: {seconds * 1e6:.1f}", file=sys.stderr)

    _loop().run_until_complete(measure())
    print(
        f"## CPU microseconds per request, {args.concurrency} in flight, "
        f"median of {args.rounds} interleaved rounds\n"
    )
    print("| handler | what it does | µs | + over previous row |")
    print("|---|---|---|---|")
    previous: float | None = None
    for name, what, *_ in runs:
        median = statistics.median(times[name])
        step = "" if previous is None or name.startswith("raw") else f"{median - previous:+.1f}"
        print(f"| `{name}` | {what} | {median:.1f} | {step} |")
        previous = median
    return 0


if __name__ == "__main__":
    sys.exit(main())
