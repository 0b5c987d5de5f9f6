"""Server-sent events: a response that streams events from an async generator.

::

    @app.get("/clock")
    async def clock(last_event_id: LastEventId = None) -> EventSourceResponse:
        async def ticks() -> AsyncIterator[Event]:
            n = int(last_event_id or 0)
            while True:
                n += 1
                yield Event({"tick": n}, event="tick", id=n)
                await asyncio.sleep(1)
        return EventSourceResponse(ticks())

Each item the generator yields becomes one event: an :class:`Event`, or any other value as the
event's data (a ``str`` is sent as it is, anything else as JSON). While the generator is quiet,
a comment line goes out every ``ping`` seconds, so proxies and load balancers keep the
connection open and a gone client is noticed. The stream ends, and the generator is closed
(its ``finally`` blocks run), when the client disconnects, when the generator returns, or when
the app shuts down. The headers tell proxies not to buffer (``X-Accel-Buffering: no``) and
caches not to store (``Cache-Control: no-cache``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from typing import TYPE_CHECKING, Annotated, Any

from transom._types import Receive, Scope, Send
from transom.params import Header
from transom.responses import RawHeaders, Response, json_dumps

if TYPE_CHECKING:
    from transom.requests import Request

__all__ = ["DEFAULT_PING", "Event", "EventSourceResponse", "LastEventId", "encode_event"]

logger = logging.getLogger("transom.sse")

#: Seconds between heartbeat comments while no event is sent.
DEFAULT_PING = 15.0

#: The ``Last-Event-ID`` header a reconnecting ``EventSource`` sends: ``last: LastEventId = None``.
LastEventId = Annotated[str | None, Header(alias="last-event-id")]


@dataclasses.dataclass(slots=True)
class Event:
    """One server-sent event.

    Attributes:
        data: The payload: a ``str`` is sent as it is, anything else as JSON (orjson).
        event: The event type (``addEventListener(type, ...)`` in the browser); default
            ``message``.
        id: The event id; the browser sends the last one back as ``Last-Event-ID`` when it
            reconnects.
        retry: How long the browser waits before reconnecting, in milliseconds.
        comment: A comment line (ignored by browsers).
    """

    data: Any = None
    event: str | None = None
    id: str | int | None = None
    retry: int | None = None
    comment: str | None = None


def _clean(value: str, what: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError(f"an event {what} cannot contain a line break: {value!r}")
    return value


def encode_event(item: Any) -> bytes:
    """The wire form of one event (an :class:`Event` or a bare data value)."""
    event = item if isinstance(item, Event) else Event(item)
    lines: list[str] = []
    if event.comment is not None:
        lines.extend(f": {line}" for line in event.comment.splitlines() or [""])
    if event.event is not None:
        lines.append(f"event: {_clean(event.event, 'type')}")
    if event.id is not None:
        event_id = _clean(str(event.id), "id")
        if "\0" in event_id:
            raise ValueError("an event id cannot contain NUL")
        lines.append(f"id: {event_id}")
    if event.retry is not None:
        lines.append(f"retry: {int(event.retry)}")
    if event.data is not None:
        text = event.data if isinstance(event.data, str) else json_dumps(event.data).decode()
        # One data line per line of the payload: the browser joins them with "\n".
        lines.extend(f"data: {line}" for line in text.replace("\r\n", "\n").split("\n"))
    return ("\n".join(lines) + "\n\n").encode("utf-8")


_PING = b": ping\n\n"


class EventSourceResponse(Response):
    """A ``text/event-stream`` response fed by an async iterable of events.

    Args:
        content: Yields :class:`Event` objects or bare data values.
        status_code: The HTTP status (200).
        headers: Extra response headers.
        ping: Seconds between heartbeat comments when nothing is sent (0: none).
        retry: Sent first as the reconnection delay for the browser, in milliseconds.
    """

    media_type = "text/event-stream"
    deferred = True  # resolve() takes the request: its receive channel tells of a disconnect

    __slots__ = ("_closing", "_receive", "content", "ping", "retry")

    def __init__(
        self,
        content: AsyncIterable[Any],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        *,
        ping: float = DEFAULT_PING,
        retry: int | None = None,
    ) -> None:
        merged = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})}
        super().__init__(b"", status_code=status_code, headers=merged)
        self.content = content
        self.ping = ping
        self.retry = retry
        self._receive: Receive | None = None
        self._closing: asyncio.Event | None = None

    async def resolve(self, request: Any) -> Response:
        req: Request = request
        self._receive = req._receive
        if req.app is not None:
            from transom.websockets import live_connections

            self._closing = live_connections(req.app).closing
        return self

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._receive = receive
        await self.send_to(scope, send)

    async def send_to(self, scope: Scope, send: Send, extra: RawHeaders = ()) -> None:  # type: ignore[assignment]
        head = self._head(scope, extra, None)
        await send({"type": "http.response.start", "status": self.status_code, "headers": head})
        if scope.get("method") == "HEAD":
            await send({"type": "http.response.body", "body": b""})
            return
        iterator = aiter(self.content)
        watchers: list[asyncio.Future[Any]] = []
        if self._receive is not None:
            watchers.append(asyncio.ensure_future(_disconnected(self._receive)))
        if self._closing is not None:
            watchers.append(asyncio.ensure_future(self._closing.wait()))
        try:
            if self.retry is not None:
                await _send_body(send, f"retry: {int(self.retry)}\n\n".encode())
            await self._pump(iterator, send, watchers)
        except OSError:
            pass  # the server reports the client gone mid-send: as a disconnect
        else:
            with contextlib.suppress(OSError):
                await send({"type": "http.response.body", "body": b""})
        finally:
            for watcher in watchers:
                watcher.cancel()
            closer = getattr(iterator, "aclose", None)
            if closer is not None:
                await closer()  # the generator's `finally` (an unsubscribe) runs now

    async def _pump(
        self, iterator: AsyncIterator[Any], send: Send, watchers: list[asyncio.Future[Any]]
    ) -> None:
        timeout = self.ping if self.ping > 0 else None
        pending: asyncio.Future[Any] | None = None
        try:
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(anext(iterator))
                done, _ = await asyncio.wait(
                    [pending, *watchers], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    await _send_body(send, _PING)
                    continue
                if pending not in done:
                    return  # the client left, or the app is shutting down
                try:
                    item = pending.result()
                except StopAsyncIteration:
                    return
                except Exception:
                    # The response has started: the status can't change any more. End the
                    # stream (the browser reconnects) and keep the traceback in the log.
                    logger.exception("the event stream's generator failed")
                    return
                finally:
                    pending = None
                await _send_body(send, encode_event(item))
        finally:
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await pending


async def _send_body(send: Send, data: bytes) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": True})


async def _disconnected(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
