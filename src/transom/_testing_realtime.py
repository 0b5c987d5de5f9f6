"""The test client's WebSocket sessions and server-sent event reader (see :mod:`transom.testing`).

Both talk ASGI to the app in-process: no socket, no server, the same messages a server sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import httpx
import orjson

from transom._types import Message
from transom.websockets import WebSocketDisconnect

if TYPE_CHECKING:
    from transom.app import App
    from transom.testing import _LoopThread

__all__ = [
    "AsyncEventStream",
    "AsyncWebSocketSession",
    "EventParser",
    "EventStream",
    "ServerSentEvent",
    "WebSocketDenied",
    "WebSocketSession",
    "parse_events",
    "parse_events_from_text",
]

# How long a handler gets to notice the client left before the test client cancels it (one
# that waits on a channel with nothing published would otherwise hang the test).
_GRACE = 5.0


class WebSocketDenied(Exception):
    """The app refused the handshake: ``status`` is the HTTP status (403 for a plain close
    before accept), ``code`` the close code if it closed, ``body`` the denial response's."""

    def __init__(
        self, status: int, code: int | None = None, reason: str = "", body: bytes = b""
    ) -> None:
        super().__init__(status, code, reason, body)
        self.status = status
        self.code = code
        self.reason = reason
        self.body = body

    def json(self) -> Any:
        return orjson.loads(self.body)


def _scope(kind: str, request: httpx.Request, client: tuple[str, int]) -> dict[str, Any]:
    url = request.url
    port = url.port or (443 if url.scheme in ("https", "wss") else 80)
    return {
        "type": kind,
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": url.scheme,
        "path": unquote(url.path),
        "raw_path": url.raw_path.split(b"?", 1)[0],
        "query_string": url.query,
        "root_path": "",
        "headers": [(k.lower(), v) for k, v in request.headers.raw],
        "client": client,
        "server": (url.host, port),
        "state": {},
    }


class AsyncWebSocketSession:
    """A WebSocket connection to the app, from ``async with client.websocket_connect(path)``."""

    def __init__(
        self, app: App, request: httpx.Request, client: tuple[str, int], subprotocols: Iterable[str]
    ) -> None:
        scope = _scope("websocket", request, client)
        scope["scheme"] = "wss" if request.url.scheme == "https" else "ws"
        scope["subprotocols"] = list(subprotocols)
        scope["extensions"] = {"websocket.http.response": {}}
        self.scope = scope
        self.app = app
        #: The subprotocol and headers the app accepted with.
        self.subprotocol: str | None = None
        self.headers: httpx.Headers = httpx.Headers()
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._client_closed = False
        self._app_closed = False

    async def __aenter__(self) -> AsyncWebSocketSession:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def connect(self) -> None:
        self._to_app.put_nowait({"type": "websocket.connect"})
        self._task = asyncio.create_task(self._run())
        message = await self._from_app.get()
        kind = message["type"]
        if kind == "websocket.accept":
            self.subprotocol = message.get("subprotocol")
            self.headers = httpx.Headers(list(message.get("headers", ())))
            return
        await self._finish()
        if kind == "websocket.close":
            raise WebSocketDenied(403, message.get("code", 1000), message.get("reason") or "")
        if kind == "websocket.http.response.start":
            body = b""
            while True:
                part = await self._from_app.get()
                if part["type"] != "websocket.http.response.body":
                    break
                body += part.get("body", b"")
                if not part.get("more_body", False):
                    break
            raise WebSocketDenied(int(message["status"]), None, "", body)
        raise RuntimeError(f"the app ended the handshake with {kind!r}")

    async def _run(self) -> None:
        try:
            await self.app(self.scope, self._receive, self._send)
        finally:
            self._from_app.put_nowait({"type": "transom.test.done"})

    async def _receive(self) -> Message:
        return await self._to_app.get()

    async def _send(self, message: Message) -> None:
        if self._client_closed or self._app_closed:
            raise OSError("the WebSocket connection is closed")
        if message["type"] == "websocket.close":
            self._app_closed = True
            # What a server tells the app once the close handshake is done.
            self._to_app.put_nowait({"type": "websocket.disconnect", "code": message.get("code")})
        self._from_app.put_nowait(message)

    # -- client side --------------------------------------------------------------------------
    async def send(self, message: Message) -> None:
        self._to_app.put_nowait(message)

    async def send_text(self, data: str) -> None:
        await self.send({"type": "websocket.receive", "text": data})

    async def send_bytes(self, data: bytes) -> None:
        await self.send({"type": "websocket.receive", "bytes": data})

    async def send_json(self, data: Any, *, binary: bool = False) -> None:
        encoded = orjson.dumps(data)
        if binary:
            await self.send_bytes(encoded)
        else:
            await self.send_text(encoded.decode())

    async def receive(self) -> Message:
        """The app's next message; raises :class:`WebSocketDisconnect` when it closed."""
        message = await self._from_app.get()
        kind = message["type"]
        if kind == "websocket.close":
            await self._finish()
            raise WebSocketDisconnect(int(message.get("code") or 1000), message.get("reason") or "")
        if kind == "transom.test.done":
            self._from_app.put_nowait(message)
            raise WebSocketDisconnect(1006, "the app ended without closing")
        return message

    async def receive_text(self) -> str:
        message = await self.receive()
        return str(message["text"])

    async def receive_bytes(self) -> bytes:
        message = await self.receive()
        return bytes(message["bytes"])

    async def receive_json(self) -> Any:
        message = await self.receive()
        return orjson.loads(message.get("text") or message.get("bytes") or b"")

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close from the client side (if still open) and wait for the handler to end."""
        if not self._client_closed and not self._app_closed:
            self._client_closed = True
            self._to_app.put_nowait(
                {"type": "websocket.disconnect", "code": code, "reason": reason}
            )
        await self._finish()

    async def _finish(self) -> None:
        task = self._task
        if task is None:
            return
        done, _ = await asyncio.wait({task}, timeout=_GRACE)
        if not done:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        else:
            task.result()  # an exception that escaped the app is the test's failure


class WebSocketSession:
    """The synchronous form of :class:`AsyncWebSocketSession` (``with client.websocket_connect``);
    the app runs on the test client's loop thread."""

    def __init__(self, loop: _LoopThread, factory: Any) -> None:
        self._loop = loop
        self._session: AsyncWebSocketSession = loop.run(factory())

    @property
    def subprotocol(self) -> str | None:
        return self._session.subprotocol

    @property
    def headers(self) -> httpx.Headers:
        return self._session.headers

    def __enter__(self) -> WebSocketSession:
        self._loop.run(self._session.connect())
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def send(self, message: Message) -> None:
        self._loop.run(self._session.send(message))

    def send_text(self, data: str) -> None:
        self._loop.run(self._session.send_text(data))

    def send_bytes(self, data: bytes) -> None:
        self._loop.run(self._session.send_bytes(data))

    def send_json(self, data: Any, *, binary: bool = False) -> None:
        self._loop.run(self._session.send_json(data, binary=binary))

    def receive(self) -> Message:
        return self._loop.run(self._session.receive())

    def receive_text(self) -> str:
        return self._loop.run(self._session.receive_text())

    def receive_bytes(self) -> bytes:
        return self._loop.run(self._session.receive_bytes())

    def receive_json(self) -> Any:
        return self._loop.run(self._session.receive_json())

    def close(self, code: int = 1000, reason: str = "") -> None:
        self._loop.run(self._session.close(code, reason))


# -- server-sent events ---------------------------------------------------------------------------


@dataclasses.dataclass
class ServerSentEvent:
    """One event of a ``text/event-stream`` (or, with ``comments=True``, a comment line); ``id``
    and ``retry`` are the last ones the stream set, as a browser keeps them."""

    data: str = ""
    event: str = "message"
    id: str | None = None
    retry: int | None = None
    comment: str | None = None

    def json(self) -> Any:
        return orjson.loads(self.data)


class EventParser:
    """Turns the lines of an event stream into events, as the HTML standard says."""

    def __init__(self, comments: bool = False) -> None:
        self.comments = comments
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None  # the last event id persists across events
        self._retry: int | None = None  # the reconnection time also persists

    def line(self, line: str) -> ServerSentEvent | None:
        """Feed one line (without its end); returns the event it completes, if any."""
        if not line:
            data, event = self._data, self._event
            self._data, self._event = [], ""
            if data:
                return ServerSentEvent("\n".join(data), event or "message", self._id, self._retry)
            return None
        if line.startswith(":"):
            return (
                ServerSentEvent(comment=line[1:].lstrip(" "), event="") if self.comments else None
            )
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
        return None


def parse_events(lines: Iterable[str], *, comments: bool = False) -> Iterator[ServerSentEvent]:
    """Parse lines of an event stream into events (``comments=True``: heartbeats too)."""
    parser = EventParser(comments)
    for line in lines:
        event = parser.line(line)
        if event is not None:
            yield event


def parse_events_from_text(text: str, *, comments: bool = False) -> Iterator[ServerSentEvent]:
    """Parse a whole event stream body (``response.text``) into events."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return parse_events([*lines, ""], comments=comments)


class _LineSplitter:
    def __init__(self) -> None:
        self.buffer = ""

    def feed(self, chunk: str) -> list[str]:
        self.buffer += chunk
        normalised = self.buffer.replace("\r\n", "\n").replace("\r", "\n")
        *lines, self.buffer = normalised.split("\n")
        return lines


class AsyncEventStream:
    """An event stream response being read: ``status_code``, ``headers``, and ``async for``
    over its :class:`ServerSentEvent`\\ s; leaving the block disconnects the client."""

    def __init__(
        self, app: App, request: httpx.Request, client: tuple[str, int], comments: bool
    ) -> None:
        self.app = app
        self.scope = _scope("http", request, client)
        self.comments = comments
        self.status_code = 0
        self.headers = httpx.Headers()
        self._chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._gone = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._started = asyncio.Event()
        self._pending: list[ServerSentEvent] = []
        self._lines = _LineSplitter()
        self._parser = EventParser(comments)
        self._ended = False

    async def open(self) -> None:
        self._task = asyncio.create_task(self._run())
        await self._started.wait()

    async def _run(self) -> None:
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await self._gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if self._gone.is_set():
                raise OSError("the client disconnected")
            if message["type"] == "http.response.start":
                self.status_code = int(message["status"])
                self.headers = httpx.Headers(list(message.get("headers", ())))
                self._started.set()
            elif message["type"] == "http.response.body":
                self._chunks.put_nowait(message.get("body", b""))
                if not message.get("more_body", False):
                    self._chunks.put_nowait(None)

        try:
            await self.app(self.scope, receive, send)
        finally:
            self._started.set()
            self._chunks.put_nowait(None)

    def __aiter__(self) -> AsyncIterator[ServerSentEvent]:
        return self

    async def __anext__(self) -> ServerSentEvent:
        while not self._pending:
            if self._ended:
                raise StopAsyncIteration
            chunk = await self._chunks.get()
            if chunk is None:
                self._ended = True
                lines = self._lines.feed("\n\n")
            else:
                lines = self._lines.feed(chunk.decode("utf-8"))
            for line in lines:
                event = self._parser.line(line)
                if event is not None:
                    self._pending.append(event)
        return self._pending.pop(0)

    async def close(self) -> None:
        """Disconnect, and wait for the app to notice (or cancel it after a grace period)."""
        self._gone.set()
        task = self._task
        if task is None:
            return
        done, _ = await asyncio.wait({task}, timeout=_GRACE)
        if not done:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        else:
            task.result()

    async def __aenter__(self) -> AsyncEventStream:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class EventStream:
    """The synchronous form of :class:`AsyncEventStream` (``with client.events(path) as s``)."""

    def __init__(self, loop: _LoopThread, factory: Any) -> None:
        self._loop = loop
        self._stream: AsyncEventStream = loop.run(factory())

    @property
    def status_code(self) -> int:
        return self._stream.status_code

    @property
    def headers(self) -> httpx.Headers:
        return self._stream.headers

    def __enter__(self) -> EventStream:
        self._loop.run(self._stream.open())
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._loop.run(self._stream.close())

    def __iter__(self) -> Iterator[ServerSentEvent]:
        return self

    def __next__(self) -> ServerSentEvent:
        try:
            return self._loop.run(self._stream.__anext__())
        except StopAsyncIteration:
            raise StopIteration from None
