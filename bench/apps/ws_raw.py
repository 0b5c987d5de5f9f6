"""The WebSocket floor: hand-written ASGI, no framework (``bench/realtime.py``).

``/echo`` sends every message back; ``/sub`` keeps the connection in a set that ``POST /pub``
sends its body to (one process: the floor for the in-memory fan-out).
"""

from __future__ import annotations

import asyncio
from typing import Any

Scope = dict[str, Any]
Receive = Any
Send = Any

_subscribers: set[Send] = set()


async def _broadcast(body: bytes) -> None:
    text = body.decode()
    message = {"type": "websocket.send", "text": text}
    await asyncio.gather(*(send(message) for send in list(_subscribers)), return_exceptions=True)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    kind = scope["type"]
    if kind == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if kind == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        if scope["path"] == "/sub":
            _subscribers.add(send)
            try:
                while (await receive())["type"] != "websocket.disconnect":
                    pass
            finally:
                _subscribers.discard(send)
            return
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message.get("bytes")})
    if kind == "http":
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/pub":
            await _broadcast(body)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
