"""WebSockets in Starlette with the ``broadcaster`` package over Redis (``bench/realtime.py``).

Broadcaster's documented pattern: one subscription per WebSocket, relayed to it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from broadcaster import Broadcast
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

broadcast = Broadcast(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
CHANNEL = os.environ.get("BENCH_CHANNEL", "bench")


async def echo(ws: WebSocket) -> None:
    await ws.accept()
    try:
        while True:
            await ws.send_text(await ws.receive_text())
    except WebSocketDisconnect:
        return


async def subscribe(ws: WebSocket) -> None:
    await ws.accept()
    async with broadcast.subscribe(channel=CHANNEL) as subscriber:
        async for event in subscriber:  # type: ignore[union-attr]
            if event is not None:
                await ws.send_text(event.message)


async def publish(request: Request) -> Response:
    await broadcast.publish(channel=CHANNEL, message=(await request.body()).decode())
    return Response(status_code=204)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    await broadcast.connect()
    # broadcaster 0.3's Redis listener stops for good when it starts before the first
    # SUBSCRIBE has completed (redis-py's listen() ends with no subscription), which the
    # first subscribers race: one subscription held for the app's life keeps it listening.
    async with broadcast.subscribe(channel=f"{CHANNEL}-keepalive"):
        await asyncio.sleep(0.2)
        yield
    await broadcast.disconnect()


app = Starlette(
    routes=[
        WebSocketRoute("/echo", echo),
        WebSocketRoute("/sub", subscribe),
        Route("/pub", publish, methods=["POST"]),
    ],
    lifespan=lifespan,
)
