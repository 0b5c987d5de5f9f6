"""The database floor: hand-written ASGI on asyncpg (prepared statements, no ORM)."""

from __future__ import annotations

from random import randint
from typing import Any
from urllib.parse import parse_qs

import asyncpg  # type: ignore[import-untyped]
import orjson

from .raw_asgi import Receive, Scope, Send, _error, _respond
from .tfb_common import DATABASE_URL, POOL_SIZE, clamp_queries, render_fortunes

_JSON = b"application/json"
_HTML = b"text/html; charset=utf-8"
_SELECT = "SELECT id, randomnumber FROM world WHERE id = $1"
_pool: asyncpg.Pool | None = None


async def _no_reset(_conn: Any) -> None:
    """Return connections to the pool as they are, as SQLAlchemy's pool does.

    asyncpg's default release sends ``RESET ALL`` (with ``CLOSE ALL``, ``UNLISTEN *`` and
    ``pg_advisory_unlock_all()``): a second round trip per request. These endpoints change
    no session state, and the ORM apps compared against this floor do not reset either, so
    the floor skips it (asyncpg still rolls back an open transaction).
    """


async def _startup() -> None:
    global _pool
    _pool = await asyncpg.create_pool(
        DATABASE_URL, min_size=POOL_SIZE, max_size=POOL_SIZE, reset=_no_reset
    )


async def _shutdown() -> None:
    if _pool is not None:
        await _pool.close()


def _queries(scope: Scope) -> int:
    values = parse_qs(scope["query_string"].decode("latin-1")).get("queries")
    return clamp_queries(values[0] if values else None)


async def _db(conn: Any, scope: Scope) -> bytes:
    row = await conn.fetchrow(_SELECT, randint(1, 10000))
    return orjson.dumps({"id": row[0], "randomNumber": row[1]})


async def _query_list(conn: Any, scope: Scope) -> bytes:
    out = []
    for _ in range(_queries(scope)):
        row = await conn.fetchrow(_SELECT, randint(1, 10000))
        out.append({"id": row[0], "randomNumber": row[1]})
    return orjson.dumps(out)


async def _updates(conn: Any, scope: Scope) -> bytes:
    ids: list[int] = []
    new: dict[int, int] = {}  # a repeated id keeps its last number, as an ORM session does
    for _ in range(_queries(scope)):
        ident = randint(1, 10000)
        await conn.fetchval("SELECT randomnumber FROM world WHERE id = $1", ident)
        ids.append(ident)
        new[ident] = randint(1, 10000)
    # Sorted ids keep concurrent transactions from deadlocking on each other's rows.
    await conn.executemany("UPDATE world SET randomnumber = $2 WHERE id = $1", sorted(new.items()))
    return orjson.dumps([{"id": i, "randomNumber": new[i]} for i in ids])


_JSON_ROUTES = {"/db": _db, "/queries": _query_list, "/updates": _updates}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        if scope["type"] == "lifespan":
            await _lifespan_with_pool(receive, send)
        return
    assert _pool is not None, "the pool opens at lifespan start-up"
    path = scope["path"]
    handler = _JSON_ROUTES.get(path)
    if handler is not None:
        async with _pool.acquire() as conn:
            body = await handler(conn, scope)
        await _respond(send, 200, _JSON, body)
    elif path == "/fortunes":
        async with _pool.acquire() as conn:
            rows = await conn.fetch("SELECT id, message FROM fortune")
        html = render_fortunes([(r[0], r[1]) for r in rows])
        await _respond(send, 200, _HTML, html.encode())
    else:
        await _error(send, 404, "Not Found")


async def _lifespan_with_pool(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await _startup()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await _shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return
