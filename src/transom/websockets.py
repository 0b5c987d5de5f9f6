"""WebSocket connections: the ``WebSocket`` object handlers receive, and the route that serves them.

A WebSocket handshake is an HTTP ``GET``, so :class:`WebSocket` is a
:class:`~transom.requests.Request`: headers, query, cookies, ``state`` and ``url_for`` work the
same, and so does every dependency that takes a ``Request`` (the session, ``CurrentUser``).
Routes are declared with ``@app.websocket(path)`` and compiled by the same signature machinery
as HTTP routes; what fails before :meth:`WebSocket.accept` (a missing parameter, a dependency
raising 401/403) refuses the handshake instead of answering an error page.

Limits come from :class:`~transom.settings.Settings` (``websocket_*``): a message larger than
``websocket_max_message_size`` closes the connection with 1009, more than
``websocket_rate_limit`` messages a second with 1008, and ``websocket_idle_timeout`` seconds
without a message either way with 1001. The client going away ends ``async for`` (and makes
``receive*`` raise :class:`WebSocketDisconnect`, which the app treats as a normal end).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import orjson
from pydantic import TypeAdapter, ValidationError

from transom._signature import Invalid, SolveContext
from transom._types import Message, Receive, Scope, Send
from transom.exceptions import HTTPException
from transom.requests import Request
from transom.responses import json_dumps
from transom.routing import Route

if TYPE_CHECKING:
    from transom.app import App

__all__ = [
    "WebSocket",
    "WebSocketDisconnect",
    "WebSocketRoute",
    "WebSocketState",
    "close_all",
    "serve_websocket",
]

logger = logging.getLogger("transom.websockets")
M = TypeVar("M")

#: Close codes (RFC 6455 section 7.4.1) the framework uses itself.
NORMAL = 1000
GOING_AWAY = 1001
INVALID_DATA = 1007
POLICY_VIOLATION = 1008
TOO_BIG = 1009
INTERNAL_ERROR = 1011
TRY_AGAIN_LATER = 1013
_MAX_REASON = 123  # bytes of UTF-8 a close frame's reason can carry
_LIVE_KEY = "transom.websockets.live"


class WebSocketDisconnect(Exception):
    """The connection is closed (by the client, or by the server for a limit or a bad message).

    Raised by the ``receive*``/``send*`` methods; a handler need not catch it: the app treats
    it as the normal end of the connection (no traceback is logged).
    """

    def __init__(self, code: int = NORMAL, reason: str = "") -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


class WebSocketState(enum.Enum):
    CONNECTING = 0
    CONNECTED = 1
    CLOSED = 2


# The hot paths compare with these: `WebSocketState.CONNECTED` is a look-up on the enum class.
_CONNECTING = WebSocketState.CONNECTING
_CONNECTED = WebSocketState.CONNECTED


def _clip_reason(reason: str) -> str:
    data = reason.encode("utf-8")
    if len(data) <= _MAX_REASON:
        return reason
    return data[: _MAX_REASON - 3].decode("utf-8", "ignore") + "..."


class WebSocket(Request):
    """One WebSocket connection; what a ``@app.websocket`` handler receives.

    Call :meth:`accept` first, then exchange messages: ``send_text``/``send_bytes``/``send_json``
    and ``receive_text``/``receive_bytes``/``receive_json``/``receive_model``, or
    ``async for message in ws`` (str or bytes, ends when the client disconnects).
    """

    __slots__ = (
        "_accepted_subprotocol",
        "_idle_expired",
        "_idle_timer",
        "_last_activity",
        "_limit_idle",
        "_limit_rate",
        "_limit_size",
        "_on_resolved",
        "_receiver",
        "_send",
        "_tokens",
        "_tokens_at",
        "close_code",
        "close_reason",
        "connection_state",
    )

    def __init__(self, scope: Scope, receive: Receive, send: Send, app: App | None = None) -> None:
        super().__init__(scope, receive, app)
        self._send = send
        self.connection_state = WebSocketState.CONNECTING
        #: The close code once the connection is closed (by either side).
        self.close_code: int | None = None
        self.close_reason = ""
        self._accepted_subprotocol: str | None = None
        self._on_resolved: list[Callable[[], Awaitable[None]]] | None = None
        settings = app.settings if app is not None else None
        self._limit_size = settings.websocket_max_message_size if settings else 1024 * 1024
        self._limit_idle = settings.websocket_idle_timeout if settings else 0.0
        self._limit_rate = settings.websocket_rate_limit if settings else 0.0
        self._tokens = self._limit_rate
        now = time.monotonic()
        self._tokens_at = now
        self._last_activity = now
        self._idle_timer: asyncio.TimerHandle | None = None
        self._receiver: asyncio.Task[Any] | None = None  # the task waiting in receive()
        self._idle_expired = False

    def on_resolved(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run ``callback`` once the handler's dependencies are resolved, before the handler.

        A connection lasts long: a dependency releases there what it only needed to resolve
        (the database battery ends the transaction that loaded ``CurrentUser``, so a pool
        connection is not held for the WebSocket's lifetime).
        """
        if self._on_resolved is None:
            self._on_resolved = []
        self._on_resolved.append(callback)

    # -- handshake ------------------------------------------------------------------------------
    @property
    def method(self) -> str:
        return "GET"

    @property
    def subprotocols(self) -> list[str]:
        """The subprotocols the client offered (``Sec-WebSocket-Protocol``), in its order."""
        return list(self.scope.get("subprotocols", ()))

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol accepted with :meth:`accept`, if any."""
        return self._accepted_subprotocol

    async def accept(
        self, subprotocol: str | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        """Complete the handshake, optionally choosing a ``subprotocol`` the client offered
        and adding response ``headers``."""
        if self.connection_state is not WebSocketState.CONNECTING:
            raise RuntimeError("accept() called twice, or after close()")
        message = await self._receive()
        if message["type"] == "websocket.disconnect":
            self._closed(int(message.get("code", GOING_AWAY)), "")
            raise WebSocketDisconnect(self.close_code or GOING_AWAY)
        if subprotocol is not None and subprotocol not in self.subprotocols:
            raise ValueError(f"the client did not offer the subprotocol {subprotocol!r}")
        raw = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()
        ]
        await self._send({"type": "websocket.accept", "subprotocol": subprotocol, "headers": raw})
        self._accepted_subprotocol = subprotocol
        self.connection_state = WebSocketState.CONNECTED
        self._last_activity = time.monotonic()

    async def close(self, code: int = NORMAL, reason: str = "") -> None:
        """Close the connection (before :meth:`accept`: refuse the handshake). Idempotent."""
        if self.connection_state is WebSocketState.CLOSED:
            return
        if self.connection_state is WebSocketState.CONNECTING:
            await self._receive()  # the websocket.connect message the server queued
        self._closed(code, reason)
        try:
            await self._send(
                {"type": "websocket.close", "code": code, "reason": _clip_reason(reason)}
            )
        except Exception:  # the transport is already gone: nothing left to tell the client
            logger.debug("websocket close after the transport closed", exc_info=True)

    async def deny(
        self,
        status_code: int = 403,
        detail: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Refuse the handshake with an HTTP response when the server supports it (the ASGI
        ``websocket.http.response`` extension), else with close code 1008."""
        if self.connection_state is not WebSocketState.CONNECTING:
            raise RuntimeError("deny() is only possible before accept()")
        if "websocket.http.response" not in (self.scope.get("extensions") or {}):
            await self.close(POLICY_VIOLATION, detail)
            return
        await self._receive()
        self._closed(POLICY_VIOLATION, detail)
        body = orjson.dumps({"detail": detail})
        raw = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        raw += [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()
        ]
        if self.app is not None:
            raw += self.app.default_headers.raw
        await self._send(
            {"type": "websocket.http.response.start", "status": status_code, "headers": raw}
        )
        await self._send({"type": "websocket.http.response.body", "body": body})

    def _closed(self, code: int, reason: str) -> None:
        self.connection_state = WebSocketState.CLOSED
        self.close_code = code
        self.close_reason = reason
        self._stop_idle_timer()

    # -- the idle timeout -------------------------------------------------------------------------
    # One timer per connection, armed at the idle deadline and moved only when it fires early
    # (activity pushed the deadline on), instead of a timeout around every receive: that
    # pushed a timer on the event loop's heap and cancelled it again for each message, the
    # largest cost of a busy connection's per-message path.
    def _arm_idle_timer(self) -> None:
        deadline = _loop_deadline(self._last_activity + self._limit_idle)
        self._idle_timer = asyncio.get_running_loop().call_at(deadline, self._idle_check)

    def _idle_check(self) -> None:
        self._idle_timer = None
        if self.connection_state is not WebSocketState.CONNECTED:
            return
        if time.monotonic() < self._last_activity + self._limit_idle:
            self._arm_idle_timer()  # a message either way meanwhile
        elif self._receiver is not None:
            self._idle_expired = True
            self._receiver.cancel()  # receive() turns this into the 1001 close
        # Else the handler is busy, not waiting for the client: the next receive() re-arms
        # the timer, which then fires at once.

    def _stop_idle_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()  # a closed connection must not stay referenced by it
            self._idle_timer = None

    # -- receiving ------------------------------------------------------------------------------
    async def receive(self) -> Message:
        """The next ASGI message (``websocket.receive``); raises :class:`WebSocketDisconnect`
        when the connection ends, after closing it if a limit was exceeded."""
        # The per-message path of every WebSocket: one coroutine (the idle watch is inline,
        # not a second one awaited), the state compared with a module constant (an enum
        # member looked up on its class costs ~0.1 us each time).
        if self.connection_state is not _CONNECTED:
            if self.connection_state is _CONNECTING:
                raise RuntimeError("call accept() before receiving messages")
            raise WebSocketDisconnect(self.close_code or NORMAL, self.close_reason)
        if self._limit_idle > 0:
            if self._idle_timer is None:
                self._arm_idle_timer()
            # The task to cancel when the connection goes idle: the one waiting here now.
            task = self._receiver = asyncio.current_task()
            try:
                message = await self._receive()
            except asyncio.CancelledError:
                if not self._idle_expired:
                    raise
                self._idle_expired = False
                if task is not None and task.uncancel() > 0:
                    raise  # cancelled from elsewhere too (a shutdown): that wins
                await self._fail(GOING_AWAY, "idle timeout")
            finally:
                self._receiver = None
        else:
            message = await self._receive()
        kind = message["type"]
        if kind != "websocket.receive":
            if kind == "websocket.disconnect":
                self._closed(int(message.get("code") or NORMAL), str(message.get("reason") or ""))
                raise WebSocketDisconnect(self.close_code or NORMAL, self.close_reason)
            return message
        self._last_activity = now = time.monotonic()
        if self._limit_rate > 0:
            # A token bucket: `rate` messages a second, bursts of up to one second's worth.
            tokens = min(
                self._limit_rate, self._tokens + (now - self._tokens_at) * self._limit_rate
            )
            self._tokens_at = now
            if tokens < 1:
                await self._fail(POLICY_VIOLATION, "message rate limit exceeded")
            self._tokens = tokens - 1
        text = message.get("text")
        if text is not None:
            # len() counts characters; a UTF-8 character is at most 4 bytes.
            if len(text) * 4 > self._limit_size and len(text.encode("utf-8")) > self._limit_size:
                await self._fail(TOO_BIG, f"message larger than {self._limit_size} bytes")
        else:
            data = message.get("bytes") or b""
            if len(data) > self._limit_size:
                await self._fail(TOO_BIG, f"message larger than {self._limit_size} bytes")
        return message

    async def _fail(self, code: int, reason: str) -> NoReturn:
        logger.info("closing websocket %s with %d: %s", self.path, code, reason)
        await self.close(code, reason)
        raise WebSocketDisconnect(code, reason)

    async def receive_text(self) -> str:
        """The next message as text (a binary message is closed with 1003)."""
        message = await self.receive()
        text = message.get("text")
        if text is None:
            await self._fail(1003, "expected a text message")
        return str(text)

    async def receive_bytes(self) -> bytes:
        """The next message as bytes (a text message is encoded as UTF-8)."""
        message = await self.receive()
        data = message.get("bytes")
        if data is None:
            return str(message.get("text", "")).encode("utf-8")
        return bytes(data)

    async def receive_json(self) -> Any:
        """The next message parsed as JSON; malformed JSON closes with 1007 (invalid data)."""
        message = await self.receive()
        raw = message.get("text")
        if raw is None:
            raw = message.get("bytes") or b""
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return await self._fail(INVALID_DATA, f"malformed JSON: {exc}")

    async def receive_model(self, model: type[M] | TypeAdapter[M]) -> M:
        """The next message validated as ``model`` (a Pydantic model or any type); malformed
        JSON or invalid data closes with 1007 and a reason that says what was wrong."""
        adapter = model if isinstance(model, TypeAdapter) else _adapter(model)
        message = await self.receive()
        raw = message.get("text")
        if raw is None:
            raw = message.get("bytes") or b""
        try:
            value: M = adapter.validate_json(raw)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_context=False, include_input=False)
            first = errors[0] if errors else {"loc": (), "msg": "invalid"}
            where = ".".join(str(p) for p in first["loc"]) or "message"
            more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
            return await self._fail(INVALID_DATA, f"{where}: {first['msg']}{more}")
        return value

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[str | bytes]:
        while True:
            try:
                message = await self.receive()
            except WebSocketDisconnect:
                return
            text = message.get("text")
            yield text if text is not None else bytes(message.get("bytes") or b"")

    async def iter_text(self) -> AsyncIterator[str]:
        """Text messages until the client disconnects."""
        while True:
            try:
                yield await self.receive_text()
            except WebSocketDisconnect:
                return

    async def iter_json(self) -> AsyncIterator[Any]:
        """JSON messages until the client disconnects (malformed JSON closes with 1007)."""
        while True:
            try:
                yield await self.receive_json()
            except WebSocketDisconnect:
                return

    # -- sending --------------------------------------------------------------------------------
    async def send(self, message: Message) -> None:
        """Send a raw ASGI message; raises :class:`WebSocketDisconnect` once closed."""
        if self.connection_state is not _CONNECTED:
            self._not_sendable()
        try:
            await self._send(message)
        except OSError as exc:  # the server reports a connection that is gone
            self._gone(exc)
        self._last_activity = time.monotonic()

    # send_text and send_bytes repeat send() rather than await it: one coroutine less on the
    # path of every message sent.
    async def send_text(self, data: str) -> None:
        if self.connection_state is not _CONNECTED:
            self._not_sendable()
        try:
            await self._send({"type": "websocket.send", "text": data})
        except OSError as exc:
            self._gone(exc)
        self._last_activity = time.monotonic()

    async def send_bytes(self, data: bytes) -> None:
        if self.connection_state is not _CONNECTED:
            self._not_sendable()
        try:
            await self._send({"type": "websocket.send", "bytes": data})
        except OSError as exc:
            self._gone(exc)
        self._last_activity = time.monotonic()

    def _not_sendable(self) -> NoReturn:
        if self.connection_state is _CONNECTING:
            raise RuntimeError("call accept() before sending messages")
        raise WebSocketDisconnect(self.close_code or NORMAL, self.close_reason)

    def _gone(self, exc: OSError) -> NoReturn:
        self._closed(GOING_AWAY, "")
        raise WebSocketDisconnect(GOING_AWAY) from exc

    async def send_json(self, data: Any, *, binary: bool = False) -> None:
        """Send ``data`` as JSON (orjson; Pydantic models, dataclasses and dates work)."""
        encoded = json_dumps(data)
        if binary:
            await self.send({"type": "websocket.send", "bytes": encoded})
        else:
            await self.send({"type": "websocket.send", "text": encoded.decode("utf-8")})

    def __repr__(self) -> str:
        return f"<WebSocket {self.path} {self.connection_state.name}>"


_adapters: dict[Any, TypeAdapter[Any]] = {}


def _adapter(model: Any) -> TypeAdapter[Any]:
    adapter = _adapters.get(model)
    if adapter is None:
        adapter = _adapters[model] = TypeAdapter(model)
    return adapter


def _loop_deadline(monotonic_deadline: float) -> float:
    loop = asyncio.get_running_loop()
    return loop.time() + (monotonic_deadline - time.monotonic())


class WebSocketRoute(Route):
    """A ``@app.websocket(path)`` route: compiled like an HTTP route, served by
    :func:`serve_websocket`; documented in the AsyncAPI document (not the OpenAPI one).

    ``receives=`` and ``sends=`` (a type or a list of types) declare the messages the
    client sends and the server sends, for ``/asyncapi.json``; ``include_in_schema=False``
    leaves the route out of it.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
        from transom.asyncapi import message_types

        options.pop("methods", None)
        self.receives = message_types(options.pop("receives", None))
        self.sends = message_types(options.pop("sends", None))
        self.include_in_asyncapi: bool = options.pop("include_in_schema", True)
        options["include_in_schema"] = False
        super().__init__(path, endpoint, methods=("GET",), **options)

    def __repr__(self) -> str:
        return f"<WebSocketRoute {self.path} name={self.name!r}>"

    def derive_options(self, include_in_schema: bool) -> dict[str, Any]:
        return {
            "receives": self.receives,
            "sends": self.sends,
            "include_in_schema": include_in_schema and self.include_in_asyncapi,
        }

    def compile(self) -> None:
        super().compile()
        assert self.dependant is not None
        if not self.dependant.request_names and not _takes_websocket(self.dependant):
            raise TypeError(
                f"websocket handler {self.name!r} takes no WebSocket argument "
                "(declare one: `ws: WebSocket`)"
            )
        if self.dependant.kind != "async":
            raise TypeError(f"websocket handler {self.name!r} must be an `async def` function")

    async def run(self, ws: WebSocket, values: list[Any], context: SolveContext) -> None:
        """Resolve the parameters and dependencies, then call the handler; dependencies are
        cleaned up when the connection ends."""
        dependant = self.dependant
        assert dependant is not None
        path = dict(zip(self.param_names, values, strict=True)) if values else {}
        ws.path_params = path
        ws.route = self
        from transom.params import Depends

        try:
            for guard in self._guards:
                await context.resolve(Depends(guard.call), guard, ws, path)
            kwargs = await dependant.solve(ws, path, context)
            if ws._on_resolved:
                for callback in ws._on_resolved:
                    await callback()
            await self.endpoint(**kwargs)
        except WebSocketDisconnect:
            # The client leaving is the normal end of a connection, not an error to throw
            # into the dependencies: their cleanup runs as after a handler that returned.
            await context.close(None)
            raise
        except BaseException as exc:
            await context.close(exc)
            raise
        await context.close(None)


def _takes_websocket(dependant: Any) -> bool:
    return any(d.request_names for d in dependant.walk())


# -- serving --------------------------------------------------------------------------------


class _Live:
    """The open connections of one app, closed with 1001 when the app shuts down."""

    __slots__ = ("closing", "drained", "sockets")

    def __init__(self) -> None:
        self.sockets: set[WebSocket] = set()  # each removes itself when it ends
        #: Set on shutdown: server-sent event streams watch it and end.
        self.closing = asyncio.Event()
        #: Set when the last socket ended during shutdown.
        self.drained = asyncio.Event()

    def discard(self, ws: WebSocket) -> None:
        self.sockets.discard(ws)
        if not self.sockets:
            self.drained.set()


def live_connections(app: App) -> _Live:
    """The registry of ``app``'s open WebSocket connections and event streams."""
    live = app.extensions.get(_LIVE_KEY)
    if live is None:
        live = app.extensions[_LIVE_KEY] = _Live()
    assert isinstance(live, _Live)
    return live


async def close_all(
    app: App,
    code: int = GOING_AWAY,
    reason: str = "server shutting down",
    wait: float = 5.0,
) -> None:
    """Close every open WebSocket of ``app`` with ``code`` and end its event streams; the
    app calls it first thing on shutdown. Waits (at most ``wait`` seconds) for the handlers
    to finish, so the close frames are out before the server stops the process."""
    live = app.extensions.get(_LIVE_KEY)
    if not isinstance(live, _Live):
        return
    live.closing.set()
    live.closing = asyncio.Event()  # for the streams of a later start-up (tests restart apps)
    if not live.sockets:
        return
    live.drained.clear()
    for ws in list(live.sockets):
        if ws.connection_state is WebSocketState.CONNECTED:
            await ws.close(code, reason)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(live.drained.wait(), wait)


def close_on_signals(app: App) -> None:
    """When a server stops on SIGTERM/SIGINT through Python signal handlers (uvicorn does),
    close ``app``'s WebSockets with 1001 and end its event streams as the signal arrives.

    Such a server waits for open connections before it runs the app's lifespan shutdown: an
    event stream, which never ends by itself, would hold it up until the client goes away.
    The server's own handler still runs after ours. Servers with native handlers (granian)
    are left alone. Called by the app once a server has started it.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(number)
        if (
            not callable(previous)
            or previous is signal.default_int_handler  # no server's: Python's own Ctrl-C
            or getattr(previous, "_transom_closes", False)
        ):
            continue

        def handler(signum: int, frame: Any, previous: Any = previous) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to close
                loop.call_soon_threadsafe(_schedule_close_all, app)
            previous(signum, frame)

        handler._transom_closes = True  # type: ignore[attr-defined]
        signal.signal(number, handler)


def _schedule_close_all(app: App) -> None:
    task = asyncio.ensure_future(close_all(app))
    _closing_tasks.add(task)  # a reference until it is done (the loop keeps only weak ones)
    task.add_done_callback(_closing_tasks.discard)


_closing_tasks: set[asyncio.Task[None]] = set()


async def serve_websocket(
    app: App,
    scope: Scope,
    receive: Receive,
    send: Send,
    trie: Any,
    context_factory: Callable[[], SolveContext],
) -> None:
    """Serve one WebSocket connection: route it, run the handler, close what it left open."""
    ws = WebSocket(scope, receive, send, app)
    path: str = scope["path"]
    root = scope.get("root_path")
    if root and path.startswith(root):
        path = path[len(root) :] or "/"
    host = next((v for k, v in scope["headers"] if k == b"host"), None)
    if not app._hosts.allows(host):
        logging.getLogger("transom.security").warning(
            "Rejected websocket with disallowed Host header %r", host
        )
        await ws.deny(400, "Invalid Host header")
        return
    found = trie.match(path) if trie is not None else None
    if found is None:
        await ws.deny(404, "Not Found")
        return
    leaf, values = found
    route = leaf.methods["GET"]
    live = live_connections(app)
    live.sockets.add(ws)
    try:
        await route.run(ws, values, context_factory())
    except WebSocketDisconnect:
        pass  # the client left, or a limit closed the connection: a normal end
    except Invalid as exc:
        reason = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors)
        await _refuse(ws, 422, POLICY_VIOLATION, f"invalid request: {reason}")
        return
    except HTTPException as exc:
        detail = str(exc.detail)
        await _refuse(ws, exc.status_code, POLICY_VIOLATION, detail, exc.headers)
        return
    except Exception:
        logger.exception("websocket handler %s failed", route.name)
        await _refuse(ws, 500, INTERNAL_ERROR, "Internal Server Error")
        return
    finally:
        live.discard(ws)
        ws._stop_idle_timer()
    if ws.connection_state is not WebSocketState.CLOSED:
        await ws.close(NORMAL)


async def _refuse(
    ws: WebSocket,
    status: int,
    code: int,
    reason: str,
    headers: Mapping[str, str] | None = None,
) -> None:
    if ws.connection_state is WebSocketState.CONNECTING:
        if status >= 500:
            await ws.close(code, reason)
        else:
            # Only the status and a JSON detail: no cookies or state leak into a refusal.
            await ws.deny(
                status,
                reason,
                {k: v for k, v in (headers or {}).items() if k.lower() == "www-authenticate"},
            )
    elif ws.connection_state is WebSocketState.CONNECTED:
        await ws.close(code, reason)
