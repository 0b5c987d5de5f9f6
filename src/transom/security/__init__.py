"""Transom's security battery: sessions, CSRF, security headers, proxies, CORS, rate limits.

Safe by default: ``app.install(Security())`` turns on signed-cookie sessions, CSRF protection for
unsafe methods, a nonce-based Content-Security-Policy and HSTS on HTTPS; every weaker choice
is an explicit argument. See ``docs/security.md``.

Example:
    >>> from transom import App, Settings
    >>> from transom.security import Security, SecurityConfig, SessionDataDep, limit
    >>> app = App(Settings(secret_key="change-me"))
    >>> security = app.install(Security(SecurityConfig()))
    >>> @app.post("/cart")
    ... @limit("30/minute")
    ... async def add(session: SessionDataDep) -> dict[str, int]:
    ...     session["items"] = session.get("items", 0) + 1
    ...     return {"items": session["items"]}
"""

from typing import TYPE_CHECKING

from transom._deprecation import renamed_names
from transom.security._context import StoreUnavailable, security_logger
from transom.security.cors import CORSConfig, CORSMiddleware
from transom.security.csrf import (
    CSRFConfig,
    CSRFError,
    CSRFToken,
    csrf_exempt,
    csrf_input,
    csrf_token,
    rotate_csrf_secret,
)
from transom.security.extension import (
    EXTENSION_KEY,
    Security,
    SecurityConfig,
    SecurityMiddleware,
)
from transom.security.headers import (
    DEFAULT_CSP,
    CSPNonce,
    HeadersConfig,
    csp_nonce,
    security_headers,
)
from transom.security.proxies import ProxyHeadersMiddleware
from transom.security.ratelimit import (
    MemoryRateLimitBackend,
    RateLimit,
    RateLimitBackend,
    limit,
    parse_rate,
)
from transom.security.sessions import (
    RENAME_HINTS,
    RENAMES,
    MemorySessionBackend,
    SessionBackend,
    SessionConfig,
    SessionData,
    SessionDataDep,
    SignedCookieBackend,
    end_session,
    get_session_data,
    start_session,
)

if TYPE_CHECKING:
    # The old names, still accepted by type checkers while they are deprecated.
    Sess = SessionDataDep
    login = start_session
    logout = end_session

__all__ = [
    "DEFAULT_CSP",
    "EXTENSION_KEY",
    "CORSConfig",
    "CORSMiddleware",
    "CSPNonce",
    "CSRFConfig",
    "CSRFError",
    "CSRFToken",
    "HeadersConfig",
    "MemoryRateLimitBackend",
    "MemorySessionBackend",
    "ProxyHeadersMiddleware",
    "RateLimit",
    "RateLimitBackend",
    "Security",
    "SecurityConfig",
    "SecurityMiddleware",
    "SessionBackend",
    "SessionConfig",
    "SessionData",
    "SessionDataDep",
    "SignedCookieBackend",
    "StoreUnavailable",
    "csp_nonce",
    "csrf_exempt",
    "csrf_input",
    "csrf_token",
    "end_session",
    "get_session_data",
    "limit",
    "parse_rate",
    "rotate_csrf_secret",
    "security_headers",
    "security_logger",
    "start_session",
]

# Runtime only: a module __getattr__ seen by type checkers would make them accept any name.
if not TYPE_CHECKING:
    __getattr__ = renamed_names(__name__, globals(), RENAMES, hints=RENAME_HINTS)
