"""The incoming HTTP request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

import orjson

from transom._hosts import parse_host
from transom._types import Message, Receive, Scope
from transom.datastructures import URL, FormData, Headers, QueryParams, State
from transom.exceptions import ClientDisconnect, HTTPException

if TYPE_CHECKING:
    from transom.app import App
    from transom.routing import Route

__all__ = ["Request", "parse_cookie_header", "parse_json"]

_UNSET: Any = object()
# Defaults used when a Request is built outside an App (the App passes its settings).
_DEFAULT_LIMITS = (10 * 1024 * 1024, 100 * 1024 * 1024, 1000, 100, 64, 1024 * 1024)
# Characters RFC 3986 allows unescaped in a path ("%" is not: a literal percent is re-encoded).
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


#: Media types by the raw Content-Type value: the same few come on every request with a body.
_MEDIA_TYPES: dict[bytes, str] = {}


class Request:
    """An HTTP request: headers, query, cookies and body readers.

    Parsed views (``headers``, ``query``, ``cookies``) are built on first access and cached; the
    body is read once and kept, so ``await request.json()`` may be called more than once.
    """

    __slots__ = (
        "_body",
        "_cookies",
        "_form",
        "_headers",
        "_json",
        "_query",
        "_receive",
        "_state",
        "_stream_consumed",
        "app",
        "path_params",
        "route",
        "scope",
    )

    def __init__(
        self, scope: Scope, receive: Receive | None = None, app: App | None = None
    ) -> None:
        self.scope = scope
        self._receive = receive or _empty_receive
        self.app = app
        self.route: Route | None = None
        self.path_params: dict[str, Any] = {}
        self._headers: Headers | None = None
        self._query: QueryParams | None = None
        self._cookies: dict[str, str] | None = None
        self._body: bytes | None = None
        self._json: Any = _UNSET
        self._form: FormData | None = None
        self._state: State | None = None
        self._stream_consumed = False

    # -- request line -------------------------------------------------------------------------
    @property
    def method(self) -> str:
        return str(self.scope["method"])

    @property
    def path(self) -> str:
        return str(self.scope["path"])

    @property
    def scheme(self) -> str:
        return str(self.scope.get("scheme", "http"))

    @property
    def is_secure(self) -> bool:
        return self.scheme in ("https", "wss")

    @property
    def host(self) -> str:
        """The ``Host`` header, lower-cased (``host`` or ``host:port``).

        The app refuses a request whose ``Host`` is not a well-formed, allowed host before any
        handler runs; a malformed value seen here anyway (a request built outside an app) is
        ignored in favour of the server's address, so it can never end up in a link.
        """
        raw = self.headers.get("host")
        if raw:
            parsed = parse_host(raw)
            if parsed is not None:
                host, port = parsed
                return host if port is None else f"{host}:{port}"
        server = self.scope.get("server")
        if server:
            return f"{server[0]}:{server[1]}" if server[1] not in (80, 443) else str(server[0])
        return "localhost"

    @property
    def url(self) -> URL:
        query = self.scope.get("query_string", b"").decode("latin-1")
        # ``path`` is percent-decoded; a URL must carry it encoded again.
        return URL(self.scheme, self.host, quote(self.path, safe=_PATH_SAFE), query)

    @property
    def base_url(self) -> URL:
        root = self.scope.get("root_path", "")
        return URL(self.scheme, self.host, root + "/")

    @property
    def client(self) -> tuple[str, int] | None:
        """``(host, port)`` of the peer, as the server reports it."""
        client = self.scope.get("client")
        return (str(client[0]), int(client[1])) if client else None

    # -- parsed views ---------------------------------------------------------------------------
    @property
    def headers(self) -> Headers:
        if self._headers is None:
            self._headers = Headers(self.scope["headers"])
        return self._headers

    @property
    def query(self) -> QueryParams:
        if self._query is None:
            self._query = QueryParams(self.scope.get("query_string", b""))
        return self._query

    @property
    def cookies(self) -> dict[str, str]:
        if self._cookies is None:
            # HTTP/2 lets a client send each cookie in its own ``Cookie`` header.
            self._cookies = parse_cookie_header("; ".join(self.headers.getlist("cookie")))
        return self._cookies

    @property
    def state(self) -> State:
        """Per-request attribute namespace for middleware and dependencies."""
        if self._state is None:
            self._state = State()
        return self._state

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-cased (``application/json``)."""
        # Straight from the raw headers (names are lower case in ASGI): read on every body.
        name: bytes
        value: bytes
        for name, value in self.scope["headers"]:
            if name == b"content-type":
                return _media_type(value)
        return ""

    def url_for(self, name: str, /, **params: Any) -> str:
        """Absolute URL of the named route, on the host and scheme of this request."""
        if self.app is None:
            raise RuntimeError("url_for needs a request that belongs to an App")
        path = self.app.url_path_for(name, **params)
        root = self.scope.get("root_path", "")
        return f"{self.scheme}://{self.host}{root}{path}"

    # -- body -----------------------------------------------------------------------------------
    @property
    def form_loaded(self) -> bool:
        """Whether :meth:`form` parsed the body: its uploads stay open until :meth:`close`
        (the app closes them after the response)."""
        return self._form is not None

    @property
    def max_json_depth(self) -> int:
        """How deeply a JSON body may nest: the app's ``max_json_depth`` setting (64)."""
        return self._limits()[4]

    def _limits(self) -> tuple[int, int, int, int, int, int]:
        return self.app.request_limits if self.app is not None else _DEFAULT_LIMITS

    def _begin_body(self, limit: int) -> str:
        """Mark the body as being read, refuse a declared length over ``limit`` up front, and
        return the media type (as :attr:`content_type`): one scan of the headers for both."""
        if self._stream_consumed:
            raise RuntimeError("the request body was already consumed")
        self._stream_consumed = True
        declared: bytes | None = None
        media: bytes | None = None
        name: bytes
        value: bytes
        for name, value in self.scope["headers"]:
            if name == b"content-length":
                if declared is None:
                    declared = value
            elif name == b"content-type" and media is None:
                media = value
        if declared is not None:
            if not (declared.isascii() and declared.isdigit()):
                raise HTTPException(400, "Invalid Content-Length header")
            if int(declared) > limit:
                raise HTTPException(413, f"Request body exceeds the limit of {limit} bytes")
        return "" if media is None else _media_type(media)

    async def _chunks(self, limit: int, message: Message | None = None) -> AsyncIterator[bytes]:
        received = 0
        while True:
            if message is None:
                message = await self._receive()
            kind = message["type"]
            if kind == "http.request":
                chunk = message.get("body", b"")
                if chunk:
                    received += len(chunk)
                    if received > limit:
                        raise HTTPException(413, f"Request body exceeds the limit of {limit} bytes")
                    yield chunk
                if not message.get("more_body", False):
                    return
            elif kind == "http.disconnect":
                raise ClientDisconnect()
            message = None

    async def stream(self, limit: int | None = None) -> AsyncIterator[bytes]:
        """Yield the body as it arrives. More than ``limit`` bytes (default: the upload limit)
        raises 413 before the excess is buffered."""
        if self._body is not None:
            yield self._body
            return
        if limit is None:
            limit = self._limits()[1]
        self._begin_body(limit)
        async for chunk in self._chunks(limit):
            yield chunk

    async def body(self) -> bytes:
        """The whole body (at most ``max_body_size`` bytes, else 413)."""
        if self._body is None:
            limit = self._limits()[0]
            self._begin_body(limit)
            message = await self._receive()
            body = _whole_body(message, limit)
            if body is None:
                body = b"".join([c async for c in self._chunks(limit, message)])
            self._body = body
        return self._body

    async def body_and_media_type(self) -> tuple[bytes, str]:
        """The whole body and its media type (:attr:`content_type`) at once, the headers
        scanned once for both the length and the type: what a JSON body parameter reads."""
        if self._body is not None or self._stream_consumed:
            return await self.body(), self.content_type
        limit = self._limits()[0]
        media = self._begin_body(limit)
        message = await self._receive()
        body = _whole_body(message, limit)
        if body is None:
            body = b"".join([c async for c in self._chunks(limit, message)])
        self._body = body
        return body, media

    async def json(self) -> Any:
        """The body parsed as JSON; malformed or too deeply nested JSON raises 400."""
        if self._json is _UNSET:
            self._json = parse_json(await self.body(), self._limits()[4])
        return self._json

    async def form(self) -> FormData:
        """Parse an urlencoded or multipart body (files spooled to disk past a size)."""
        if self._form is None:
            from transom._multipart import parse_form

            max_body, max_upload, max_fields, max_files, _, spool = self._limits()
            self._form = await parse_form(self, max_body, max_upload, max_fields, max_files, spool)
        return self._form

    async def close(self) -> None:
        if self._form is not None:
            await self._form.close()

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.path}>"


def _whole_body(message: Message, limit: int) -> bytes | None:
    """The body when the server delivered all of it in one message (the common case)."""
    if message["type"] == "http.request" and not message.get("more_body", False):
        body: bytes = message.get("body", b"")
        if len(body) > limit:
            raise HTTPException(413, f"Request body exceeds the limit of {limit} bytes")
        return body
    return None


def _media_type(value: bytes) -> str:
    """``application/json`` from a raw ``Content-Type`` value (parameters off, lower case)."""
    media = _MEDIA_TYPES.get(value)
    if media is None:
        media = value.split(b";", 1)[0].strip().lower().decode("latin-1")
        if len(_MEDIA_TYPES) < 256:  # the client's value: keep the memory bounded
            _MEDIA_TYPES[value] = media
    return media


async def _empty_receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


def parse_json(body: bytes, max_depth: int = 64) -> Any:
    """Parse JSON bytes, turning every failure into a 400 that says what is wrong."""
    if not body.strip():
        raise HTTPException(400, "Malformed JSON: the request body is empty")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HTTPException(400, f"Malformed JSON: {exc}") from None
    # Counting brackets is C-speed; only bodies that could exceed the depth get walked.
    if body.count(b"[") + body.count(b"{") > max_depth and _depth(value) > max_depth:
        raise HTTPException(400, f"Malformed JSON: nesting deeper than {max_depth} levels")
    return value


def _depth(value: Any) -> int:
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in item)
    return deepest


def parse_cookie_header(header: str) -> dict[str, str]:
    """Parse a ``Cookie`` header leniently, as browsers send it (first value of a name wins)."""
    cookies: dict[str, str] = {}
    for chunk in header.split(";"):
        name, sep, value = chunk.partition("=")
        name = name.strip()
        if not sep or not name:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        cookies.setdefault(name, unquote(value))
    return cookies
