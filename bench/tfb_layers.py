#!/usr/bin/env python3
"""Where the CPU of ``/queries``, ``/fortunes`` and ``/updates`` goes in Transom, layer by layer.

``python bench/tfb_layers.py [--endpoints fortunes,queries,updates] [--requests 2000]
[--rounds 3] [--concurrency 8]`` (needs ``bench/tfb/setup_postgres.sh``).

As ``bench/db_layers.py`` does for ``/db``: each endpoint is measured in-process (CPU time per
request with N requests in flight) next to variants that each add one layer of what the real
endpoint does, from a handler that checks out a pooled connection and runs the SQL on the
driver, through Core on the connection and on the request's session, up to the ORM, and next
to the raw asyncpg floor. Every variant uses SQLAlchemy's public API only. Rounds are
interleaved and the table shows the median, because this machine's speed drifts within
minutes.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from random import randint
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH.parent / "src")]
# Before the bench app is imported (its Settings read the environment when it is built).
os.environ.setdefault("TRANSOM_SECRET_KEY", "bench")
os.environ.setdefault("TRANSOM_ACCESS_LOG", "0")

from sqlalchemy import bindparam, select, update  # noqa: E402

from bench.apps import tfb_transom  # noqa: E402
from bench.apps.tfb_common import clamp_queries, render_fortunes  # noqa: E402
from bench.apps.tfb_transom import Fortune, World  # noqa: E402
from bench.db_layers import run_layers  # noqa: E402
from bench.micro import asgi_loop  # noqa: E402
from bench.run import ENDPOINTS_BY_NAME, Endpoint  # noqa: E402
from transom import HTMLResponse, Request  # noqa: E402
from transom.db import DbSessionDep, get_database  # noqa: E402

app = tfb_transom.app
_WORLD_SQL = "SELECT id, randomnumber FROM world WHERE id = $1"
_FORTUNE_SQL = "SELECT id, message FROM fortune"
#: The 12 fortunes, read once at start-up (the check wants the database's own rows).
_FIXED_FORTUNES: list[tuple[int, str]] = []
_WORLD_BY_ID = select(World.id, World.randomnumber).where(World.id == bindparam("id"))
_WORLD_TABLE = World.__table__
#: The same SELECT from the Table's columns: a plain Core statement, no ORM entity in it.
_WORLD_BY_ID_TABLE = select(_WORLD_TABLE.c.id, _WORLD_TABLE.c.randomnumber).where(
    _WORLD_TABLE.c.id == bindparam("id")
)
#: The entity by primary key, built once (what session.get builds on every call).
_WORLD_ENTITY_BY_ID = select(World).where(World.id == bindparam("id"))


# --- fortunes -------------------------------------------------------------------------------


@app.get("/layer/fortunes/render")
async def fortunes_render() -> HTMLResponse:
    """No database: sort and render 13 fixed rows, and Transom's HTMLResponse."""
    return HTMLResponse(render_fortunes(list(_FIXED_FORTUNES)))


@app.get("/layer/fortunes/driver")
async def fortunes_driver(request: Request) -> HTMLResponse:
    async with get_database(request.app).engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert raw.driver_connection is not None
        rows = await raw.driver_connection.fetch(_FORTUNE_SQL)
    return HTMLResponse(render_fortunes([(r[0], r[1]) for r in rows]))


@app.get("/layer/fortunes/core")
async def fortunes_core(request: Request) -> HTMLResponse:
    async with get_database(request.app).engine.connect() as conn:
        result = await conn.execute(select(Fortune.id, Fortune.message))
        rows = [(r[0], r[1]) for r in result]
    return HTMLResponse(render_fortunes(rows))


@app.get("/layer/fortunes/session-core")
async def fortunes_session_core(session: DbSessionDep) -> HTMLResponse:
    result = await session.execute(select(Fortune.id, Fortune.message))
    return HTMLResponse(render_fortunes([(r[0], r[1]) for r in result]))


# --- queries --------------------------------------------------------------------------------


@app.get("/layer/queries/driver")
async def queries_driver(request: Request, queries: str | None = None) -> list[dict[str, int]]:
    out = []
    async with get_database(request.app).engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert raw.driver_connection is not None
        for _ in range(clamp_queries(queries)):
            row = await raw.driver_connection.fetchrow(_WORLD_SQL, randint(1, 10000))
            out.append({"id": row[0], "randomNumber": row[1]})
    return out


@app.get("/layer/queries/core")
async def queries_core(request: Request, queries: str | None = None) -> list[dict[str, int]]:
    out = []
    async with get_database(request.app).engine.connect() as conn:
        for _ in range(clamp_queries(queries)):
            row = (await conn.execute(_WORLD_BY_ID, {"id": randint(1, 10000)})).one()
            out.append({"id": row[0], "randomNumber": row[1]})
    return out


@app.get("/layer/queries/session-core")
async def queries_session_core(
    session: DbSessionDep, queries: str | None = None
) -> list[dict[str, int]]:
    out = []
    for _ in range(clamp_queries(queries)):
        row = (await session.execute(_WORLD_BY_ID, {"id": randint(1, 10000)})).one()
        out.append({"id": row[0], "randomNumber": row[1]})
    return out


@app.get("/layer/queries/session-table")
async def queries_session_table(
    session: DbSessionDep, queries: str | None = None
) -> list[dict[str, int]]:
    out = []
    for _ in range(clamp_queries(queries)):
        row = (await session.execute(_WORLD_BY_ID_TABLE, {"id": randint(1, 10000)})).one()
        out.append({"id": row[0], "randomNumber": row[1]})
    return out


@app.get("/layer/queries/session-entity-stmt")
async def queries_session_entity_stmt(
    session: DbSessionDep, queries: str | None = None
) -> list[dict[str, int]]:
    out = []
    for _ in range(clamp_queries(queries)):
        world = (await session.scalars(_WORLD_ENTITY_BY_ID, {"id": randint(1, 10000)})).one()
        out.append({"id": world.id, "randomNumber": world.randomnumber})
    return out


# --- updates --------------------------------------------------------------------------------


@app.get("/layer/updates/reads-only")
async def updates_reads_only(
    session: DbSessionDep, queries: str | None = None
) -> list[dict[str, int]]:
    """The 20 ORM gets and the answer, no write: what every variant below adds to."""
    ids = [randint(1, 10000) for _ in range(clamp_queries(queries))]
    for ident in ids:
        await session.get(World, ident)
    new = {ident: randint(1, 10000) for ident in ids}
    return [{"id": i, "randomNumber": new[i]} for i in ids]


@app.get("/layer/updates/unit-of-work")
async def updates_unit_of_work(
    session: DbSessionDep, queries: str | None = None
) -> list[dict[str, int]]:
    """What /updates did before: change the loaded objects, the session's flush writes them."""
    worlds = [await session.get(World, randint(1, 10000)) for _ in range(clamp_queries(queries))]
    for world in worlds:
        assert world is not None
        world.randomnumber = randint(1, 10000)
    return [{"id": w.id, "randomNumber": w.randomnumber} for w in worlds if w is not None]


@app.get("/layer/updates/core-executemany")
async def updates_core(session: DbSessionDep, queries: str | None = None) -> list[dict[str, int]]:
    """20 ORM gets, then a Core ``update().where(id == bindparam)`` executemany."""
    ids = [randint(1, 10000) for _ in range(clamp_queries(queries))]
    for ident in ids:
        await session.get(World, ident)
    new = {ident: randint(1, 10000) for ident in ids}
    stmt = (
        update(World.__table__)  # type: ignore[arg-type]
        .where(World.__table__.c.id == bindparam("b_id"))
        .values(randomnumber=bindparam("b_rn"))
    )
    await session.execute(stmt, [{"b_id": i, "b_rn": n} for i, n in sorted(new.items())])
    return [{"id": i, "randomNumber": new[i]} for i in ids]


@app.get("/layer/updates/orm-bulk")
async def updates_orm_bulk(
    session: DbSessionDep, queries: str | None = None
) -> list[dict[str, int]]:
    """20 ORM gets, then the ORM's bulk UPDATE by primary key (one executemany)."""
    ids = [randint(1, 10000) for _ in range(clamp_queries(queries))]
    for ident in ids:
        await session.get(World, ident)
    new = {ident: randint(1, 10000) for ident in ids}
    await session.execute(
        update(World), [{"id": i, "randomnumber": n} for i, n in sorted(new.items())]
    )
    return [{"id": i, "randomNumber": new[i]} for i in ids]


LAYERS: dict[str, list[tuple[str, str]]] = {
    "fortunes": [
        ("/layer/fortunes/render", "no database: sort + render 13 rows + HTMLResponse"),
        ("/layer/fortunes/driver", "+ SQLAlchemy checkout, asyncpg fetch of 12 rows, checkin"),
        ("/layer/fortunes/core", "+ Core: select(id, message) on the AsyncConnection"),
        ("/layer/fortunes/session-core", "the same on the request's session (DbSessionDep)"),
        ("/fortunes", "the real endpoint"),
    ],
    "queries": [
        ("/layer/queries/driver", "Transom route; SQLAlchemy checkout + 20 asyncpg fetchrow"),
        ("/layer/queries/core", "+ Core: 20 executions of one select(bindparam) on the conn"),
        ("/layer/queries/session-core", "the same on the request's session (DbSessionDep)"),
        ("/layer/queries/session-table", "the same from the Table's columns (no ORM entity)"),
        ("/layer/queries/session-entity-stmt", "ORM entities: one select(World) built once"),
        ("/queries", "the real endpoint: 20 session.get"),
    ],
    "updates": [
        ("/layer/updates/reads-only", "20 session.get, no write (the check ignores the table)"),
        ("/layer/updates/unit-of-work", "20 session.get, changed objects flushed at commit"),
        ("/layer/updates/core-executemany", "20 session.get + Core update(bindparam) executemany"),
        ("/layer/updates/orm-bulk", "20 session.get + ORM bulk UPDATE by primary key"),
        ("/updates", "the real endpoint"),
    ],
}


def _endpoint(name: str, path: str) -> Endpoint:
    real = ENDPOINTS_BY_NAME[name]
    query = real.path.partition("?")[2]
    full = f"{path}?{query}" if query else path
    return Endpoint(full, "app", "GET", full, real.expect_type, b"", suite="tfb", check=real.check)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--endpoints", default="fortunes,queries,updates")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)
    from bench.apps import tfb_raw

    runs: list[tuple[str, str, Callable[..., Any], Endpoint]] = []
    for name in args.endpoints.split(","):
        real = ENDPOINTS_BY_NAME[name]
        runs.append((f"raw {name}", "bench/apps/tfb_raw.py (floor)", tfb_raw.app, real))
        runs += [(p, what, app, _endpoint(name, p)) for p, what in LAYERS[name]]

    async def prepare() -> None:
        assert tfb_raw._pool is not None
        _FIXED_FORTUNES[:] = [(r[0], r[1]) for r in await tfb_raw._pool.fetch(_FORTUNE_SQL)]
        await asgi_loop(app, ENDPOINTS_BY_NAME["db"], 64, 1)  # opens the pool's connections

    return run_layers(app, runs, args, prepare)


if __name__ == "__main__":
    sys.exit(main())
