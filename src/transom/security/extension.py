"""``app.install(Security())``: the whole battery on an app, with safe defaults.

It attaches, without the core knowing about it:

* :class:`SecurityMiddleware` (ASGI): a per-request context in the scope; when the response
  starts, it saves the session (never on 5xx), adds ``Set-Cookie``/``Vary: Cookie``, CSP, HSTS
  and per-handler header overrides;
* a ``before_request`` hook: it runs once the route is known, enforcing ``@limit`` and CSRF;
* :class:`~transom.security.cors.CORSMiddleware` when ``SecurityConfig(cors=...)`` is given;
* :class:`~transom.security.proxies.ProxyHeadersMiddleware` (outermost) when
  ``SecurityConfig(trusted_proxies=...)`` is given.

``None`` for ``sessions``, ``csrf`` or ``headers`` in :class:`SecurityConfig` turns that part
off: the unsafe choice is possible, but has to be written down.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final, overload

import orjson

from transom._types import ASGIApp, Message, Receive, Scope, Send
from transom.batteries import Battery, split_arguments
from transom.requests import Request
from transom.security._context import (
    CONTEXT_KEY,
    RequestContext,
    StoreUnavailable,
    unavailable_error,
)
from transom.security.cors import CORSConfig, CORSMiddleware
from transom.security.csrf import CSRFConfig, verify_request
from transom.security.headers import HeadersConfig, apply_headers
from transom.security.proxies import ProxyHeadersMiddleware
from transom.security.ratelimit import MemoryRateLimitBackend, RateLimitBackend
from transom.security.sessions import SessionConfig, commit_session

if TYPE_CHECKING:
    from transom.app import App

__all__ = ["EXTENSION_KEY", "Security", "SecurityConfig", "SecurityMiddleware"]

EXTENSION_KEY: Final = "transom.security"
_SIGNS = "transom.security signs session cookies and CSRF secrets"
logger = logging.getLogger("transom.security")


@dataclasses.dataclass
class SecurityConfig:
    """The settings of :class:`Security`.

    ``None`` for ``sessions``, ``csrf`` or ``headers`` turns that part off: the unsafe choice
    is possible, but has to be written down.

    Attributes:
        sessions: Session settings (default: signed-cookie sessions); ``None`` disables them
            (a token-only API has no cookies to protect).
        csrf: CSRF settings (default: on); ``None`` disables CSRF protection entirely.
        headers: CSP/HSTS settings (default: strict CSP with nonces, HSTS on HTTPS);
            ``None`` sends neither (the core's four default headers stay).
        cors: CORS settings; ``None`` (default) shares nothing cross-origin.
        trusted_proxies: Addresses/networks whose ``X-Forwarded-*`` headers are honoured.
        rate_limit_backend: Where ``@limit`` counts (default: process memory).
        old_secret_keys: Previous secret keys still accepted for signed cookies (rotation).
    """

    sessions: SessionConfig | None = dataclasses.field(default_factory=SessionConfig)
    csrf: CSRFConfig | None = dataclasses.field(default_factory=CSRFConfig)
    headers: HeadersConfig | None = dataclasses.field(default_factory=HeadersConfig)
    cors: CORSConfig | None = None
    trusted_proxies: Sequence[str] = ()
    rate_limit_backend: RateLimitBackend | None = None
    old_secret_keys: Sequence[str] = ()


class Security(Battery):
    """The security battery of one app: ``app.install(Security(SecurityConfig(...)))``.

    ``Security(app)`` and ``Security(app, config)`` are a shorthand that installs at once;
    ``Security(app, csrf=...)`` (keyword options) is deprecated. The parts are on the battery
    too: :attr:`sessions`, :attr:`csrf`, :attr:`headers`, :attr:`cors`,
    :attr:`trusted_proxies`, :attr:`rate_limit_backend`, :attr:`old_secret_keys`.

    Example:
        >>> from transom import App, Settings
        >>> app = App(Settings(secret_key="s3cret"))
        >>> security = app.install(Security(SecurityConfig(cors=None)))
        >>> Security.of(app) is security
        True
    """

    name = EXTENSION_KEY

    @overload
    def __init__(self, config: SecurityConfig | None = None, /) -> None: ...

    @overload
    def __init__(
        self, app: App, config: SecurityConfig | None = None, /, **options: Any
    ) -> None: ...

    def __init__(self, first: Any = None, second: Any = None, /, **options: Any) -> None:
        super().__init__()
        app, config = split_arguments(Security, SecurityConfig, (first, second), options)
        self.config = config
        self.sessions = config.sessions
        self.csrf = config.csrf
        self.headers = config.headers
        self.cors = config.cors
        self.trusted_proxies = tuple(config.trusted_proxies)
        self.rate_limit_backend = config.rate_limit_backend or MemoryRateLimitBackend()
        self.old_secret_keys = tuple(config.old_secret_keys)
        self._keys: tuple[str, ...] | None = None
        if app is not None:
            self.install(app)

    def setup(self, app: App) -> None:
        app.add_middleware(SecurityMiddleware, security=self)
        if self.cors is not None:
            app.add_middleware(CORSMiddleware, config=self.cors)
        if self.trusted_proxies:
            # Added last, so it runs first: everything after it sees the real client and scheme.
            app.add_middleware(ProxyHeadersMiddleware, trusted=self.trusted_proxies)
        app.before_request(self._before_request)
        app.add_check(self._require_key)
        app.add_check(self._report_csrf)
        app.on_shutdown(self._close)

    def _report_csrf(self) -> None:
        # Once, when the app is built (not whenever the module is imported, which every CLI
        # command does). Without sessions a browser holds no ambient credential that a
        # forged request could ride on: nothing to warn about.
        if self.csrf is not None:
            return
        if self.sessions is None:
            logger.info("CSRF protection is off (no sessions either: a token-only app)")
        else:
            logger.warning(
                "CSRF protection is disabled for this app (SecurityConfig(csrf=None)) while "
                "sessions are on: cookie-authenticated forms can be forged by other sites"
            )

    def _require_key(self) -> None:
        # At build time, so a missing key fails the deploy rather than the first login; only when
        # something here signs (sessions, CSRF secrets in a cookie, and what builds on them).
        if self.sessions is not None or self.csrf is not None:
            self.app.settings.require_secret_key(_SIGNS)

    def secret_keys(self) -> tuple[str, ...]:
        """Keys that verify signatures, oldest first; the last one signs."""
        if self._keys is None:
            self.app.settings.require_secret_key(_SIGNS)
            secret = self.app.settings.secret_key
            current = secret.get_secret_value() if secret is not None else ""
            if not current:
                # Only reachable in debug mode: the core refuses to start without a key otherwise.
                logger.warning("No secret_key: sessions are signed with a random per-process key")
                current = secrets.token_urlsafe(32)
            fallbacks = [k.get_secret_value() for k in self.app.settings.secret_key_fallbacks]
            self._keys = (*fallbacks, *self.old_secret_keys, current)
        return self._keys

    async def _before_request(self, request: Request) -> None:
        ctx = request.scope.get(CONTEXT_KEY)
        if not isinstance(ctx, RequestContext) or request.route is None:
            return
        ctx.endpoint = request.route.endpoint
        await verify_request(request, ctx)

    async def _close(self) -> None:
        if self.sessions is not None and self.sessions.backend is not None:
            await self.sessions.backend.close()
        await self.rate_limit_backend.close()


class SecurityMiddleware:
    """ASGI middleware installed by :class:`Security`; not meant to be added by hand."""

    def __init__(self, app: ASGIApp, security: Security) -> None:
        self.app = app
        self.security = security

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                from transom.security.websockets import guard_websocket

                await guard_websocket(self.security, self.app, scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        ctx = RequestContext(self.security, scope)
        scope[CONTEXT_KEY] = ctx
        # The core's error pages style themselves with this nonce (their inline <style>).
        scope["transom.csp_nonce"] = ctx.csp_nonce

        failed = False

        async def send_wrapper(message: Message) -> None:
            nonlocal failed
            if message["type"] == "http.response.start":
                try:
                    message = await self._finish(ctx, message)
                except StoreUnavailable as exc:
                    # The store is down (an outage, not a bug): one warning line, and a 503
                    # that tells the client when to come back.
                    error = unavailable_error(exc, "Session storage")
                    failed = True
                    extra = [
                        (name.lower().encode("latin-1"), value.encode("latin-1"))
                        for name, value in (error.headers or {}).items()
                    ]
                    await self._refuse(ctx, send, error.status_code, str(error.detail), extra)
                    return
                except Exception:
                    # Saving failed for another reason (a bug in a custom backend, say): the
                    # handler's work can't be remembered, so don't pretend it succeeded.
                    # Answer 503, drop the original body, and keep the traceback.
                    logger.exception("Could not save the session")
                    failed = True
                    await self._refuse(ctx, send, 503, "Session storage is unavailable")
                    return
            elif failed:
                return
            await send(message)

        await self.app(scope, receive, send_wrapper)

    async def _refuse(
        self,
        ctx: RequestContext,
        send: Send,
        status: int,
        reason: str,
        extra: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        # Not answered by the core, so the app's default headers are added here.
        if status < 500:
            logger.warning("Refused request: %s", reason)
        body = orjson.dumps({"detail": reason})
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode("latin-1")),
            *extra,
            *self.security.app.default_headers.raw,
        ]
        apply_headers(ctx, headers)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _finish(self, ctx: RequestContext, message: Message) -> Message:
        status = int(message["status"])
        headers = list(message.get("headers", ()))
        await commit_session(ctx, status)
        if ctx.session is not None and ctx.session.accessed:
            # The body depends on the cookie: shared caches must not serve it to others.
            headers.append((b"vary", b"Cookie"))
        if status < 500:
            headers.extend((b"set-cookie", c.encode("latin-1")) for c in ctx.set_cookies)
        apply_headers(ctx, headers)
        new = dict(message)
        new["headers"] = headers
        return new
