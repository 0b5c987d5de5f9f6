"""Cross-origin resource sharing with an explicit list of origins.

Nothing is shared unless listed. ``"*"`` is accepted only without credentials (browsers refuse
the combination anyway, and echoing any origin with credentials would hand every website the
user's session). Preflight requests (``OPTIONS`` with ``Access-Control-Request-Method``) are
answered here; a refused preflight gets a 403 whose body says why.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from transom._types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CORSConfig", "CORSMiddleware"]

_SAFE_HEADERS = frozenset({"accept", "accept-language", "content-language", "content-type"})


@dataclasses.dataclass
class CORSConfig:
    """CORS settings.

    Attributes:
        allow_origins: ``https://app.example.com``, ``https://*.example.com`` or ``"*"``.
        allow_methods: Methods cross-origin scripts may use.
        allow_headers: Request headers they may send (``Content-Type`` and ``X-CSRF-Token``).
        allow_credentials: Let them send cookies; then ``"*"`` is refused.
        expose_headers: Response headers scripts may read.
        max_age: Seconds browsers may cache a preflight answer.
    """

    allow_origins: Sequence[str] = ()
    allow_methods: Sequence[str] = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
    allow_headers: Sequence[str] = ("content-type", "x-csrf-token")
    allow_credentials: bool = False
    expose_headers: Sequence[str] = ()
    max_age: int = 600

    def __post_init__(self) -> None:
        self.any_origin = "*" in self.allow_origins
        if self.any_origin and self.allow_credentials:
            raise ValueError(
                "CORS: allow_origins=['*'] with allow_credentials=True would let every site "
                "act as the logged-in user; list the origins explicitly"
            )
        exact: set[str] = set()
        suffixes: list[tuple[str, str]] = []
        for origin in self.allow_origins:
            if origin == "*":
                continue
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
                raise ValueError(f"CORS origin {origin!r} must look like https://host[:port]")
            netloc = parts.netloc.lower()
            if netloc.startswith("*."):
                suffixes.append((parts.scheme, netloc[1:]))
            else:
                exact.add(f"{parts.scheme}://{netloc}")
        self._exact = frozenset(exact)
        self._suffixes = tuple(suffixes)
        self._methods = frozenset(m.upper() for m in self.allow_methods)
        self._headers = frozenset(h.lower() for h in self.allow_headers)

    def origin_allowed(self, origin: str) -> bool:
        """Whether ``origin`` may read responses."""
        if self.any_origin:
            return True
        origin = origin.lower()
        if origin in self._exact:
            return True
        scheme, _, netloc = origin.partition("://")
        return any(scheme == s and netloc.endswith(suffix) for s, suffix in self._suffixes)


class CORSMiddleware:
    """ASGI middleware applying a :class:`CORSConfig` (``app.add_middleware(CORSMiddleware,
    config=CORSConfig(...))``, or ``Security(SecurityConfig(cors=CORSConfig(...)))``)."""

    def __init__(self, app: ASGIApp, config: CORSConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = requested = None
        request_headers = ""
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value.decode("latin-1")
            elif name == b"access-control-request-method":
                requested = value.decode("latin-1")
            elif name == b"access-control-request-headers":
                request_headers = value.decode("latin-1")
        if origin is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and requested is not None:
            await self._preflight(origin, requested, request_headers, send)
            return
        if not self.config.origin_allowed(origin):
            await self.app(scope, receive, self._vary_only(send))
            return
        await self.app(scope, receive, self._with_cors(origin, send))

    def _allow_origin_headers(self, origin: str) -> list[tuple[bytes, bytes]]:
        config = self.config
        headers = [(b"vary", b"Origin")]
        value = "*" if config.any_origin and not config.allow_credentials else origin
        headers.append((b"access-control-allow-origin", value.encode("latin-1")))
        if config.allow_credentials:
            headers.append((b"access-control-allow-credentials", b"true"))
        return headers

    async def _preflight(self, origin: str, method: str, wanted: str, send: Send) -> None:
        config = self.config
        asked = [h.strip().lower() for h in wanted.split(",") if h.strip()]
        reason = None
        if not config.origin_allowed(origin):
            reason = f"origin {origin!r} is not allowed"
        elif method.upper() not in config._methods:
            reason = f"method {method!r} is not allowed"
        else:
            refused = [h for h in asked if h not in config._headers and h not in _SAFE_HEADERS]
            if refused:
                reason = f"headers {', '.join(refused)} are not allowed"
        if reason is not None:
            body = f"CORS preflight refused: {reason}".encode()
            headers = [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"vary", b"Origin"),
            ]
            await send({"type": "http.response.start", "status": 403, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        headers = self._allow_origin_headers(origin)
        headers += [
            (b"access-control-allow-methods", ", ".join(sorted(config._methods)).encode()),
            (b"access-control-max-age", str(config.max_age).encode()),
            (b"content-length", b"0"),
        ]
        if asked:
            headers.append((b"access-control-allow-headers", ", ".join(asked).encode("latin-1")))
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    def _with_cors(self, origin: str, send: Send) -> Send:
        extra = self._allow_origin_headers(origin)
        if self.config.expose_headers:
            exposed = ", ".join(self.config.expose_headers).encode("latin-1")
            extra.append((b"access-control-expose-headers", exposed))

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = _add_headers(message, extra)
            await send(message)

        return wrapped

    def _vary_only(self, send: Send) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start" and not self.config.any_origin:
                message = _add_headers(message, [(b"vary", b"Origin")])
            await send(message)

        return wrapped


def _add_headers(message: Message, extra: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    new = dict(message)
    new["headers"] = [*message.get("headers", ()), *extra]
    return new
