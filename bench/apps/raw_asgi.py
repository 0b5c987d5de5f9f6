"""The floor: hand-written ASGI apps with no framework, orjson for JSON.

Everything a framework does for the same endpoints is done here by hand and no more, so the
ratio ``framework / raw`` on the same server is the framework's own cost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote_plus

import orjson
from pydantic import ValidationError

from .common import HELLO, HTML, Item

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_TEXT = b"text/plain; charset=utf-8"
_JSON = b"application/json"
_HTMLTYPE = b"text/html; charset=utf-8"
_HTML = HTML.encode()
_HELLO = HELLO.encode()


async def _respond(send: Send, status: int, content_type: bytes, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _error(send: Send, status: int, detail: str) -> None:
    await _respond(send, status, _JSON, orjson.dumps({"detail": detail}))


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _query(raw: bytes) -> dict[str, str]:
    params: dict[str, str] = {}
    for pair in raw.decode("latin-1").split("&"):
        if pair:
            key, _, value = pair.partition("=")
            params.setdefault(unquote_plus(key), unquote_plus(value))
    return params


async def _typed(scope: Scope, receive: Receive, send: Send, item_id_text: str) -> None:
    try:
        item_id = int(item_id_text)
    except ValueError:
        await _error(send, 404, "Not Found")
        return
    query = _query(scope["query_string"])
    q = query.get("q")
    limit_text = query.get("limit")
    if q is None or limit_text is None:
        await _error(send, 422, "missing query parameter")
        return
    try:
        limit = int(limit_text)
    except ValueError:
        await _error(send, 422, "limit must be an integer")
        return
    try:
        item = Item.model_validate_json(await _read_body(receive))
    except ValidationError:
        await _error(send, 422, "invalid body")
        return
    body = orjson.dumps(
        {"item_id": item_id, "q": q, "limit": limit, "name": item.name, "total": item.price * limit}
    )
    await _respond(send, 200, _JSON, body)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """``/plaintext``, ``/json``, ``/html`` and ``/typed/{item_id}``."""
    if scope["type"] != "http":
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
        return
    path: str = scope["path"]
    method: str = scope["method"]
    if path == "/plaintext" and method == "GET":
        await _respond(send, 200, _TEXT, _HELLO)
    elif path == "/json" and method == "GET":
        await _respond(send, 200, _JSON, orjson.dumps({"message": HELLO}))
    elif path == "/html" and method == "GET":
        await _respond(send, 200, _HTMLTYPE, _HTML)
    elif path.startswith("/typed/") and method == "POST":
        await _typed(scope, receive, send, path[7:])
    else:
        await _error(send, 404, "Not Found")


def make_routes_app(count: int) -> ASGIApp:
    """``GET /r{i}/{id:int}`` for i in 0..count-1: one dict look-up, one int()."""
    index = {f"r{i}": i for i in range(count)}

    async def routes_app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await _lifespan(receive, send)
            return
        parts = scope["path"].split("/")
        route = index.get(parts[1]) if len(parts) == 3 else None
        if route is not None and scope["method"] == "GET":
            try:
                ident = int(parts[2])
            except ValueError:
                pass
            else:
                await _respond(send, 200, _JSON, orjson.dumps({"route": route, "id": ident}))
                return
        await _error(send, 404, "Not Found")

    return routes_app


routes_1000 = make_routes_app(1000)
routes_10 = make_routes_app(10)
