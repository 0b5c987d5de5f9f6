#!/usr/bin/env python3
"""A REST list and create: ``transom.rest.ModelResource`` next to FastAPI + SQLAlchemy.

``python bench/rest.py [--requests 2000] [--rounds 3] [--concurrency 16]``
(needs PostgreSQL on 127.0.0.1:5432, user postgres; ``BENCH_REST_URL`` to use another server;
FastAPI from the ``bench`` extra).

Both apps serve ``GET /posts?limit=20`` (20 posts, each with its author and tags nested, the
total counted, ``links``) and ``POST /posts`` (validate, load the tags, insert, answer 201 with
the post as stored) from the same tables in a throw-away database, same pool size, no
middleware on either. The FastAPI app is written by hand the way its docs suggest
(``Depends`` session, Pydantic ``response_model`` with ``from_attributes``, ``joinedload`` /
``selectinload``). Requests run in-process (no server, no socket): the table shows the CPU
time of this process per request with N in flight (the framework, SQLAlchemy and the driver;
PostgreSQL's own time is not counted), requests per second of wall time, and the statements
each request sent. Median of interleaved rounds.
"""

import argparse
import asyncio
import datetime as dt
import os
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH.parent / "src")]
os.environ.setdefault("TRANSOM_ACCESS_LOG", "0")

from pydantic import BaseModel, ConfigDict  # noqa: E402
from sqlalchemy import (  # noqa: E402
    Column,
    DateTime,
    ForeignKey,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    select,
    text,
)
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine  # noqa: E402
from sqlalchemy.orm import (  # noqa: E402
    DeclarativeBase,
    Mapped,
    joinedload,
    mapped_column,
    relationship,
    selectinload,
)

SERVER = os.environ.get("BENCH_REST_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
POOL = 10


class Base(DeclarativeBase):
    pass


post_tags = Table(
    "bench_post_tag",
    Base.metadata,
    Column("post_id", ForeignKey("bench_post.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("bench_tag.id", ondelete="CASCADE"), primary_key=True),
)


class Author(Base):
    __tablename__ = "bench_author"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))


class Tag(Base):
    __tablename__ = "bench_tag"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)


class Post(Base):
    __tablename__ = "bench_post"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=lambda: dt.datetime.now(dt.UTC)
    )
    author_id: Mapped[int] = mapped_column(ForeignKey("bench_author.id"))
    author: Mapped[Author] = relationship()
    tags: Mapped[list[Tag]] = relationship(secondary=post_tags)


# -- Transom ------------------------------------------------------------------------------------


def transom_app(url: str) -> Any:
    from transom import App, Settings
    from transom.db import Database, DatabaseConfig
    from transom.rest import AllowAny, ModelResource

    class Posts(ModelResource, model=Post, prefix="/posts"):
        fields = ["id", "title", "body", "created_at", "author", "tags"]
        nested = {"author": ["id", "name"], "tags": ["id", "name"]}
        ordering = ["id"]
        operations = ["list", "create"]
        permissions = [AllowAny]

    app = App(Settings(secret_key="bench", access_log=False, allowed_hosts=["testserver"]))
    app.install(Database(DatabaseConfig(url=url, pool_size=POOL), metadata=Base.metadata))
    app.include(Posts)
    return app


# -- FastAPI + SQLAlchemy, by hand ----------------------------------------------------------------


def fastapi_app(url: str) -> Any:
    from fastapi import Depends, FastAPI, HTTPException, Query, Request

    engine = create_async_engine(url, pool_size=POOL)
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def get_session() -> AsyncIterator[AsyncSession]:
        async with sessions() as session:
            yield session

    Session = Annotated[AsyncSession, Depends(get_session)]

    class AuthorOut(BaseModel):
        model_config = ConfigDict(from_attributes=True)
        id: int
        name: str

    class TagOut(BaseModel):
        model_config = ConfigDict(from_attributes=True)
        id: int
        name: str

    class PostOut(BaseModel):
        model_config = ConfigDict(from_attributes=True)
        id: int
        title: str
        body: str
        created_at: dt.datetime
        author: AuthorOut
        tags: list[TagOut]

    class PostPage(BaseModel):
        items: list[PostOut]
        total: int
        limit: int
        offset: int
        links: dict[str, str | None]

    class PostIn(BaseModel):
        model_config = ConfigDict(extra="forbid")
        title: str
        body: str = ""
        author: int
        tags: list[int] = []

    app = FastAPI()
    loads = (joinedload(Post.author), selectinload(Post.tags))

    @app.get("/posts", response_model=PostPage)
    async def list_posts(
        request: Request,
        session: Session,
        limit: Annotated[int, Query(ge=1)] = 20,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> Any:
        limit = min(limit, 100)
        stmt = select(Post).options(*loads).order_by(Post.id)
        items = (await session.execute(stmt.limit(limit).offset(offset))).scalars().all()
        total = (await session.execute(select(func.count()).select_from(Post))).scalar_one()
        url = request.url
        return {
            "items": items,
            "total": total,
            "limit": limit,
            "offset": offset,
            "links": {
                "self": str(url.include_query_params(limit=limit, offset=offset)),
                "prev": None
                if offset == 0
                else str(url.include_query_params(offset=max(0, offset - limit))),
                "next": str(url.include_query_params(offset=offset + limit))
                if offset + limit < total
                else None,
            },
        }

    @app.post("/posts", response_model=PostOut, status_code=201)
    async def create_post(data: PostIn, session: Session) -> Any:
        tags = list((await session.execute(select(Tag).where(Tag.id.in_(data.tags)))).scalars())
        if len(tags) != len(set(data.tags)):
            raise HTTPException(422, "unknown tags")
        post = Post(title=data.title, body=data.body, author_id=data.author, tags=tags)
        session.add(post)
        await session.commit()
        stmt = select(Post).options(*loads).where(Post.id == post.id)
        return (await session.execute(stmt.execution_options(populate_existing=True))).scalar_one()

    app.state.engine = engine
    return app


# -- measuring ----------------------------------------------------------------------------------


async def call(app: Any, method: str, path: str, query: bytes, body: bytes) -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    status: list[int] = []
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status[0], b"".join(chunks)


async def run(
    app: Any, case: tuple[str, str, bytes, bytes, int], count: int, concurrency: int
) -> tuple[float, float]:
    """(CPU µs per request, requests per second of wall time)."""
    method, path, query, body, expected = case
    code, answer = await call(app, method, path, query, body)
    if code != expected:
        raise RuntimeError(f"{method} {path}: {code} {answer[:300]!r}")
    cpu, wall = time.process_time(), time.perf_counter()
    done = 0
    while done < count:
        batch = min(concurrency, count - done)
        await asyncio.gather(*[call(app, method, path, query, body) for _ in range(batch)])
        done += batch
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return cpu / count * 1e6, count / wall


def create_database() -> tuple[str, str]:
    name = f"transom_bench_rest_{uuid.uuid4().hex[:8]}"
    admin = create_engine(SERVER.replace("postgresql://", "postgresql+psycopg://"))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(SERVER).set(database=name)
    sync = url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    engine = create_engine(sync)
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(Author.__table__.insert(), [{"name": f"Author {i}"} for i in range(5)])
        conn.execute(Tag.__table__.insert(), [{"name": f"tag{i}"} for i in range(10)])
        conn.execute(
            Post.__table__.insert(),
            [
                {"title": f"Post {i}", "body": "text " * 40, "author_id": 1 + i % 5}
                for i in range(100)
            ],
        )
        conn.execute(
            post_tags.insert(),
            [{"post_id": p, "tag_id": 1 + (p + k) % 10} for p in range(1, 101) for k in range(3)],
        )
    engine.dispose()
    return name, url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def drop_database(name: str) -> None:
    admin = create_engine(SERVER.replace("postgresql://", "postgresql+psycopg://"))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args(argv)
    name, url = create_database()
    try:
        return asyncio.run(measure(url, args))
    finally:
        drop_database(name)


async def measure(url: str, args: argparse.Namespace) -> int:
    from transom.db import get_database

    apps = {
        "transom.rest ModelResource": transom_app(url),
        "FastAPI + SQLAlchemy": fastapi_app(url),
    }
    transom = apps["transom.rest ModelResource"]
    await transom.startup()
    engines = {
        "transom.rest ModelResource": get_database(transom).engine.sync_engine,
        "FastAPI + SQLAlchemy": apps["FastAPI + SQLAlchemy"].state.engine.sync_engine,
    }
    create = b'{"title": "New", "body": "text", "author": 2, "tags": [1, 2, 3]}'
    cases = {
        "list (GET /posts?limit=20)": ("GET", "/posts", b"limit=20", b"", 200),
        "create (POST /posts)": ("POST", "/posts", b"", create, 201),
    }
    statements: dict[tuple[str, str], int] = {}
    for app_name, app in apps.items():
        for case_name, case in cases.items():
            sent: list[str] = []

            def count(*args: Any, sent: list[str] = sent) -> None:
                sent.append(args[2])

            event.listen(engines[app_name], "before_cursor_execute", count)
            code, answer = await call(app, *case[:4])
            assert code == case[4], (app_name, case_name, code, answer[:300])
            event.remove(engines[app_name], "before_cursor_execute", count)
            statements[(app_name, case_name)] = len(sent)
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(args.rounds):
        for case_name, case in cases.items():
            for app_name, app in apps.items():
                measured = await run(app, case, args.requests, args.concurrency)
                results.setdefault((app_name, case_name), []).append(measured)
                print(f"  {app_name} {case_name}: {measured[0]:.0f} µs", file=sys.stderr)
    await transom.shutdown()
    await apps["FastAPI + SQLAlchemy"].state.engine.dispose()
    print(
        f"## {args.requests} requests x {args.rounds} rounds, {args.concurrency} in flight, "
        "PostgreSQL, in-process; median of the rounds\n"
    )
    print("| endpoint | app | CPU µs/request | requests/s | statements/request |")
    print("|---|---|---|---|---|")
    for case_name in cases:
        for app_name in apps:
            rows = results[(app_name, case_name)]
            cpu = statistics.median(r[0] for r in rows)
            rate = statistics.median(r[1] for r in rows)
            sent = statements[(app_name, case_name)]
            print(f"| {case_name} | {app_name} | {cpu:.0f} | {rate:.0f} | {sent} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
