#!/usr/bin/env python3
"""A REST list and create: ``transom.rest.ModelResource``, FastAPI + SQLAlchemy and DRF.

``python bench/rest.py [--seconds 5] [--rounds 3] [--connections 16]``
(needs PostgreSQL on 127.0.0.1:5432, user postgres; ``BENCH_REST_URL`` to use another server;
FastAPI, Django REST framework, uvicorn and gunicorn from the ``bench`` extra; wrk).

The three apps serve ``GET /posts?limit=20`` (20 posts, each with its author and tags nested,
the total counted, links) and ``POST /posts`` (validate, check the tags, insert, answer 201 with
the post as stored) from the same tables in a throw-away database. The FastAPI app is written
by hand the way its docs suggest (``Depends`` session, Pydantic ``response_model`` with
``from_attributes``, ``joinedload``/``selectinload``); the DRF app is a ``ModelViewSet`` with
nested serializers, ``select_related``/``prefetch_related`` and ``LimitOffsetPagination``
(bench/apps/rest_drf.py). Each app runs in one server process with one worker: the ASGI apps
on uvicorn (uvloop, httptools, no access log), DRF on gunicorn's sync worker, as DRF is
deployed. Connections stay open: the SQLAlchemy apps pool one per wrk connection (no
overflow), Django keeps its one (``CONN_MAX_AGE=None``; a sync worker serves one request at
a time). wrk drives each in turn with N
connections; the table shows the server's CPU time per request (from /proc: the framework,
ORM and driver; PostgreSQL's own time is not counted), requests per second, and the
statements each request sent. Best of interleaved rounds; the posts a create run added are
deleted before the next run.

``--in-process`` runs the two ASGI apps without a server (their own event loop, N requests in
flight), the way to profile them: ``py-spy record -- python bench/rest.py --in-process
--only transom``, or ``--profile`` for cProfile's top functions.
"""

import argparse
import asyncio
import contextlib
import cProfile
import datetime as dt
import http.client as http_client
import os
import pstats
import re
import signal
import socket
import statistics
import subprocess
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
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
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
# Connections kept open by each SQLAlchemy app: as many as requests in flight, so that no
# request opens a connection of its own (an overflow connection opened and closed per batch
# cost more than the rest of a list); Django's sync worker keeps its one connection open.
POOL = int(os.environ.get("BENCH_REST_POOL", "16"))


class Base(DeclarativeBase):
    pass


# A surrogate id: the link table Django's ManyToManyField reads and writes (DRF's app).
post_tags = Table(
    "bench_post_tag",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("post_id", ForeignKey("bench_post.id", ondelete="CASCADE"), nullable=False),
    Column("tag_id", ForeignKey("bench_tag.id", ondelete="CASCADE"), nullable=False),
    UniqueConstraint("post_id", "tag_id"),
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

    app = App(
        Settings(secret_key="bench", access_log=False, allowed_hosts=["testserver", "127.0.0.1"])
    )
    config = DatabaseConfig(url=url, pool_size=POOL, max_overflow=0)
    app.install(Database(config, metadata=Base.metadata))
    app.include(Posts)
    return app


# -- FastAPI + SQLAlchemy, by hand ----------------------------------------------------------------


def fastapi_app(url: str) -> Any:
    from fastapi import Depends, FastAPI, HTTPException, Query, Request

    engine = create_async_engine(url, pool_size=POOL, max_overflow=0)
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
    parser.add_argument("--seconds", type=int, default=5, help="wrk run per app and endpoint")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--in-process", action="store_true", help="no server, no DRF")
    parser.add_argument("--requests", type=int, default=2000, help="--in-process: per round")
    parser.add_argument("--concurrency", type=int, default=16, help="--in-process: in flight")
    parser.add_argument("--only", help="--in-process: the app whose name contains this")
    parser.add_argument("--profile", action="store_true", help="--in-process: cProfile top")
    args = parser.parse_args(argv)
    name, url = create_database()
    try:
        if args.in_process:
            global POOL
            POOL = args.concurrency
            return asyncio.run(measure_in_process(url, args))
        return measure_served(url, args)
    finally:
        kill_servers()
        drop_database(name)


# -- served: uvicorn, gunicorn and wrk ----------------------------------------------------------

HOST = "127.0.0.1"
_servers: list[subprocess.Popen[bytes]] = []


def transom_served() -> Any:
    """``uvicorn --factory bench.rest:transom_served`` (the database from BENCH_REST_ASYNC)."""
    return transom_app(os.environ["BENCH_REST_ASYNC"])


def fastapi_served() -> Any:
    """``uvicorn --factory bench.rest:fastapi_served``."""
    return fastapi_app(os.environ["BENCH_REST_ASYNC"])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(command: list[str], port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = open(BENCH / f".rest-{port}.log", "wb")  # noqa: SIM115 (the server writes to it)
    process = subprocess.Popen(
        command,
        cwd=BENCH.parent,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: its CPU time is the group's
    )
    _servers.append(process)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command} exited:\n{Path(log.name).read_text()[-3000:]}")
        try:
            with socket.create_connection((HOST, port), timeout=1):
                break
        except OSError:
            time.sleep(0.2)
    else:
        raise RuntimeError(f"{command} did not listen on {port}")
    return process


def kill_servers() -> None:
    for process in _servers:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
    _servers.clear()
    for log in BENCH.glob(".rest-*.log"):
        log.unlink()


def group_cpu(group: int) -> float:
    """Seconds of CPU used by the processes of a process group (the server and its worker)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if int(fields[2]) == group:  # pgrp
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / ticks


def http(port: int, method: str, path: str, body: bytes, count: bool = False) -> Any:
    conn = http_client.HTTPConnection(HOST, port, timeout=30)
    headers = {"Content-Type": "application/json", "X-Count-Statements": "1"}
    if not count:
        headers.pop("X-Count-Statements")
    conn.request(method, path, body=body or None, headers=headers)
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def wrk(port: int, method: str, path: str, body: bytes, seconds: int, connections: int) -> int:
    """The requests wrk completed (it fails on any non-2xx answer or socket error)."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
    if method == "POST":
        command += ["-s", str(BENCH / "wrk" / "post_json.lua")]
    command.append(f"http://{HOST}:{port}{path}")
    if method == "POST":
        command += ["--", body.decode()]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)|Socket errors: .*", out)
    if bad:
        raise RuntimeError(f"wrk: {bad[0]}\n{out}")
    done = re.search(r"^\s*(\d+) requests in", out, re.MULTILINE)
    if done is None:
        raise RuntimeError(f"wrk printed no count:\n{out}")
    return int(done[1])


def forget_created(url: str) -> None:
    # Every list run counts the same 100 posts.
    engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"))
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM bench_post WHERE id > 100"))
    engine.dispose()


def measure_served(url: str, args: argparse.Namespace) -> int:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(BENCH.parent), str(BENCH.parent / "src")])
    env["TRANSOM_ACCESS_LOG"] = "0"
    env["BENCH_REST_ASYNC"] = url
    env["BENCH_REST_POOL"] = str(args.connections)
    env["BENCH_REST_DJANGO"] = (
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    )
    env.pop("DJANGO_SETTINGS_MODULE", None)
    python = sys.executable
    uvicorn = [python, "-m", "uvicorn", "--factory", "--workers", "1", "--no-access-log"]
    uvicorn += ["--log-level", "warning", "--host", HOST, "--port"]
    commands = {
        "transom.rest ModelResource": [*uvicorn, "{port}", "bench.rest:transom_served"],
        "FastAPI + SQLAlchemy": [*uvicorn, "{port}", "bench.rest:fastapi_served"],
        "DRF ModelViewSet": [
            python,
            "-m",
            "gunicorn",
            "--workers",
            "1",
            "--worker-class",
            "sync",
            "--bind",
            f"{HOST}:{{port}}",
            "--log-level",
            "warning",
            "bench.apps.rest_drf:app",
        ],
    }
    create = b'{"title": "New", "body": "text", "author": 2, "tags": [1, 2, 3]}'
    cases = {
        "list (GET /posts?limit=20)": ("GET", "/posts?limit=20", b"", 200),
        "create (POST /posts)": ("POST", "/posts", create, 201),
    }
    servers: dict[str, tuple[int, int]] = {}  # app -> (port, process group)
    for app_name, template in commands.items():
        port = _free_port()
        command = [part.replace("{port}", str(port)) for part in template]
        servers[app_name] = (port, start_server(command, port, env).pid)
    statements = asyncio.run(count_in_process(url, cases))
    for app_name, (port, _) in servers.items():
        for case_name, (method, path, body, expected) in cases.items():
            answer = http(port, method, path, body, count=True)
            if answer.status != expected:
                raise RuntimeError(f"{app_name} {case_name}: {answer.status}")
            counted = answer.getheader("X-Count-Statements")
            if counted is not None:
                statements[(app_name, case_name)] = int(counted)
            # Warm up: connections opened, statements compiled, code paths run once.
            wrk(port, method, path, body, 2, args.connections)
            forget_created(url)
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(args.rounds):
        for case_name, (method, path, body, _) in cases.items():
            for app_name, (port, group) in servers.items():
                cpu, wall = group_cpu(group), time.perf_counter()
                done = wrk(port, method, path, body, args.seconds, args.connections)
                cpu, wall = group_cpu(group) - cpu, time.perf_counter() - wall
                forget_created(url)
                measured = (cpu / done * 1e6, done / wall)
                results.setdefault((app_name, case_name), []).append(measured)
                print(f"  {app_name} {case_name}: {measured[0]:.0f} µs", file=sys.stderr)
    print(
        f"## wrk {args.seconds} s x {args.rounds} rounds, {args.connections} connections, "
        "one worker each (uvicorn for the ASGI apps, gunicorn sync for DRF), PostgreSQL; "
        "best round\n"
    )
    print("| endpoint | app | requests/s | server CPU µs/request | statements/request |")
    print("|---|---|---|---|---|")
    for case_name in cases:
        for app_name in servers:
            rows = results[(app_name, case_name)]
            cpu = min(r[0] for r in rows)
            rate = max(r[1] for r in rows)
            sent = statements.get((app_name, case_name), "?")
            print(f"| {case_name} | {app_name} | {rate:.0f} | {cpu:.0f} | {sent} |")
    return 0


async def count_in_process(
    url: str, cases: dict[str, tuple[str, str, bytes, int]]
) -> dict[tuple[str, str], int]:
    """The statements each ASGI app sends per request (the same code the servers run)."""
    from transom.db import get_database

    transom = transom_app(url)
    fastapi = fastapi_app(url)
    await transom.startup()
    engines = {
        "transom.rest ModelResource": (transom, get_database(transom).engine.sync_engine),
        "FastAPI + SQLAlchemy": (fastapi, fastapi.state.engine.sync_engine),
    }
    statements: dict[tuple[str, str], int] = {}
    for app_name, (app, engine) in engines.items():
        for case_name, (method, target, body, expected) in cases.items():
            path, _, query = target.partition("?")
            sent: list[str] = []

            def count(*args: Any, sent: list[str] = sent) -> None:
                sent.append(args[2])

            event.listen(engine, "before_cursor_execute", count)
            code, answer = await call(app, method, path, query.encode(), body)
            event.remove(engine, "before_cursor_execute", count)
            if code != expected:
                raise RuntimeError(f"{app_name} {case_name}: {code} {answer[:300]!r}")
            statements[(app_name, case_name)] = len(sent)
    await transom.shutdown()
    await fastapi.state.engine.dispose()
    return statements


async def measure_in_process(url: str, args: argparse.Namespace) -> int:
    from transom.db import get_database

    apps = {
        "transom.rest ModelResource": transom_app(url),
        "FastAPI + SQLAlchemy": fastapi_app(url),
    }
    only = {name for name in apps if args.only and args.only.lower() in name.lower()}
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
    profiler = cProfile.Profile() if args.profile else None
    for _ in range(args.rounds):
        for case_name, case in cases.items():
            for app_name, app in apps.items():
                if only and app_name not in only:
                    continue
                if profiler is not None:
                    profiler.enable()
                measured = await run(app, case, args.requests, args.concurrency)
                if profiler is not None:
                    profiler.disable()
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
            if (app_name, case_name) not in results:
                continue
            rows = results[(app_name, case_name)]
            cpu = statistics.median(r[0] for r in rows)
            rate = statistics.median(r[1] for r in rows)
            sent = statements[(app_name, case_name)]
            print(f"| {case_name} | {app_name} | {cpu:.0f} | {rate:.0f} | {sent} |")
    if profiler is not None:
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(40)
    return 0


if __name__ == "__main__":
    sys.exit(main())
