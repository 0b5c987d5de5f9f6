"""WebSockets in Transom (``bench/realtime.py``): an echo route and a channel's subscribers.

The per-connection message rate limit (100/s by default) is off here: the echo test sends as
fast as the client can, which the default would close with 1008 by design. The channel is in
memory unless ``TRANSOM_CHANNELS_URL`` names Redis.
"""

from __future__ import annotations

from typing import Any

from transom import App, Settings, WebSocket
from transom.realtime import Channels

app = App(Settings(access_log=False, websocket_rate_limit=0))
channels = Channels(app)


@app.websocket("/echo")
async def echo(ws: WebSocket) -> None:
    await ws.accept()
    async for message in ws:
        if isinstance(message, str):
            await ws.send_text(message)
        else:
            await ws.send_bytes(message)


@app.websocket("/sub")
async def subscribe(ws: WebSocket) -> None:
    await ws.accept()
    await channels.forward(ws, "bench")


@app.post("/pub", status_code=204)
async def publish(message: dict[str, Any]) -> None:
    await channels.publish("bench", message)  # as a handler would: a typed body, re-sent as JSON
