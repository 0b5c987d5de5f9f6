"""The realtime battery: publish/subscribe channels for WebSockets and server-sent events.

::

    from transom.realtime import Channels

    channels = Channels(app)        # in memory; TRANSOM_CHANNELS_URL=redis://... for Redis

    @app.websocket("/rooms/{room}")
    async def room(ws: WebSocket, room: str) -> None:
        await ws.accept()
        await channels.forward(ws, f"room:{room}")

    @app.post("/rooms/{room}/messages")
    async def post(room: str, message: MessageIn) -> None:
        await channels.publish(f"room:{room}", message)

    @app.get("/rooms/{room}/events")
    async def events(room: str) -> EventSourceResponse:
        return channels.sse(f"room:{room}")

See ``docs/realtime.md``.
"""

from __future__ import annotations

from transom.realtime.backends import (
    Backend,
    ChannelsUnavailable,
    MemoryBackend,
    RedisBackend,
)
from transom.realtime.config import ChannelsConfig
from transom.realtime.core import Channels, Message, SlowConsumer, Subscription
from transom.realtime.declared import ChannelSpec

__all__ = [
    "Backend",
    "ChannelSpec",
    "Channels",
    "ChannelsConfig",
    "ChannelsUnavailable",
    "MemoryBackend",
    "Message",
    "RedisBackend",
    "SlowConsumer",
    "Subscription",
]
