"""Test clients that call an app in-process through httpx (no sockets, real ASGI).

``TestClient`` is synchronous: the app runs on an event loop in a background thread that lives
as long as the client, so connection pools and other loop-bound state survive between requests.
``AsyncTestClient`` runs the app on the caller's loop. Both keep cookies, follow the httpx API,
and run the app's startup and shutdown hooks (as context managers, or lazily on first request).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote

import httpx

from transom._testing_realtime import (
    AsyncEventStream,
    AsyncWebSocketSession,
    EventStream,
    ServerSentEvent,
    WebSocketDenied,
    WebSocketSession,
    parse_events,
    parse_events_from_text,
)

if TYPE_CHECKING:
    from transom.app import App

__all__ = [
    "AsyncEventStream",
    "AsyncTestClient",
    "AsyncWebSocketSession",
    "EventStream",
    "ServerSentEvent",
    "TestClient",
    "WebSocketDenied",
    "WebSocketSession",
    "parse_events",
    "parse_events_from_text",
]

T = TypeVar("T")
TEST_HOST = "testserver"


async def _call_app(app: App, request: httpx.Request, client: tuple[str, int]) -> httpx.Response:
    body = request.content if hasattr(request, "_content") else await request.aread()
    url = request.url
    host = url.host
    port = url.port or (443 if url.scheme == "https" else 80)
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": url.scheme,
        "path": unquote(url.path),
        "raw_path": url.raw_path.split(b"?", 1)[0],
        "query_string": url.query,
        "root_path": "",
        "headers": [(k.lower(), v) for k, v in request.headers.raw],
        "client": client,
        "server": (host, port),
        "state": {},
    }
    sent_body = False
    response_done = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        await response_done.wait()
        return {"type": "http.disconnect"}

    status: int | None = None
    headers: list[tuple[bytes, bytes]] = []
    chunks: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                response_done.set()

    try:
        await app(scope, receive, send)  # type: ignore[arg-type]
    finally:
        response_done.set()
    if status is None:
        raise RuntimeError("the application returned without sending a response")
    # A stream, not content=: httpx would add a Content-Length the app never sent.
    return httpx.Response(
        status, headers=headers, stream=httpx.ByteStream(b"".join(chunks)), request=request
    )


def _prepare(app: App) -> None:
    # The test client's host name is allowed for this app, as Django's test runner does.
    if TEST_HOST not in app.settings.allowed_hosts:
        app.settings.allowed_hosts = [*app.settings.allowed_hosts, TEST_HOST]
    app.invalidate()


class _LoopThread:
    """An event loop running in a daemon thread; coroutines are submitted to it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="testclient")
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


class _SyncTransport(httpx.BaseTransport):
    def __init__(self, owner: TestClient) -> None:
        self.owner = owner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        owner = self.owner
        request.read()
        owner._ensure_started()
        return owner._loop.run(_call_app(owner.app, request, owner.client_address))


class TestClient(httpx.Client):
    """Synchronous client for an :class:`~transom.App`: ``with app.test_client() as client:``."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        app: App,
        *,
        base_url: str = f"http://{TEST_HOST}",
        client_address: tuple[str, int] = ("127.0.0.1", 50000),
        **kwargs: Any,
    ) -> None:
        self.app = app
        self.client_address = client_address
        _prepare(app)
        self._loop = _LoopThread()
        self._started_here = False
        super().__init__(
            transport=_SyncTransport(self), base_url=base_url, follow_redirects=False, **kwargs
        )

    def _ensure_started(self) -> None:
        if not self.app.started:
            self._loop.run(self.app.startup())
            self._started_here = True

    def __enter__(self) -> TestClient:
        super().__enter__()
        self._ensure_started()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        try:
            self._shutdown()
        finally:
            super().__exit__(exc_type, exc_value, traceback)
            self._stop_loop()

    def _shutdown(self) -> None:
        if self._started_here:
            self._started_here = False
            self._loop.run(self.app.shutdown())

    def _stop_loop(self) -> None:
        if self._loop.thread.is_alive():
            self._loop.close()

    def websocket_connect(
        self,
        url: str,
        *,
        subprotocols: Sequence[str] = (),
        headers: Mapping[str, str] | None = None,
    ) -> WebSocketSession:
        """Open a WebSocket to the app: ``with client.websocket_connect("/ws") as ws:``; the
        client's cookies go with the handshake. A refused handshake raises
        :class:`WebSocketDenied` on entering the block."""
        self._ensure_started()
        request = self.build_request("GET", url, headers=headers)

        async def make() -> AsyncWebSocketSession:
            return AsyncWebSocketSession(self.app, request, self.client_address, subprotocols)

        return WebSocketSession(self._loop, make)

    def events(
        self, url: str, *, headers: Mapping[str, str] | None = None, comments: bool = False
    ) -> EventStream:
        """Read a server-sent event stream: ``with client.events("/feed") as stream:`` then
        ``next(stream)`` or ``for event in stream``; leaving the block disconnects."""
        self._ensure_started()
        request = self.build_request("GET", url, headers=headers)

        async def make() -> AsyncEventStream:
            return AsyncEventStream(self.app, request, self.client_address, comments)

        return EventStream(self._loop, make)

    def close(self) -> None:
        try:
            self._shutdown()
        finally:
            super().close()
            self._stop_loop()


class _AsyncTransport(httpx.AsyncBaseTransport):
    def __init__(self, owner: AsyncTestClient) -> None:
        self.owner = owner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        await self.owner._ensure_started()
        return await _call_app(self.owner.app, request, self.owner.client_address)


class AsyncTestClient(httpx.AsyncClient):
    """Async client for an :class:`~transom.App`: ``async with app.async_test_client() as c:``."""

    __test__ = False

    def __init__(
        self,
        app: App,
        *,
        base_url: str = f"http://{TEST_HOST}",
        client_address: tuple[str, int] = ("127.0.0.1", 50000),
        **kwargs: Any,
    ) -> None:
        self.app = app
        self.client_address = client_address
        _prepare(app)
        self._started_here = False
        super().__init__(
            transport=_AsyncTransport(self), base_url=base_url, follow_redirects=False, **kwargs
        )

    async def _ensure_started(self) -> None:
        if not self.app.started:
            await self.app.startup()
            self._started_here = True

    async def __aenter__(self) -> AsyncTestClient:
        await super().__aenter__()
        await self._ensure_started()
        return self

    def websocket_connect(
        self,
        url: str,
        *,
        subprotocols: Sequence[str] = (),
        headers: Mapping[str, str] | None = None,
    ) -> AsyncWebSocketSession:
        """Open a WebSocket to the app: ``async with client.websocket_connect("/ws") as ws:``."""
        request = self.build_request("GET", url, headers=headers)
        return _StartingSession(self, request, subprotocols)

    def events(
        self, url: str, *, headers: Mapping[str, str] | None = None, comments: bool = False
    ) -> AsyncEventStream:
        """Read a server-sent event stream: ``async with client.events("/feed") as stream:``."""
        request = self.build_request("GET", url, headers=headers)
        return _StartingStream(self, request, comments)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        try:
            if self._started_here:
                self._started_here = False
                await self.app.shutdown()
        finally:
            await super().__aexit__(exc_type, exc_value, traceback)


class _StartingSession(AsyncWebSocketSession):
    # Starts the app (its lifespan) before the handshake, as a request would.
    def __init__(
        self, owner: AsyncTestClient, request: httpx.Request, subprotocols: Sequence[str]
    ) -> None:
        super().__init__(owner.app, request, owner.client_address, subprotocols)
        self._owner = owner

    async def connect(self) -> None:
        await self._owner._ensure_started()
        await super().connect()


class _StartingStream(AsyncEventStream):
    def __init__(self, owner: AsyncTestClient, request: httpx.Request, comments: bool) -> None:
        super().__init__(owner.app, request, owner.client_address, comments)
        self._owner = owner

    async def open(self) -> None:
        await self._owner._ensure_started()
        await super().open()
