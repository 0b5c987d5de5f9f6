"""The :class:`Channels` battery: publish from anywhere, subscribe from WebSocket and SSE handlers.

A publish is encoded to JSON once and handed to the backend; each process keeps one backend
subscription per channel however many local subscribers it has, and fans a message out to
them by putting the same :class:`Message` in each one's bounded queue. A subscriber that
can't keep up never makes memory grow: its oldest waiting messages are dropped (counted in
:attr:`Subscription.dropped`), or, with ``overflow="close"``, its subscription ends with
:class:`SlowConsumer` (:meth:`Channels.forward` then closes the WebSocket with 1013).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

import orjson

from transom._types import Scope, Send
from transom.asyncapi import SchemaRegistry, add_asyncapi_hook
from transom.batteries import Battery
from transom.realtime.backends import Backend, ChannelsUnavailable, _newer, backend_from_config
from transom.realtime.config import ChannelsConfig
from transom.realtime.declared import ChannelSpec, document_channels
from transom.responses import RawHeaders, json_dumps
from transom.sse import DEFAULT_PING, Event, EventSourceResponse
from transom.websockets import TRY_AGAIN_LATER, WebSocket, WebSocketDisconnect

if TYPE_CHECKING:
    from transom.app import App
    from transom.requests import Request

__all__ = ["Channels", "Message", "SlowConsumer", "Subscription"]

logger = logging.getLogger("transom.realtime")
T = TypeVar("T")


class SlowConsumer(Exception):
    """A subscriber fell ``queue_size`` messages behind with ``overflow="close"``."""


class Message:
    """One published message as subscribers receive it (shared by all local subscribers:
    treat it as read-only)."""

    __slots__ = ("_data", "channel", "event", "id", "raw")

    def __init__(self, channel: str, message_id: str | None, event: str | None, raw: bytes):
        self.channel = channel
        #: The backend's id (``"42"`` in memory, ``"1700000000000-0"`` on Redis with history).
        self.id = message_id
        #: The event name given to :meth:`Channels.publish` (``None``: a plain message).
        self.event = event
        #: The JSON as published: forward it without decoding (:attr:`text`).
        self.raw = raw
        self._data: Any = _UNSET

    @property
    def text(self) -> str:
        """The JSON text, ready to send to a WebSocket or as SSE data."""
        return self.raw.decode("utf-8")

    @property
    def data(self) -> Any:
        """The message decoded from JSON (once)."""
        if self._data is _UNSET:
            self._data = orjson.loads(self.raw)
        return self._data

    def __repr__(self) -> str:
        return f"<Message {self.channel} id={self.id} {self.raw[:40]!r}>"


_UNSET: Any = object()


class Subscription:
    """Messages of one or more channels, as ``async for message in subscription``.

    Attributes:
        dropped: Messages this subscriber lost because it was ``queue_size`` behind.
    """

    def __init__(self, channels: tuple[str, ...], size: int, close_on_overflow: bool) -> None:
        self.channels = channels
        self.size = size
        self.close_on_overflow = close_on_overflow
        self.dropped = 0
        self._queue: deque[Message] = deque()
        self._wake = asyncio.Event()
        self._ended: BaseException | None = None
        #: True once the backend confirmed the subscription (messages published from now on
        #: arrive).
        self.ready = False

    def push(self, message: Message) -> None:
        if self._ended is not None:
            return
        if len(self._queue) >= self.size:
            if self.close_on_overflow:
                self._queue.clear()
                self.end(SlowConsumer(f"subscriber fell {self.size} messages behind"))
                return
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(message)
        self._wake.set()

    def end(self, reason: BaseException | None = None) -> None:
        """Stop the subscription: iteration ends (or raises ``reason``) once drained."""
        if self._ended is None:
            self._ended = reason or StopAsyncIteration()
        self._wake.set()

    @property
    def ended(self) -> bool:
        """Whether the subscription was ended (what is still waiting can be read)."""
        return self._ended is not None

    def replay(self, history: list[Message]) -> None:
        """Put messages missed before subscribing first, without duplicating live ones."""
        if not history:
            return
        last = history[-1].id or ""
        live = [m for m in self._queue if m.id is None or _newer(m.id, last)]
        self._queue = deque([*history[-self.size :], *live])
        self._wake.set()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Message:
        while not self._queue:
            if self._ended is not None:
                if isinstance(self._ended, StopAsyncIteration):
                    raise StopAsyncIteration
                raise self._ended
            self._wake.clear()
            await self._wake.wait()
        return self._queue.popleft()

    async def get(self) -> Message:
        """The next message (raises :class:`SlowConsumer` or ``StopAsyncIteration`` at the end)."""
        return await self.__anext__()

    def __len__(self) -> int:
        return len(self._queue)


class Channels(Battery):
    """Publish/subscribe for an app: ``channels = Channels(app)`` (in memory), or
    ``Channels(app, ChannelsConfig(url="redis://..."))`` to reach every process.

    Example:
        >>> import asyncio
        >>> async def demo() -> object:
        ...     channels = Channels(ChannelsConfig())
        ...     async with channels.subscribe("news") as messages:
        ...         await channels.publish("news", {"title": "hello"})
        ...         return (await messages.get()).data
        >>> asyncio.run(demo())
        {'title': 'hello'}
    """

    name = "transom.realtime"

    @overload
    def __init__(self, config: ChannelsConfig | None = None, /) -> None: ...
    @overload
    def __init__(self, app: App, config: ChannelsConfig | None = None, /) -> None: ...
    def __init__(self, target: Any = None, config: ChannelsConfig | None = None, /) -> None:
        super().__init__()
        app = None
        if isinstance(target, ChannelsConfig):
            config = target
        elif target is not None:
            app = target
        self.config = config or ChannelsConfig()
        self.backend: Backend = backend_from_config(self.config)
        self._local: dict[str, set[Subscription]] = {}
        self._started = False
        #: The channels :meth:`declare` documented, in order.
        self.declared: list[ChannelSpec[Any]] = []
        if app is not None:
            self.install(app)

    def setup(self, app: App) -> None:
        app.on_shutdown(self.close)
        add_asyncapi_hook(app, self._asyncapi)

    def _asyncapi(self, document: dict[str, Any], schemas: SchemaRegistry) -> None:
        document_channels(self.declared, document, schemas)

    def declare(
        self,
        pattern: str,
        payload: type[T],
        *,
        summary: str | None = None,
        description: str | None = None,
    ) -> ChannelSpec[T]:
        """Declare the channels named ``pattern`` (``"room:{room}"``) and what is published
        on them, for ``/asyncapi.json``; the result names a channel:
        ``await channels.publish(room.name(room=7), Said(...))``."""
        spec = ChannelSpec(pattern, payload, summary, description)
        self.declared.append(spec)
        return spec

    async def _start(self) -> None:
        if not self._started:
            self._started = True
            await self.backend.start(self._deliver)

    def _deliver(self, channel: str, message_id: str | None, event: str | None, raw: bytes) -> None:
        subscribers = self._local.get(channel)
        if not subscribers:
            return
        message = Message(channel, message_id, event, raw)
        for subscription in subscribers:
            subscription.push(message)

    # -- publishing -------------------------------------------------------------------------------
    async def publish(self, channel: str, message: Any, *, event: str | None = None) -> str | None:
        """Send ``message`` (anything JSON-serialisable: dicts, Pydantic models...) to every
        subscriber of ``channel`` in every process sharing the backend.

        Returns the message id (``None`` on Redis without history). Raises
        :class:`~transom.realtime.ChannelsUnavailable` (an HTTP 503) when Redis is down.
        """
        await self._start()
        return await self.backend.publish(channel, event, json_dumps(message))

    # -- subscribing ------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def subscribe(
        self, *channels: str, last_id: str | None = None
    ) -> AsyncIterator[Subscription]:
        """``async with channels.subscribe("room:1") as messages: async for m in messages``.

        Messages published after the block is entered arrive in publish order per channel.
        ``last_id`` (a ``Last-Event-ID``) first replays the kept history after that id.
        """
        if not channels:
            raise ValueError("subscribe() needs at least one channel")
        await self._start()
        subscription = Subscription(
            channels, self.config.queue_size, self.config.overflow == "close"
        )
        try:
            for channel in channels:
                local = self._local.get(channel)
                if local is None:
                    local = self._local[channel] = set()
                    local.add(subscription)
                    await self.backend.subscribe(channel)
                else:
                    local.add(subscription)
            subscription.ready = True
            if last_id is not None:
                for channel in channels:
                    history = await self.backend.history(channel, last_id)
                    if history:
                        subscription.replay([Message(channel, *item) for item in history])
            yield subscription
        finally:
            subscription.end()
            for channel in channels:
                local = self._local.get(channel)
                if local is not None:
                    local.discard(subscription)
                    if not local:
                        del self._local[channel]
                        await self.backend.unsubscribe(channel)

    def subscribers(self, channel: str) -> int:
        """How many subscriptions in this process listen to ``channel``."""
        return sum(1 for s in self._local.get(channel, ()) if s.ready)

    # -- delivery to clients ----------------------------------------------------------------------
    def sse(
        self, *channels: str, ping: float = DEFAULT_PING, retry: int | None = None
    ) -> EventSourceResponse:
        """A server-sent event stream of ``channels``: ``return channels.sse("room:1")``.

        Each message is an event with its id and its ``publish(event=...)`` name; a browser
        reconnecting with ``Last-Event-ID`` first gets what it missed (from the history).
        """
        return _ChannelStream(self, channels, ping, retry)

    async def forward(
        self,
        ws: WebSocket,
        *channels: str,
        on_message: Callable[[str | bytes], Awaitable[None]] | None = None,
        on_subscribed: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Relay ``channels`` to an accepted WebSocket as JSON text, while the client's own
        messages go to ``on_message``; returns when the client disconnects.

        ``on_subscribed`` runs once the subscription is live (every message published from
        then on is relayed): tell the client it may start there. A subscriber falling too
        far behind (``overflow="close"``) is closed with 1013.
        """
        async with self.subscribe(*channels) as messages:
            if on_subscribed is not None:
                await on_subscribed()
            reader = asyncio.ensure_future(_read_client(ws, on_message))
            # The client leaving (or on_message failing) ends the subscription, which wakes
            # the loop below: no future per message, which a fan-out to thousands of
            # subscribers pays for once per subscriber and message.
            reader.add_done_callback(lambda _: messages.end())
            try:
                async for message in messages:
                    if reader.done():
                        break
                    await ws.send_text(message.text)
            except SlowConsumer as exc:
                await ws.close(TRY_AGAIN_LATER, str(exc))
                return
            except WebSocketDisconnect:
                return
            finally:
                if not reader.done():
                    reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                    await reader  # re-raises a failure of on_message

    async def close(self) -> None:
        """End every subscription and close the backend (the app does it on shutdown)."""
        for subscribers in list(self._local.values()):
            for subscription in list(subscribers):
                subscription.end()
        # The next publish or subscribe starts the backend again: an app served a second time
        # in one process (one test client after another) gets working channels.
        self._started = False
        await self.backend.close()


async def _read_client(
    ws: WebSocket, on_message: Callable[[str | bytes], Awaitable[None]] | None
) -> None:
    async for incoming in ws:
        if on_message is not None:
            await on_message(incoming)


class _ChannelStream(EventSourceResponse):
    """``Channels.sse``: the stream subscribes when it starts, with the request's
    ``Last-Event-ID``."""

    __slots__ = ("_channels", "_hub", "_subscribed")

    def __init__(
        self, hub: Channels, channels: tuple[str, ...], ping: float, retry: int | None
    ) -> None:
        super().__init__(_nothing(), ping=ping, retry=retry)
        self._hub = hub
        self._channels = channels
        self._subscribed: contextlib.AbstractAsyncContextManager[Any] | None = None

    async def resolve(self, request: Any) -> EventSourceResponse:
        req: Request = request
        last_id = req.headers.get("last-event-id")
        # Subscribed before the response starts: what is published once the client has the
        # headers is never missed.
        subscribing = self._hub.subscribe(*self._channels, last_id=last_id)
        try:
            messages = await subscribing.__aenter__()
        except ChannelsUnavailable as exc:
            # Only a replay (Last-Event-ID) fails when Redis is down: a reconnecting browser.
            # EventSource gives up for good on an error status such as 503, so it gets an
            # empty stream that sets the reconnection delay to Retry-After instead: it comes
            # back with the same Last-Event-ID then, and replays what it missed.
            logger.warning("event stream replay deferred, Redis unavailable: %s", exc)
            self.retry = int((exc.headers or {}).get("Retry-After", "5")) * 1000
            self.content = _nothing()
            await super().resolve(request)
            return self
        self._subscribed = subscribing
        self.content = self._events(messages)
        await super().resolve(request)
        return self

    async def send_to(self, scope: Scope, send: Send, extra: RawHeaders = ()) -> None:  # type: ignore[assignment]
        try:
            await super().send_to(scope, send, extra)
        finally:
            # However the stream ended (a HEAD request never starts the generator).
            subscribed, self._subscribed = self._subscribed, None
            if subscribed is not None:
                await subscribed.__aexit__(None, None, None)

    async def _events(self, messages: Subscription) -> AsyncIterator[Event]:
        try:
            async for message in messages:
                yield Event(message.text, event=message.event, id=message.id)
        except SlowConsumer:
            return  # the browser reconnects with Last-Event-ID and replays what it can


async def _nothing() -> AsyncIterator[Any]:
    return
    yield
