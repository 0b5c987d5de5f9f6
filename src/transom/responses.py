"""Response classes; each is also an ASGI app: ``await response(scope, receive, send)``."""

from __future__ import annotations

import dataclasses
import decimal
import enum
import json
import pathlib
from collections.abc import AsyncIterable, Iterable, Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from http.cookies import Morsel
from typing import Any, ClassVar, Literal
from urllib.parse import quote

import orjson
from pydantic import BaseModel

from transom._concurrency import iterate_in_threadpool
from transom._types import Message, Receive, Scope, Send
from transom.datastructures import MutableHeaders

__all__ = [
    "HTMLResponse",
    "JSONResponse",
    "PlainTextResponse",
    "RedirectResponse",
    "Response",
    "StreamingResponse",
    "json_dumps",
]

RawHeaders = list[tuple[bytes, bytes]]
SameSite = Literal["lax", "strict", "none"]
_NO_BODY_STATUSES = frozenset({204, 304})
# Headers that hold a list: one appended by the app (a session cookie, ``Vary: Cookie``) adds
# to the response's own instead of yielding to it.
_ADDITIVE = frozenset({b"set-cookie", b"vary"})
# A media type with its charset added where it needs one, by (media type, charset), and a
# Content-Type value as the bytes of its header: worked out once per value, not per response
# (the same few come back on every response). Bounded: media types may come from data.
_FULL_MEDIA: dict[tuple[str, str], str] = {}
_ENCODED: dict[str, bytes] = {}
_CACHE_LIMIT = 512


def _full_media(media: str, charset: str) -> str:
    key = (media, charset)
    full = _FULL_MEDIA.get(key)
    if full is None:
        full = media
        if media.startswith("text/") and "charset=" not in media:
            full = f"{media}; charset={charset}"
        if len(_FULL_MEDIA) >= _CACHE_LIMIT:
            _FULL_MEDIA.clear()
        _FULL_MEDIA[key] = full
    return full


def _encoded(value: str) -> bytes:
    raw = _ENCODED.get(value)
    if raw is None:
        raw = value.encode("latin-1")
        if len(_ENCODED) >= _CACHE_LIMIT:
            _ENCODED.clear()
        _ENCODED[value] = raw
    return raw


def _json_default(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json", by_alias=True)
    if isinstance(obj, decimal.Decimal):
        return str(obj)
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    if isinstance(obj, pathlib.PurePath):
        return str(obj)
    to_json = getattr(obj, "__json__", None)
    if to_json is not None:
        # The JSON protocol batteries use (ORM models) without the core importing them.
        return to_json()
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def json_dumps(content: Any) -> bytes:
    """Serialize to JSON bytes: dicts, lists, Pydantic models, dataclasses, dates, UUIDs, enums."""
    try:
        return orjson.dumps(content, default=_json_default, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError as exc:
        if "64-bit" not in str(exc):
            raise
        # orjson stops at 64-bit integers, and an int parameter echoed back can be any size
        # (/items/99999999999999999999): the stdlib writes those; orjson still converts the
        # types only it knows (dates, UUIDs, dataclasses...).
        return json.dumps(content, default=_orjson_native, separators=(",", ":")).encode()


def _orjson_native(obj: Any) -> Any:
    return orjson.loads(orjson.dumps(obj, default=_json_default, option=orjson.OPT_NON_STR_KEYS))


class Response:
    """An HTTP response with a complete body held in memory."""

    media_type: ClassVar[str | None] = None
    charset: ClassVar[str] = "utf-8"
    #: True for responses that finish their body with the request in hand (templates);
    #: the app awaits :meth:`resolve` before sending, so their errors become error pages.
    deferred: ClassVar[bool] = False

    __slots__ = ("_cookies", "_raw_headers", "body", "content_type", "status_code")

    def __init__(
        self,
        content: Any = b"",
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.body = self.render(content)
        media = media_type or self.media_type
        if media is not None:
            # Inline look-up: the function only for a value not seen yet.
            media = _FULL_MEDIA.get((media, self.charset)) or _full_media(media, self.charset)
        self.content_type = media
        self._raw_headers: RawHeaders = MutableHeaders(headers).raw if headers is not None else []
        self._cookies: list[tuple[Morsel[str], bool]] | None = None

    def render(self, content: Any) -> bytes:
        if isinstance(content, bytes):
            return content
        if isinstance(content, str):
            return content.encode(self.charset)
        if content is None:
            return b""
        if isinstance(content, bytearray | memoryview):
            return bytes(content)
        raise TypeError(f"{type(self).__name__} content must be str or bytes, not {type(content)}")

    @property
    def headers(self) -> MutableHeaders:
        """The response headers (excluding Content-Type/Length, which are computed)."""
        return MutableHeaders(self._raw_headers)

    @property
    def raw_headers(self) -> RawHeaders:
        """The response's own headers as ``(name, value)`` byte pairs, lower-case names (the
        list itself, not a copy): what hot paths read without building :attr:`headers`."""
        return self._raw_headers

    def set_cookie(
        self,
        key: str,
        value: str = "",
        *,
        max_age: int | None = None,
        expires: datetime | int | None = None,
        path: str = "/",
        domain: str | None = None,
        secure: bool | None = None,
        httponly: bool = True,
        samesite: SameSite | None = "lax",
    ) -> None:
        """Set a cookie. Safe by default: ``HttpOnly``, ``SameSite=Lax``, ``Secure`` on HTTPS.

        ``secure=None`` means "Secure when the request came over HTTPS"; ``True`` forces it.
        """
        for attribute in (path, domain or ""):
            # Morsel does not check attributes: a ';' or CR/LF would add attributes or headers.
            if any(c in attribute for c in ";\r\n\x00"):
                raise ValueError(f"invalid cookie path or domain {attribute!r}")
        morsel: Morsel[str] = Morsel()
        morsel.set(key, value, _cookie_quote(value))
        if max_age is not None:
            morsel["max-age"] = str(max_age)
        if expires is not None:
            if isinstance(expires, datetime):
                # usegmt needs a UTC datetime; a naive one is taken to be UTC already.
                if expires.tzinfo is None:
                    expires = expires.replace(tzinfo=UTC)
                morsel["expires"] = format_datetime(expires.astimezone(UTC), usegmt=True)
            else:
                morsel["expires"] = expires
        morsel["path"] = path
        if domain:
            morsel["domain"] = domain
        if httponly:
            morsel["httponly"] = True
        if samesite:
            samesite = samesite.lower()  # type: ignore[assignment]
            if samesite not in ("lax", "strict", "none"):
                raise ValueError(f"samesite must be 'lax', 'strict' or 'none', not {samesite!r}")
            if samesite == "none":
                # Browsers drop SameSite=None cookies that are not Secure.
                if secure is False:
                    raise ValueError("SameSite=None cookies must be Secure")
                secure = True
            morsel["samesite"] = samesite.capitalize()
        if secure:
            morsel["secure"] = True
        if self._cookies is None:
            self._cookies = []
        self._cookies = [c for c in self._cookies if c[0].key != key or c[0]["path"] != path]
        # secure=None is settled by the send step, which knows the request scheme.
        self._cookies.append((morsel, secure is None))

    def delete_cookie(
        self, key: str, *, path: str = "/", domain: str | None = None, secure: bool | None = None
    ) -> None:
        self.set_cookie(
            key, "", max_age=0, expires=0, path=path, domain=domain, secure=secure, samesite="lax"
        )

    def _cookie_headers(self, scope: Scope) -> RawHeaders:
        assert self._cookies is not None
        https = scope.get("scheme") in ("https", "wss")
        out: RawHeaders = []
        for morsel, auto_secure in self._cookies:
            if auto_secure and https:
                morsel = morsel.copy()
                morsel["secure"] = True
            out.append((b"set-cookie", morsel.OutputString().encode("latin-1")))
        return out

    def _head(self, scope: Scope, extra: RawHeaders, length: int | None) -> RawHeaders:
        raw: RawHeaders = []
        status = self.status_code
        if status not in _NO_BODY_STATUSES and status >= 200:
            if self.content_type is not None:
                ct = self.content_type
                raw.append((b"content-type", _ENCODED.get(ct) or _encoded(ct)))
            if length is not None:
                raw.append((b"content-length", b"%d" % length))
        if self._raw_headers:
            if self.content_type is not None and any(
                k == b"content-type" for k, _ in self._raw_headers
            ):
                raw = [h for h in raw if h[0] != b"content-type"]
            raw.extend(self._raw_headers)
            if extra:
                # The app's default headers yield to the same header set on the response.
                own = {k for k, _ in self._raw_headers}
                extra = [h for h in extra if h[0] not in own or h[0] in _ADDITIVE]
        if extra:
            raw.extend(extra)
        if self._cookies:
            raw.extend(self._cookie_headers(scope))
        return raw

    def header_block(
        self, scope: Scope, extra: RawHeaders | None = None, content_length: int | None = None
    ) -> RawHeaders:
        """The complete header list this response sends, as ``(name, value)`` byte pairs: its
        ``Content-Type`` (and ``Content-Length`` when given), its own headers, the ``extra``
        block (the app's defaults and what response headers hooks added; a header the
        response sets itself wins, except ``Set-Cookie`` and ``Vary``, which add up) and its
        cookies (``Secure`` settled by ``scope``'s scheme).

        A new list each call: what a battery reads to decide on the headers the client will
        receive (the cache battery refuses to store a page that sets a cookie), or sends as is.
        """
        return self._head(scope, extra or [], content_length)

    async def send_to(self, scope: Scope, send: Send, extra: RawHeaders = ()) -> None:  # type: ignore[assignment]
        """Send this response; ``extra`` headers (the app's defaults) are appended, but for
        those the response sets itself (except ``Set-Cookie`` and ``Vary``)."""
        body = self.body
        status = self.status_code
        content_type = self.content_type
        if (
            content_type is not None
            and not self._raw_headers
            and not self._cookies
            and status >= 200
            and status not in _NO_BODY_STATUSES
        ):
            # What most responses are (a handler's dict or str): the block in one list display,
            # as _head would build it, without its branches and appends.
            headers = [
                (b"content-type", _ENCODED.get(content_type) or _encoded(content_type)),
                (b"content-length", b"%d" % len(body)),
                *extra,
            ]
        else:
            headers = self._head(scope, extra, len(body))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        if status in _NO_BODY_STATUSES or scope.get("method") == "HEAD":
            body = b""
        await send({"type": "http.response.body", "body": body})

    async def resolve(self, request: Any) -> Response:
        """Return the response to send (deferred responses render here)."""
        return self

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.send_to(scope, send)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.status_code}>"


def _cookie_quote(value: str) -> str:
    # RFC 6265 cookie-octets; anything else is percent-encoded rather than backslash-quoted,
    # which browsers handle inconsistently.
    return quote(value, safe="!#$%&'()*+-./:<=>?@[]^_`{|}~")


class HTMLResponse(Response):
    media_type = "text/html"
    __slots__ = ()


class PlainTextResponse(Response):
    media_type = "text/plain"
    __slots__ = ()


class JSONResponse(Response):
    """Serializes ``content`` with orjson (Pydantic models and dataclasses included)."""

    media_type = "application/json"
    __slots__ = ()

    def render(self, content: Any) -> bytes:
        return json_dumps(content)


class RedirectResponse(Response):
    """Redirect to ``url`` (302 by default; 303 after a form POST, 307/308 keep the method)."""

    __slots__ = ()

    def __init__(
        self, url: str, status_code: int = 302, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(b"", status_code=status_code, headers=headers)
        self._raw_headers.append(
            (b"location", quote(str(url), safe=":/%#?=@[]!$&'()*+,;~").encode("latin-1"))
        )


ContentStream = AsyncIterable[str | bytes] | Iterable[str | bytes]


class StreamingResponse(Response):
    """Send a body produced piece by piece by an (async) iterator; sync ones run in threads."""

    __slots__ = ("content",)

    def __init__(
        self,
        content: ContentStream,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
    ) -> None:
        super().__init__(b"", status_code=status_code, headers=headers, media_type=media_type)
        self.content = content

    async def send_to(self, scope: Scope, send: Send, extra: RawHeaders = ()) -> None:  # type: ignore[assignment]
        await send(
            {
                "type": "http.response.start",
                "status": self.status_code,
                "headers": self._head(scope, extra, None),
            }
        )
        if scope.get("method") != "HEAD":
            iterator: AsyncIterable[str | bytes]
            if isinstance(self.content, AsyncIterable):
                iterator = self.content
            else:
                iterator = iterate_in_threadpool(iter(self.content))
            async for chunk in iterator:
                data = chunk.encode(self.charset) if isinstance(chunk, str) else chunk
                message: Message = {"type": "http.response.body", "body": data, "more_body": True}
                await send(message)
        await send({"type": "http.response.body", "body": b""})


def _is_dataclass_instance(value: Any) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def to_response(value: Any, status_code: int | None) -> Response:
    """Turn a handler's return value into a :class:`Response` (see the handlers docs)."""
    kind = type(value)
    if kind is dict or kind is list:
        return JSONResponse(value, status_code or 200)
    if kind is str:
        return HTMLResponse(value, status_code or 200)
    if isinstance(value, Response):
        return value
    if value is None:
        return Response(b"", status_code or 204)
    if kind is tuple:
        return _tuple_response(value)
    if isinstance(value, BaseModel) or _is_dataclass_instance(value):
        return JSONResponse(value, status_code or 200)
    if isinstance(value, bytes | bytearray | memoryview):
        return Response(bytes(value), status_code or 200, media_type="application/octet-stream")
    if isinstance(value, dict | list | int | float | bool | enum.Enum):
        return JSONResponse(value, status_code or 200)
    if isinstance(value, str):
        return HTMLResponse(str(value), status_code or 200)
    if hasattr(value, "__json__"):
        return JSONResponse(value, status_code or 200)
    raise TypeError(
        f"handler returned {kind.__name__}; return str, bytes, dict, list, a Pydantic model, "
        "a dataclass, a Response, None, or a (body, status[, headers]) tuple"
    )


def _tuple_response(value: tuple[Any, ...]) -> Response:
    if not 2 <= len(value) <= 3 or not isinstance(value[1], int):
        raise TypeError("a tuple return value must be (body, status) or (body, status, headers)")
    response = to_response(value[0], value[1])
    response.status_code = value[1]
    if len(value) == 3:
        for key, header_value in dict(value[2]).items():
            response.headers[key] = str(header_value)
    return response
