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

from transom.requests import Request, parse_cookie_header

if TYPE_CHECKING:
    from transom.security.extension import Security
    from transom.security.sessions import SessionData

__all__ = ["CONTEXT_KEY", "RequestContext", "get_context", "security_logger"]

CONTEXT_KEY = "transom.security"
#: Every refusal (tampered cookie, CSRF failure, rate limit...) is logged here.
security_logger = logging.getLogger("transom.security")


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
            "`transom.security.Security(app)` before serving requests"
        )
    assert isinstance(ctx, RequestContext)
    return ctx
