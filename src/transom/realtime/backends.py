"""Where published messages travel: this process's memory, or Redis (pub/sub and streams).

A backend hands every message it receives for a subscribed channel to one ``deliver``
callback (the :class:`~transom.realtime.Channels` hub fans it out to local subscribers), keeps
the per-channel history used for replay when configured, and raises
:class:`ChannelsUnavailable` when a publish can't reach its server.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from transom.exceptions import HTTPException, ImproperlyConfigured
from transom.realtime.config import ChannelsConfig

__all__ = [
    "Backend",
    "ChannelsUnavailable",
    "Deliver",
    "MemoryBackend",
    "RedisBackend",
    "backend_from_config",
]

logger = logging.getLogger("transom.realtime")

#: ``deliver(channel, id, event, data)``: a message arrived for a subscribed channel.
Deliver = Callable[[str, str | None, str | None, bytes], None]


class ChannelsUnavailable(HTTPException):
    """The channel server can't be reached: a publish did not go out.

    An :class:`~transom.exceptions.HTTPException` (503 with ``Retry-After``), so a handler that
    lets it propagate answers what an outage should.
    """

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(
            503,
            "Messaging is temporarily unavailable; try again shortly.",
            headers={"Retry-After": str(retry_after)},
        )
        self.message = message

    def __str__(self) -> str:
        return self.message


class Backend(Protocol):
    """What a channels backend implements."""

    async def start(self, deliver: Deliver) -> None: ...
    async def publish(self, channel: str, event: str | None, data: bytes) -> str | None: ...
    async def subscribe(self, channel: str) -> None: ...
    async def unsubscribe(self, channel: str) -> None: ...
    async def history(
        self, channel: str, after: str
    ) -> list[tuple[str, str | None, bytes]] | None: ...
    async def close(self) -> None: ...


class MemoryBackend:
    """One process: a publish is delivered at once to this process's subscribers."""

    def __init__(self, history: int = 100) -> None:
        self.history_size = history
        self._deliver: Deliver | None = None
        self._counters: dict[str, int] = {}
        self._history: dict[str, deque[tuple[str, str | None, bytes]]] = {}

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver

    async def publish(self, channel: str, event: str | None, data: bytes) -> str | None:
        number = self._counters.get(channel, 0) + 1
        self._counters[channel] = number
        message_id = str(number)
        if self.history_size:
            kept = self._history.get(channel)
            if kept is None:
                kept = self._history[channel] = deque(maxlen=self.history_size)
            kept.append((message_id, event, data))
        if self._deliver is not None:
            self._deliver(channel, message_id, event, data)
        return message_id

    async def subscribe(self, channel: str) -> None:
        pass

    async def unsubscribe(self, channel: str) -> None:
        pass

    async def history(self, channel: str, after: str) -> list[tuple[str, str | None, bytes]] | None:
        if not self.history_size or not _valid_id(after):
            return None
        return [m for m in self._history.get(channel, ()) if _newer(m[0], after)]

    async def close(self) -> None:
        self._deliver = None


def _valid_id(value: str) -> bool:
    parts = value.split("-")
    return 0 < len(parts) <= 2 and all(p.isascii() and p.isdigit() and len(p) < 20 for p in parts)


def _newer(candidate: str, than: str) -> bool:
    """Compare ids (``12`` or Redis' ``1700000000000-3``) by their numbers."""
    try:
        a = tuple(int(p) for p in candidate.split("-"))
        b = tuple(int(p) for p in than.split("-"))
    except ValueError:
        return False
    return a > b


class RedisBackend:
    """Redis, shared by every process: a publish reaches the subscribers of all of them.

    With ``history`` > 0 each publish is appended to a capped stream (``XADD MAXLEN ~``) and
    announced on pub/sub in one transaction, so ids follow the publish order; subscribers
    replay from the stream what they missed (``Last-Event-ID``, or a reconnection after an
    outage). With ``history=0`` it is plain pub/sub: messages published while a subscriber's
    connection is down are lost to it.
    """

    def __init__(self, config: ChannelsConfig) -> None:
        self.config = config
        self.prefix = config.key_prefix + ":"
        self._open()

    def _open(self) -> None:
        """A fresh client and subscription state (again after :meth:`close`)."""
        from redis.asyncio import Redis

        self.client: Any = Redis.from_url(
            self.config.url,
            socket_timeout=self.config.socket_timeout,
            socket_connect_timeout=self.config.socket_timeout,
        )
        self._deliver: Deliver | None = None
        self._channels: set[str] = set()
        self._last: dict[str, str] = {}  # the last id delivered per channel, to resume from
        self._ready: dict[str, asyncio.Future[None]] = {}  # set once Redis confirmed SUBSCRIBE
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._closed = False
        #: True while the subscription connection is lost (the reader is reconnecting).
        self.down = False
        #: Publishes refused since the last one that went out (0: publishing works).
        self.refused = 0

    async def start(self, deliver: Deliver) -> None:
        if self._closed:
            # Served again after a shutdown (a second test client, an app restarted in the
            # same process): the old client and events belong to the loop that closed them.
            self._open()
        self._deliver = deliver

    # -- publishing -------------------------------------------------------------------------------
    async def publish(self, channel: str, event: str | None, data: bytes) -> str | None:
        from redis.exceptions import RedisError

        key = self.prefix + channel
        wire_event = (event or "").encode()
        try:
            if not self.config.history:
                await self.client.publish(key, wire_event + b"\n\n" + data)
                return None
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.xadd(
                    key, {"e": wire_event, "d": data}, maxlen=self.config.history, approximate=True
                )
                pipe.expire(key, self.config.history_ttl)
                # The id is only known after XADD: subscribers read the message from the stream.
                pipe.publish(key, b"")
                raw_id, _, _ = await pipe.execute()
        except (RedisError, OSError) as exc:
            self._refused(channel, exc)
            raise ChannelsUnavailable(f"Redis unavailable: {exc}") from exc
        if self.refused:
            logger.warning("Redis is back: publishing again (%d publishes refused)", self.refused)
            self.refused = 0
        return raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)

    def _refused(self, channel: str, exc: BaseException) -> None:
        # One warning per outage, not one per publish: under load an outage would otherwise
        # write thousands of identical lines a second. The rest go to DEBUG; the count is in
        # the line that says publishing works again.
        self.refused += 1
        level = logging.WARNING if self.refused == 1 else logging.DEBUG
        logger.log(level, "publish to %r failed, Redis unavailable: %s", channel, exc)

    async def history(self, channel: str, after: str) -> list[tuple[str, str | None, bytes]] | None:
        if not self.config.history or not _valid_id(after):
            return None
        if "-" not in after:
            after += "-0"
        from redis.exceptions import RedisError

        try:
            entries = await self.client.xrange(self.prefix + channel, min=f"({after}", max="+")
        except (RedisError, OSError) as exc:
            raise ChannelsUnavailable(f"Redis unavailable: {exc}") from exc
        return [_entry(i, f) for i, f in entries]

    # -- subscribing ------------------------------------------------------------------------------
    async def subscribe(self, channel: str) -> None:
        """Subscribe this process to ``channel``; returns once Redis confirmed it (or after
        5 x ``socket_timeout`` when Redis is down: the reader subscribes when it is back)."""
        self._channels.add(channel)
        if self.config.history and channel not in self._last:
            # Where this subscriber starts, fixed now: whatever is published from here on is
            # delivered, even if the pub/sub subscription is confirmed late (a loaded Redis).
            try:
                newest = await self.client.xrevrange(self.prefix + channel, count=1)
                self._last[channel] = _entry(*newest[0])[0] if newest else "0-0"
            except Exception:
                # Redis is down: start at this moment instead. Stream ids are Redis' clock in
                # milliseconds, so once it is back whatever was published after this
                # subscriber arrived is delivered (give or take the clock skew between this
                # host and Redis'), not only what comes after the reader resubscribed.
                self._last[channel] = f"{int(time.time() * 1000)}-0"
        ready = self._ready.get(channel)
        if ready is None:
            ready = self._ready[channel] = asyncio.get_running_loop().create_future()
        self._changed.set()
        if self._reader is None or self._reader.done():
            # In a context of its own: the reader outlives the request that happened to start
            # it, whose request id would otherwise be on every line the reader logs.
            self._reader = asyncio.create_task(
                self._read(), name="transom-channels-redis", context=contextvars.Context()
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(ready), 5 * self.config.socket_timeout)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)
        self._last.pop(channel, None)
        self._ready.pop(channel, None)
        self._changed.set()

    async def _read(self) -> None:
        """Keep one pub/sub connection subscribed to what local subscribers want; reconnect
        (with backoff) when Redis goes away, then replay what was missed from the streams."""
        from redis.exceptions import RedisError

        delay = self.config.reconnect_delay
        while not self._closed:
            pubsub = self.client.pubsub()
            subscribed: set[str] = set()
            try:
                while not self._closed:
                    if self._changed.is_set() or not subscribed:
                        self._changed.clear()
                        wanted = set(self._channels)
                        if not wanted and not subscribed:
                            await self._changed.wait()
                            continue
                        if wanted - subscribed:
                            new = wanted - subscribed
                            await pubsub.subscribe(*(self.prefix + c for c in new))
                            await self._confirmed(pubsub, new)
                            subscribed |= new
                            if self.down:
                                logger.warning("Redis is back: channel subscriptions restored")
                                self.down = False
                            # What was published while we were (re)subscribing.
                            await self._catch_up(new)
                            for channel in new:
                                ready = self._ready.get(channel)
                                if ready is not None and not ready.done():
                                    ready.set_result(None)
                        if subscribed - wanted:
                            await pubsub.unsubscribe(
                                *(self.prefix + c for c in subscribed - wanted)
                            )
                            subscribed &= wanted
                        delay = self.config.reconnect_delay
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
                    if message is not None and message.get("type") == "message":
                        await self._on_message(message)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if not self.down:
                    logger.warning("Redis channel subscription lost, reconnecting: %s", exc)
                    self.down = True
                self._changed.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def _confirmed(self, pubsub: Any, channels: set[str]) -> None:
        """Wait for Redis to confirm the SUBSCRIBEs: from then on no publish is missed."""
        waiting = {self.prefix + c for c in channels}
        while waiting:
            message = await pubsub.get_message(timeout=self.config.socket_timeout)
            if message is None:
                raise ConnectionError("Redis did not confirm the subscription in time")
            if message.get("type") == "subscribe":
                name = message["channel"]
                waiting.discard(name.decode() if isinstance(name, bytes) else str(name))
            elif message.get("type") == "message":
                await self._on_message(message)

    async def _on_message(self, message: dict[str, Any]) -> None:
        key = message["channel"]
        channel = (key.decode() if isinstance(key, bytes) else str(key))[len(self.prefix) :]
        if channel not in self._channels:
            return
        data: bytes = message["data"]
        if not self.config.history:
            event, _, payload = data.partition(b"\n\n")
            self._emit(channel, None, event.decode() or None, payload)
            return
        await self._catch_up({channel})

    async def _catch_up(self, channels: set[str]) -> None:
        """Read each channel's stream past the last id delivered (the notice carries no data:
        the stream is the one ordered source, so nothing is delivered twice or out of order)."""
        if not self.config.history:
            return
        for channel in channels:
            last = self._last.get(channel)
            if last is None:
                # Newly subscribed: start from the newest message there is, deliver nothing old.
                newest = await self.client.xrevrange(self.prefix + channel, count=1)
                self._last[channel] = _entry(*newest[0])[0] if newest else "0-0"
                continue
            entries = await self.client.xrange(self.prefix + channel, min=f"({last}", max="+")
            for raw_id, fields in entries:
                message_id, event, data = _entry(raw_id, fields)
                self._last[channel] = message_id
                self._emit(channel, message_id, event, data)

    def _emit(self, channel: str, message_id: str | None, event: str | None, data: bytes) -> None:
        if self._deliver is not None:
            self._deliver(channel, message_id, event, data)

    async def close(self) -> None:
        self._closed = True
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        await self.client.aclose()


def _entry(raw_id: Any, fields: dict[Any, Any]) -> tuple[str, str | None, bytes]:
    message_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
    event = fields.get(b"e") or fields.get("e") or b""
    data = fields.get(b"d") or fields.get("d") or b""
    event_text = event.decode() if isinstance(event, bytes) else str(event)
    return message_id, event_text or None, data if isinstance(data, bytes) else str(data).encode()


def backend_from_config(config: ChannelsConfig) -> Backend:
    """The backend ``config.url`` names."""
    scheme = config.url.partition("://")[0]
    if scheme == "memory":
        return MemoryBackend(config.history)
    if scheme in ("redis", "rediss", "unix"):
        return RedisBackend(config)
    raise ImproperlyConfigured(
        f"unknown channels backend {config.url!r}: use memory:// or redis://host:port/db"
    )
