"""TechEmpower database tests in FastAPI the way its docs do it: SQLAlchemy async ORM sessions
from a yield dependency (a pool of 15 connections, as every framework here)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from random import randint
from typing import Annotated

from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse
from sqlalchemy import select, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .tfb_common import DATABASE_URL, POOL_SIZE, clamp_queries, render_fortunes


class Base(DeclarativeBase):
    pass


class World(Base):
    __tablename__ = "world"
    id: Mapped[int] = mapped_column(primary_key=True)
    randomnumber: Mapped[int]


class Fortune(Base):
    __tablename__ = "fortune"
    id: Mapped[int] = mapped_column(primary_key=True)
    message: Mapped[str]


engine = create_async_engine(
    make_url(DATABASE_URL).set(drivername="postgresql+asyncpg"),
    pool_size=POOL_SIZE,
    max_overflow=0,
)
SessionLocal = async_sessionmaker(engine, expire_on_commit=False)


async def get_session() -> AsyncIterator[AsyncSession]:
    async with SessionLocal() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    await engine.dispose()


app = FastAPI(lifespan=lifespan)


async def _world(session: AsyncSession) -> World:
    world = await session.get(World, randint(1, 10000))
    assert world is not None
    return world


@app.get("/db")
async def single_query(session: SessionDep) -> dict[str, int]:
    world = await _world(session)
    return {"id": world.id, "randomNumber": world.randomnumber}


@app.get("/queries")
async def queries(session: SessionDep, queries: str | None = None) -> list[dict[str, int]]:
    worlds = [await _world(session) for _ in range(clamp_queries(queries))]
    return [{"id": w.id, "randomNumber": w.randomnumber} for w in worlds]


@app.get("/fortunes", response_class=HTMLResponse)
async def fortunes(session: SessionDep) -> HTMLResponse:
    rows = [(f.id, f.message) for f in await session.scalars(select(Fortune))]
    return HTMLResponse(render_fortunes(rows))


@app.get("/updates")
async def updates(session: SessionDep, queries: str | None = None) -> list[dict[str, int]]:
    worlds = [await _world(session) for _ in range(clamp_queries(queries))]
    new = {world.id: randint(1, 10000) for world in worlds}  # a repeated id keeps its last
    # Batched as the Transom app does: the ORM bulk UPDATE by primary key, in id order.
    await session.execute(
        update(World), [{"id": i, "randomnumber": n} for i, n in sorted(new.items())]
    )
    await session.commit()
    return [{"id": w.id, "randomNumber": new[w.id]} for w in worlds]
