#!/usr/bin/env python3
"""Where a single-query request's CPU goes in Transom, one layer at a time.

``python bench/db_layers.py [--requests 20000] [--rounds 3] [--concurrency 64]``
(needs ``bench/tfb/setup_postgres.sh``).

The TechEmpower ``/db`` endpoint is measured in-process (as ``bench/micro.py --concurrency``
does: CPU time per request with N requests in flight) next to variants of it that each add
one layer of what ``await session.get(World, id)`` does, from a handler that only borrows a
pooled connection and runs the ``SELECT`` (no session at all) up to the real endpoint, and
next to the raw asyncpg floor. The variants use Transom's internals directly, as the real
endpoint uses them; they exist to be measured, not to be copied into an app.

The differences between neighbouring rows are what each layer costs. Rounds are interleaved
(every variant once per round), and the table shows the median of the rounds, because this
machine's speed drifts within minutes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from random import randint
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH.parent / "src")]

from sqlalchemy import inspect  # noqa: E402
from sqlalchemy.util import await_only, greenlet_spawn  # noqa: E402

from bench.apps import tfb_transom  # noqa: E402
from bench.apps.tfb_transom import World  # noqa: E402
from bench.micro import _loop, asgi_lifespan, asgi_loop  # noqa: E402
from bench.run import ENDPOINTS_BY_NAME, Endpoint  # noqa: E402
from transom import Request  # noqa: E402
from transom.db import Session, get_database  # noqa: E402
from transom.db._fastget import _plans_of, _register  # noqa: E402
from transom.db._pool import TransomPool  # noqa: E402
from transom.db.sessions import DbSession  # noqa: E402

app = tfb_transom.app
_MAPPER = inspect(World)


def _pool(request: Request) -> TransomPool:
    pool = get_database(request.app).engine.sync_engine.pool
    assert isinstance(pool, TransomPool)
    return pool


async def _fetch(pool: TransomPool) -> Any:
    """Borrow a pooled connection, run the SELECT by primary key, give the connection back."""
    plan = _plans_of(pool._dialect)[_MAPPER]  # made by the /db warm-up
    assert plan is not None
    ident = randint(1, 10000)
    record, ready = await pool.borrow()
    if not ready:  # to be opened or pinged first: SQLAlchemy's checkout does that
        if record is not None:
            pool.hand_over(record)
        return await greenlet_spawn(_checkout_and_fetch, pool, plan.sql, ident)
    assert record is not None
    assert record.dbapi_connection is not None
    try:
        return await record.dbapi_connection.driver_connection.fetchrow(plan.sql, ident)
    finally:
        await pool.give_back(record)


def _checkout_and_fetch(pool: TransomPool, sql: str, ident: int) -> Any:
    connection = pool.connect()
    try:
        return await_only(connection.driver_connection.fetchrow(sql, ident))
    finally:
        connection.close()


def _register_row(session: DbSession, pool: TransomPool, row: Any) -> World:
    plan = _plans_of(pool._dialect)[_MAPPER]
    assert plan is not None
    world: World = _register(session.sync_session, _MAPPER, plan, row)
    return world


@app.get("/layer/pool")
async def pool_only(request: Request) -> dict[str, int]:
    row = await _fetch(_pool(request))
    return {"id": row[0], "randomNumber": row[1]}


@app.get("/layer/session")
async def with_session(request: Request) -> dict[str, int]:
    session = get_database(request.app).session()
    row = await _fetch(_pool(request))
    session.sync_session.close()
    return {"id": row[0], "randomNumber": row[1]}


@app.get("/layer/instance")
async def with_instance(request: Request) -> dict[str, int]:
    pool = _pool(request)
    session = get_database(request.app).session()
    world = _register_row(session, pool, await _fetch(pool))
    answer = {"id": world.id, "randomNumber": world.randomnumber}
    session.sync_session.close()
    return answer


@app.get("/layer/dependency")
async def with_dependency(request: Request, session: Session) -> dict[str, int]:
    pool = _pool(request)
    world = _register_row(session, pool, await _fetch(pool))
    return {"id": world.id, "randomNumber": world.randomnumber}


LAYERS: list[tuple[str, str]] = [
    ("/layer/pool", "Transom route; TransomPool.borrow + fetchrow + give_back; no session"),
    ("/layer/session", "+ a session made and closed in the handler"),
    ("/layer/instance", "+ the row made a persistent World in that session"),
    ("/layer/dependency", "the same, with the session from the Session dependency"),
    ("/db", "the real endpoint: await session.get(World, id)"),
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
    times: dict[str, list[float]] = {name: [] for name, *_ in runs}

    async def measure() -> None:
        await asgi_lifespan(app, "lifespan.startup")
        await asgi_lifespan(tfb_raw.app, "lifespan.startup")
        await asgi_loop(app, _endpoint("/db"), 64, 1)  # works out World's plan
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
