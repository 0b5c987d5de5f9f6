"""TechEmpower database tests in Transom: ``transom.db`` models and the per-request DbSessionDep.

Everything is the battery's defaults but the pool: 15 connections and no overflow, as every
framework here (with the default 5 + 10 overflow, 64 concurrent requests open and close
overflow connections all the time, and connecting dominates the profile).
"""

from __future__ import annotations

from random import randint

from sqlalchemy import select, update
from sqlalchemy.orm import Mapped, mapped_column

from transom import App, HTMLResponse, Settings
from transom.db import Database, DatabaseConfig, DbSessionDep, Model

from .tfb_common import DATABASE_URL, POOL_SIZE, clamp_queries, render_fortunes


class World(Model):
    __tablename__ = "world"
    id: Mapped[int] = mapped_column(primary_key=True)
    randomnumber: Mapped[int]


class Fortune(Model):
    __tablename__ = "fortune"
    id: Mapped[int] = mapped_column(primary_key=True)
    message: Mapped[str]


app = App(settings=Settings(secret_key="bench"))
app.install(Database(DatabaseConfig(url=DATABASE_URL, pool_size=POOL_SIZE, max_overflow=0)))


async def _world(session: DbSessionDep) -> World:
    world = await session.get(World, randint(1, 10000))
    assert world is not None
    return world


@app.get("/db")
async def single_query(session: DbSessionDep) -> dict[str, int]:
    world = await _world(session)
    return {"id": world.id, "randomNumber": world.randomnumber}


@app.get("/queries")
async def queries(session: DbSessionDep, queries: str | None = None) -> list[dict[str, int]]:
    worlds = [await _world(session) for _ in range(clamp_queries(queries))]
    return [{"id": w.id, "randomNumber": w.randomnumber} for w in worlds]


@app.get("/fortunes")
async def fortunes(session: DbSessionDep) -> HTMLResponse:
    rows = [(f.id, f.message) for f in await session.scalars(select(Fortune))]
    return HTMLResponse(render_fortunes(rows))


@app.get("/updates")
async def updates(session: DbSessionDep, queries: str | None = None) -> list[dict[str, int]]:
    worlds = [await _world(session) for _ in range(clamp_queries(queries))]
    # A repeated id keeps its last number, as the other apps do.
    new = {world.id: randint(1, 10000) for world in worlds}
    # TechEmpower allows batching the writes: SQLAlchemy's ORM bulk UPDATE by primary key (one
    # executemany), sorted so that concurrent transactions take the row locks in one order.
    # The DbSessionDep commits it before the response is sent.
    await session.execute(
        update(World), [{"id": i, "randomnumber": n} for i, n in sorted(new.items())]
    )
    return [{"id": w.id, "randomNumber": new[w.id]} for w in worlds]
