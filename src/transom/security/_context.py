"""Per-request security state, shared by the middleware, the hooks and the dependencies.

The :class:`~transom.security.middleware.SecurityMiddleware` puts one :class:`RequestContext`
in the ASGI scope under :data:`CONTEXT_KEY`; the core's ``Request`` wraps that same scope, so
dependencies reach it with ``request.scope[CONTEXT_KEY]`` without the core knowing about us.
"""

from __future__ import annotations

import logging
import secrets
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
    "get_context",
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


class RequestContext:
    """What the security battery knows about one request while it is being handled."""

    __slots__ = (
        "cookies",
        "csrf_cookie",
        "csrf_deferred",
        "endpoint",
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
            self.nonce = secrets.token_urlsafe(16)
        return self.nonce


def get_context(request: Request) -> RequestContext:
    """The security context of ``request``; a clear error when the battery is not installed."""
    ctx = request.scope.get(CONTEXT_KEY)
    if ctx is None:
        raise RuntimeError(
            "transom.security is not installed on this app: call "
            "app.install(transom.security.Security()) before serving requests"
        )
    assert isinstance(ctx, RequestContext)
    return ctx
