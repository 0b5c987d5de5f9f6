"""Per-request security state, shared by the hooks and the dependencies.

A :class:`RequestContext` is made on first use (:func:`get_context`: a session, a CSRF check
or token, a CSP nonce) and kept in the ASGI scope under :data:`CONTEXT_KEY`; the core's
``Request`` wraps that same scope. A request that uses none of these never gets one, and the
battery's response hook then appends a precomputed header block and does nothing else.
"""

from __future__ import annotations

import base64
import itertools
import logging
import os
from collections.abc import Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from transom.exceptions import HTTPException
from transom.requests import Request, parse_cookie_header

if TYPE_CHECKING:
    from transom.security.extension import Security
    from transom.security.sessions import SessionData

__all__ = [
    "CONTEXT_KEY",
    "RequestContext",
    "StoreUnavailable",
    "context_of",
    "get_context",
    "new_nonce",
    "security_logger",
    "unavailable_error",
]

CONTEXT_KEY = "transom.security"
#: Every refusal (tampered cookie, CSRF failure, rate limit...) is logged here.
security_logger = logging.getLogger("transom.security")


class StoreUnavailable(Exception):
    """A session or rate-limit store can't be reached right now (down, restarting, timing out).

    Backends raise it for outages only, never for bugs: the battery then answers 503 with
    ``Retry-After`` and logs one warning line, instead of a 500 with a traceback per request.

    Args:
        message: What failed, for the log (never shown to the client).
        retry_after: Seconds the client is told to wait (the ``Retry-After`` header).
    """

    def __init__(self, message: str, *, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def unavailable_error(exc: StoreUnavailable, what: str) -> HTTPException:
    """Log ``exc`` (one warning line, no traceback) and build the 503 the client gets.

    Args:
        exc: The outage reported by a backend.
        what: What the client can't use right now ("Session storage").
    """
    # A warning without traceback: an outage repeats on every request, and the cause is in
    # the message; a traceback storm would bury it.
    security_logger.warning("%s unavailable, answering 503: %s", what, exc)
    return HTTPException(
        503,
        f"{what} is temporarily unavailable; try again shortly.",
        headers={"Retry-After": str(exc.retry_after)},
    )


_NONCE_CHARS = 22  # 132 random bits, as long as secrets.token_urlsafe(16)
_POOL_BYTES = 3 * 1024  # 4,096 base64 characters (no padding): 186 nonces per refill


class _NoncePool:
    """CSP nonces cut from a buffer of ``os.urandom`` output: one system call per 186 nonces.

    Each nonce is a fresh slice of random base64 (every character from random bits), never
    handed out twice; a forked worker starts its own buffer (never its parent's).
    """

    def __init__(self) -> None:
        self.refill()

    def refill(self) -> None:
        self._pool = base64.urlsafe_b64encode(os.urandom(_POOL_BYTES))
        # A counter's __next__ is atomic: two threads never get the same slice of one buffer.
        self._next = itertools.count().__next__

    def take(self) -> bytes:
        start = self._next() * _NONCE_CHARS
        pool = self._pool
        if start + _NONCE_CHARS > len(pool):
            self.refill()
            return self.take()
        return pool[start : start + _NONCE_CHARS]


_nonces = _NoncePool()
os.register_at_fork(after_in_child=_nonces.refill)
#: A fresh nonce as bytes (for a header value).
take_nonce = _nonces.take


def new_nonce() -> str:
    """A fresh CSP nonce: 132 random bits as URL-safe base64 (as ``secrets.token_urlsafe(16)``)."""
    return _nonces.take().decode("ascii")


class RequestContext:
    """What the security battery knows about one request while it is being handled."""

    __slots__ = (
        "cookies",
        "csrf_cookie",
        "csrf_deferred",
        "endpoint",
        "failed",
        "nonce",
        "scope",
        "security",
        "session",
        "session_cookie_value",
        "session_drop_cookie",
        "session_signed_at",
        "set_cookies",
    )

    def __init__(self, security: Security, scope: MutableMapping[str, Any]) -> None:
        self.security = security
        self.scope = scope
        self.cookies: dict[str, str] | None = None
        self.endpoint: Callable[..., Any] | None = None
        #: Set once saving the session failed: the error answer then saves nothing.
        self.failed = False
        self.nonce: str | None = None
        self.session: SessionData | None = None
        self.session_cookie_value: str | None = None
        self.session_drop_cookie = False
        self.session_signed_at = 0.0
        self.csrf_cookie: str | None = None
        #: Set when the CSRF check was skipped for a non-ambient ``Authorization`` header.
        self.csrf_deferred: Request | None = None
        #: Extra ``Set-Cookie`` header values added when the response starts.
        self.set_cookies: list[str] = []

    @property
    def is_secure(self) -> bool:
        """Whether the request arrived over HTTPS (after trusted-proxy rewriting)."""
        return self.scope.get("scheme") in ("https", "wss")

    def get_cookie(self, name: str) -> str | None:
        """A request cookie, parsed once per request."""
        if self.cookies is None:
            header = b""
            for key, value in self.scope.get("headers", ()):
                if key == b"cookie":
                    header = header + b"; " + value if header else value
            self.cookies = parse_cookie_header(header.decode("latin-1"))
        return self.cookies.get(name)

    def csp_nonce(self) -> str:
        """This request's Content-Security-Policy nonce (created on first use)."""
        if self.nonce is None:
            self.nonce = new_nonce()
        return self.nonce


def context_of(request: Request) -> RequestContext | None:
    """The security context of ``request``, made on first use; ``None`` without the battery."""
    scope = request.scope
    ctx = scope.get(CONTEXT_KEY)
    if isinstance(ctx, RequestContext):
        return ctx
    app = request.app
    # Where Battery.install puts the Security battery (its name, the same string).
    security = app.extensions.get("transom.security") if app is not None else None
    if security is None:
        return None
    ctx = RequestContext(security, scope)
    route = request.route
    ctx.endpoint = route.endpoint if route is not None else None
    scope[CONTEXT_KEY] = ctx
    return ctx


def get_context(request: Request) -> RequestContext:
    """The security context of ``request``; a clear error when the battery is not installed."""
    ctx = context_of(request)
    if ctx is None:
        raise RuntimeError(
            "transom.security is not installed on this app: call "
            "app.install(transom.security.Security()) before serving requests"
        )
    return ctx
