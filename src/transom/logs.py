"""Logs for production: a request id on every line of a request, JSON or text lines.

Each HTTP request gets an id (:class:`RequestIdMiddleware`, on unless
``Settings.request_id_header`` is ``""``): the ``X-Request-ID`` a trusted proxy sent (the
security battery's ``trusted_proxies``), else a new random one. It is returned in the response's
``X-Request-ID``, shown on the 500 page, carried by the tasks the request enqueues, and held
in a context variable for the time of the request: :class:`RequestIdFilter` copies it onto each
log record as ``request_id`` (``-`` outside a request), so the access line, error tracebacks
and your own ``logger.info(...)`` lines of one request can be found together.

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
    "TextFormatter",
    "configure_logging",
    "current_request_id",
    "request_id_var",
]

#: The request id of the request being handled (``None`` outside one).
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "transom_request_id", default=None
)
#: Where :class:`RequestIdMiddleware` puts the id in the ASGI scope.
REQUEST_ID_SCOPE_KEY = "transom.request_id"
# What an id from a proxy may look like (no spaces, quotes or control characters, bounded).
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def current_request_id() -> str | None:
    """The id of the request being handled in this context, or ``None``."""
    return request_id_var.get()


class RequestIdMiddleware:
    """Gives each HTTP request an id (installed by the app, outermost; not added by hand).

    Args:
        app: The ASGI app to wrap.
        header: The header that carries the id (``X-Request-ID``).
        trusted: Proxy addresses or networks whose id is kept; from anyone else the header
            is ignored (a client could otherwise pick ids that collide with others' to muddle
            the logs).
    """

    __slots__ = ("app", "header", "networks")

    def __init__(self, app: ASGIApp, header: str = "X-Request-ID", trusted: Iterable[str] = ()):
        self.app = app
        self.header = header.lower().encode("latin-1")
        self.networks: list[_Network] = [ipaddress.ip_network(t, strict=False) for t in trusted]

    def _from_proxy(self, scope: Scope) -> str | None:
        client = scope.get("client")
        if not client:
            return None
        try:
            address = ipaddress.ip_address(client[0])
        except ValueError:
            return None
        if not any(address in net for net in self.networks):
            return None
        for name, value in scope["headers"]:
            if name == self.header:
                text = value.decode("latin-1")
                return text if _SANE_ID.fullmatch(text) else None
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # 128 random bits, as uuid4 has, for a third of its cost.
        rid = (self._from_proxy(scope) if self.networks else None) or os.urandom(16).hex()
        scope[REQUEST_ID_SCOPE_KEY] = rid
        name = self.header
        pair = (name, rid.encode("latin-1"))

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

        token = request_id_var.set(rid)
        try:
            await self.app(scope, receive, send_with_id)
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
