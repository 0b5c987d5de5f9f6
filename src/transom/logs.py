"""Logs for production: a request id on every line of a request, JSON or text lines.

Each HTTP request gets an id (the app does it on its own request path, no middleware; on
unless ``Settings.request_id_header`` is ``""``): the ``X-Request-ID`` a trusted proxy sent
(the security battery's ``trusted_proxies``), else a new random one (:func:`new_request_id`).
It is returned in the response's ``X-Request-ID``, shown on the 500 page, carried by the tasks
the request enqueues, and held in a context variable for the time of the request:
:class:`RequestIdFilter` copies it onto each log record as ``request_id`` (``-`` outside a
request), so the access line, error tracebacks and your own ``logger.info(...)`` lines of
one request can be found together.

When a server runs the app and logging is not configured, :func:`configure_logging` writes
every log line to stdout: JSON objects (one a line) in production, text in debug mode, or what
``Settings.log_format`` says. A project that configures logging itself keeps its configuration
and adds the filter to its handlers::

    "filters": {"request_id": {"()": "transom.logs.RequestIdFilter"}},
    "formatters": {"json": {"()": "transom.logs.JSONFormatter"}},
"""

from __future__ import annotations

import contextvars
import datetime
import ipaddress
import logging
import os
import re
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson

from transom._types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from transom.settings import Settings

__all__ = [
    "REQUEST_ID_SCOPE_KEY",
    "JSONFormatter",
    "RequestIdFilter",
    "RequestIdMiddleware",
    "RequestIds",
    "TextFormatter",
    "configure_logging",
    "current_request_id",
    "new_request_id",
    "request_id_var",
    "with_request_id",
]

#: The request id of the request being handled (``None`` outside one).
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "transom_request_id", default=None
)
#: Where the app puts the request's id in the ASGI scope.
REQUEST_ID_SCOPE_KEY = "transom.request_id"
# What an id from a proxy may look like (no spaces, quotes or control characters, bounded).
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def current_request_id() -> str | None:
    """The id of the request being handled in this context, or ``None``."""
    return request_id_var.get()


_POOL_IDS = 512  # ids cut from one os.urandom call


class _IdPool:
    """Request ids cut from a buffer of ``os.urandom`` output: one system call per 512 ids.

    Each id is 128 fresh random bits as 32 hex characters (as ``uuid4().hex`` has 122), never
    handed out twice: ids are unique across processes and hosts the way random UUIDs are (a
    collision among 2**32 ids has odds of about 2**-65), with no coordination, and they give
    away neither the worker nor how many requests it served (a counter would). A forked
    worker starts its own buffer, never its parent's.
    """

    def __init__(self) -> None:
        self.refill()

    def refill(self) -> None:
        # Cut in C: hex() puts a space after every 16 bytes and split() makes the ids, about
        # 60 ns an id less than slicing them one by one in Python.
        ids = os.urandom(16 * _POOL_IDS).hex(" ", 16).split(" ")
        # A list iterator's __next__ is atomic: two threads never get the same id; two that
        # find it empty at once each make a pool of their own (fresh random bits either way).
        self._next = iter(ids).__next__

    def take(self) -> str:
        try:
            return self._next()
        except StopIteration:
            self.refill()
            return self._next()


_ids = _IdPool()
os.register_at_fork(after_in_child=_ids.refill)


def new_request_id() -> str:
    """A fresh request id: 128 random bits as 32 lower-case hex characters (see ``_IdPool``)."""
    return _ids.take()


class RequestIds:
    """Names the requests of one app: the id a trusted proxy sent, else a new random one.

    The app does this itself on every HTTP request (``Settings.request_id_header``; no
    middleware): it puts the id in the scope (:data:`REQUEST_ID_SCOPE_KEY`) and in
    :data:`request_id_var` for the time of the request, and appends it to the response.

    Args:
        header: The header that carries the id (``X-Request-ID``).
        trusted: Proxy addresses or networks whose id is kept; from anyone else the header
            is ignored (a client could otherwise pick ids that collide with others' to muddle
            the logs).
    """

    __slots__ = ("_trust", "header", "networks")

    def __init__(self, header: str = "X-Request-ID", trusted: Iterable[str] = ()) -> None:
        #: The header's name as sent: lower-case bytes.
        self.header = header.lower().encode("latin-1")
        self.networks: list[_Network] = [ipaddress.ip_network(t, strict=False) for t in trusted]
        # Whether a client address is a trusted proxy, by the address as the server gave it:
        # behind a proxy the same few addresses come back on every request.
        self._trust: dict[str, bool] = {}

    def _trusted(self, host: str) -> bool:
        trusted = self._trust.get(host)
        if trusted is None:
            try:
                address = ipaddress.ip_address(host)
            except ValueError:
                trusted = False
            else:
                trusted = any(address in net for net in self.networks)
            if len(self._trust) >= 4096:  # direct clients are many: keep the memory bounded
                self._trust.clear()
            self._trust[host] = trusted
        return trusted

    def _from_proxy(self, scope: Scope) -> str | None:
        client = scope.get("client")
        if not client or not self._trusted(str(client[0])):
            return None
        for name, value in scope["headers"]:
            if name == self.header:
                text = value.decode("latin-1")
                return text if _SANE_ID.fullmatch(text) else None
        return None

    def of(self, scope: Scope) -> str:
        """The id of the request of ``scope``: its trusted proxy's, else a new one."""
        if self.networks:
            return self._from_proxy(scope) or _ids.take()
        return _ids.take()


def with_request_id(send: Send, pair: tuple[bytes, bytes]) -> Send:
    """``send``, adding the header ``pair`` to the response's start unless it has that header
    already (an answer that names its id itself: the 500 page)."""
    name = pair[0]

    async def send_with_id(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = message.get("headers")
            if headers is None:
                message["headers"] = [pair]
            else:
                for key, _ in headers:
                    if key == name:  # the app set it (the 500 page): one is enough
                        break
                else:
                    if type(headers) is list:
                        headers.append(pair)  # a response's own list: no copy
                    else:
                        message["headers"] = [*headers, pair]
        await send(message)

    return send_with_id


class RequestIdMiddleware:
    """Gives each HTTP request an id, for an ASGI app other than a Transom ``App`` (which
    does it itself, without a middleware, when ``Settings.request_id_header`` is set).

    Args:
        app: The ASGI app to wrap.
        header: The header that carries the id (``X-Request-ID``).
        trusted: Proxy addresses or networks whose id is kept (see :class:`RequestIds`).
    """

    __slots__ = ("app", "ids")

    def __init__(self, app: ASGIApp, header: str = "X-Request-ID", trusted: Iterable[str] = ()):
        self.app = app
        self.ids = RequestIds(header, trusted)

    @property
    def header(self) -> bytes:
        return self.ids.header

    @property
    def networks(self) -> list[_Network]:
        return self.ids.networks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = self.ids.of(scope)
        scope[REQUEST_ID_SCOPE_KEY] = rid
        pair = (self.ids.header, rid.encode("latin-1"))
        token = request_id_var.set(rid)
        try:
            await self.app(scope, receive, with_request_id(send, pair))
        finally:
            request_id_var.reset(token)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to each record (``-`` outside a request); add it to a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):  # a record may carry its own (a task's)
            record.request_id = request_id_var.get() or "-"
        return True


# The attributes every LogRecord has: the rest came from `extra=` and go into JSON lines.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}
# The access log's fields worth a key of their own in a JSON line.
_ACCESS_FIELDS = ("client", "method", "path", "http_version", "status", "bytes", "duration_ms")


class JSONFormatter(logging.Formatter):
    """One JSON object a line: ``time`` (UTC), ``level``, ``logger``, ``message``,
    ``request_id``, ``exception`` (a traceback's text), what ``extra=`` added, and for access
    lines their fields (``method``, ``path``, ``status``, ``duration_ms``...)."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        line: dict[str, Any] = {
            "time": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
        }
        args = record.args
        if record.name == "transom.access" and isinstance(args, dict):
            for key in _ACCESS_FIELDS:
                if key in args:
                    line[key] = args[key]
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message [request id]``: for reading in a terminal."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s: %(message)s [%(request_id)s]", "%H:%M:%S"
        )


def log_format(settings: Settings) -> str:
    """``"json"`` or ``"text"``: ``Settings.log_format``, where ``"auto"`` is text in debug."""
    chosen = settings.log_format
    if chosen == "auto":
        return "text" if settings.debug else "json"
    return chosen


def configure_logging(settings: Settings) -> bool:
    """Send every log line to stdout in the format the settings choose, unless logging is
    configured already (a handler on the root, ``transom`` or ``transom.access`` logger).

    Servers call the app's start-up in each worker and configure their own loggers only, so the
    app's lines would have nowhere to go. Returns whether it configured anything.
    """
    root = logging.getLogger()
    if any(logging.getLogger(name).handlers for name in ("", "transom", "transom.access")):
        return False
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JSONFormatter() if log_format(settings) == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    access = logging.getLogger("transom.access")
    if settings.access_log and not access.isEnabledFor(logging.INFO):
        access.setLevel(logging.INFO)
    return True
