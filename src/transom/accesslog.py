"""The access log: one line per HTTP request on the ``transom.access`` logger, on any server.

The app writes it (``Settings.access_log``, on by default; ``access_log_format`` says what a
line holds), so granian and uvicorn log the same line, and a request a middleware answers is
logged too. :func:`transom.serving.serve` turns the servers' own access logs off.

The fields of the format (``%(name)s`` as in :mod:`logging`):

========================  ======================================================================
``time``                  when the request arrived, local time, ISO 8601
``client``                the client's address as the server saw it (a proxy's, behind one)
``method``                the request method
``path``                  the path as sent (percent-escapes kept), without the query string
``query``                 ``?`` and the query string, or nothing: not in the default format,
                          because links carry secrets there (password reset tokens, OAuth codes)
``http_version``          ``1.1``, ``2``...
``status``                the response status (``-`` if none was sent: the client left)
``bytes``                 response body bytes sent
``duration_ms``           milliseconds from the request's arrival to its last byte (a float)
``request_id``            the request's id (:mod:`transom.logs`), returned in ``X-Request-ID``
``user_agent``            the ``User-Agent`` header
``referer``               the ``Referer`` header
========================  ======================================================================

Text from the request (path, headers) is logged with control characters escaped, so a client
can't forge log lines.
"""

from __future__ import annotations

import datetime
import logging
import sys
import time
from collections.abc import Iterable
from typing import Any

from transom._types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["DEFAULT_FORMAT", "AccessLog", "check_format", "install_default_handler", "logger"]

logger = logging.getLogger("transom.access")

#: Combined-log-like, without the query string (see the module's docstring).
DEFAULT_FORMAT = (
    '%(client)s - "%(method)s %(path)s HTTP/%(http_version)s" %(status)s %(bytes)s '
    "%(duration_ms).1fms"
)
_FIELDS = (
    "time",
    "client",
    "method",
    "path",
    "query",
    "http_version",
    "status",
    "bytes",
    "duration_ms",
    "request_id",
    "user_agent",
    "referer",
)
_CONTROL = {i: f"\\x{i:02x}" for i in (*range(0x20), 0x7F)}


def _clean(text: str) -> str:
    return text.translate(_CONTROL)


class _Line(dict[str, Any]):
    """The fields of one line: the common ones computed up front, the rest (headers, the
    time) only if the format asks for them."""

    __slots__ = ("_headers", "_scope", "_started")

    def __init__(
        self,
        scope: Scope,
        started: float,
        duration: float,
        status: int | None,
        sent: int,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        raw = scope.get("raw_path")
        path = raw.decode("latin-1") if raw else scope.get("root_path", "") + scope["path"]
        client = scope.get("client")
        super().__init__(
            method=scope.get("method", "-"),
            path=path.translate(_CONTROL),
            status=status if status is not None else "-",
            bytes=sent,
            duration_ms=duration * 1000,
            client=client[0] if client else "-",
            http_version=scope.get("http_version", "1.1"),
        )
        self._scope = scope
        self._started = started
        self._headers = headers

    def _request_header(self, name: bytes) -> str:
        for key, value in self._scope.get("headers", ()):
            if key == name:
                return _clean(value.decode("latin-1"))
        return "-"

    def __missing__(self, key: str) -> Any:
        if key == "query":
            query = self._scope.get("query_string", b"")
            return "?" + _clean(query.decode("latin-1")) if query else ""
        if key == "time":
            stamp = datetime.datetime.fromtimestamp(self._started).astimezone()
            return stamp.isoformat(timespec="seconds")
        if key == "request_id":
            given = self._scope.get("transom.request_id")  # the request's id (transom.logs)
            if given:
                return str(given)
            for name, value in self._headers:
                if name.lower() == b"x-request-id":
                    return _clean(value.decode("latin-1"))
            return self._request_header(b"x-request-id")
        if key == "user_agent":
            return self._request_header(b"user-agent")
        if key == "referer":
            return self._request_header(b"referer")
        raise KeyError(key)


def check_format(format: str) -> None:
    """Raise ``ValueError`` unless ``format`` formats a line (known fields, valid specs)."""
    sample = _Line({"type": "http", "path": "/", "headers": []}, time.time(), 0.001, 200, 0, [])
    try:
        format % sample
    except KeyError as exc:
        raise ValueError(
            f"unknown access log field {exc.args[0]!r}; the fields are {', '.join(_FIELDS)}"
        ) from None
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not a usable access log format ({exc})") from None


class AccessLog:
    """Wraps an ASGI app: logs each HTTP request it answers on ``transom.access`` at INFO.

    When that logger doesn't write INFO lines, a request costs one level check.
    """

    __slots__ = ("app", "exclude", "format")

    def __init__(
        self, app: ASGIApp, format: str = DEFAULT_FORMAT, exclude: Iterable[str] = ()
    ) -> None:
        self.app = app
        self.format = format
        #: Paths never logged (health probes): compared with the scope's path as it is.
        self.exclude = frozenset(exclude)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not logger.isEnabledFor(logging.INFO)
            or scope["path"] in self.exclude
        ):
            await self.app(scope, receive, send)
            return
        started = time.time()
        clock = time.perf_counter()
        status: int | None = None
        sent = 0
        headers: list[tuple[bytes, bytes]] = []

        async def logged_send(message: Message) -> None:
            nonlocal status, sent, headers
            kind = message["type"]
            if kind == "http.response.body":
                sent += len(message.get("body", b""))
            elif kind == "http.response.start":
                status = message["status"]
                headers = message.get("headers", headers)
            await send(message)

        try:
            await self.app(scope, receive, logged_send)
        finally:
            duration = time.perf_counter() - clock
            line = _Line(scope, started, duration, status, sent, headers)
            # makeRecord + handle: what logger.info does, minus the walk up the stack for the
            # caller's file and line, which an access line doesn't need and which cost most.
            record = logger.makeRecord(
                logger.name, logging.INFO, __file__, 0, self.format, (line,), None
            )
            logger.handle(record)


def install_default_handler() -> None:
    """Write the access log to stdout when logging isn't configured for it.

    Servers call the app's start-up in each worker; they configure their own loggers only, so
    ``transom.access`` would have nowhere to go. A project that configures logging (a handler
    on the root logger or on ``transom``/``transom.access``) keeps its configuration.
    """
    if logger.hasHandlers():
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
