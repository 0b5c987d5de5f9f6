"""``app.install(Security())``: the whole battery on an app, with safe defaults.

It attaches, without the core knowing about it:

* a response headers hook (:meth:`transom.App.response_headers_hook`, no ASGI middleware):
  a request that used nothing of the battery (no session, no CSRF token, no nonce) gets a
  precomputed header block (CSP without nonce, HSTS on HTTPS, per-handler overrides), and an
  HTML response the same with a fresh nonce in its CSP; a request that did use it (its
  per-request context, made on first use) also gets its session saved (never on 5xx) and
  ``Set-Cookie``/``Vary: Cookie``;
* a ``before_request`` hook that checks CSRF on unsafe methods only (``@limit`` is a guard
  the core compiles into the routes that have one).
* :class:`~transom.security.cors.CORSMiddleware` when ``SecurityConfig(cors=...)`` is given;
* :class:`~transom.security.proxies.ProxyHeadersMiddleware` (outermost) when
  ``SecurityConfig(trusted_proxies=...)`` is given.

``None`` for ``sessions``, ``csrf`` or ``headers`` in :class:`SecurityConfig` turns that part
off: the unsafe choice is possible, but has to be written down.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import warnings
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, overload

from transom._types import ASGIApp, Receive, Scope, Send
from transom.batteries import Battery, split_arguments
from transom.exceptions import HTTPException, ImproperlyConfigured
from transom.requests import Request
from transom.responses import Response
from transom.security._context import (
    CONTEXT_KEY,
    RequestContext,
    StoreUnavailable,
    unavailable_error,
)
from transom.security.cors import CORSConfig, CORSMiddleware
from transom.security.csrf import (
    EXEMPT_ATTR,
    SAFE_METHODS,
    CSRFConfig,
    check_request,
    csrf_token,
)
from transom.security.headers import (
    HeaderPlan,
    HeadersConfig,
    RawHeaders,
    csp_nonce,
    is_html,
    plan_for,
)
from transom.security.proxies import ProxyHeadersMiddleware
from transom.security.ratelimit import MemoryRateLimitBackend, RateLimitBackend
from transom.security.sessions import SessionConfig, commit_session

if TYPE_CHECKING:
    from transom.app import App
    from transom.routing import Route

__all__ = ["EXTENSION_KEY", "Security", "SecurityConfig", "SecurityMiddleware"]

EXTENSION_KEY: Final = "transom.security"
_SECURE = ("https", "wss")
_SIGNS = "transom.security signs session cookies and CSRF secrets"
logger = logging.getLogger("transom.security")


def _proxies_from_environment() -> tuple[str, ...]:
    # TRANSOM_TRUSTED_PROXIES="10.0.0.1, 10.1.0.0/16": the deployment's proxies, set where the
    # deployment is described (the environment) rather than in the app's code.
    value = os.environ.get("TRANSOM_TRUSTED_PROXIES", "")
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _rate_limits_from_environment() -> RateLimitBackend | None:
    # TRANSOM_RATE_LIMIT_URL=redis://...: every process and host counts in one place.
    url = os.environ.get("TRANSOM_RATE_LIMIT_URL", "")
    if not url:
        return None
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(
            f"TRANSOM_RATE_LIMIT_URL={url!r}: rate limits are shared through Redis "
            "(redis://host:6379/0); leave it unset to count in each process's memory"
        )
    from transom.security.backends.redis import RedisRateLimitBackend

    return RedisRateLimitBackend(url)


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
        trusted_proxies: Addresses/networks whose ``X-Forwarded-*`` headers are honoured
            (default: ``TRANSOM_TRUSTED_PROXIES``, comma-separated, else none).
        rate_limit_backend: Where ``@limit`` and login throttling count (default: Redis at
            ``TRANSOM_RATE_LIMIT_URL`` when set, else process memory).
        old_secret_keys: Previous secret keys still accepted for signed cookies (rotation).
    """

    sessions: SessionConfig | None = dataclasses.field(default_factory=SessionConfig)
    csrf: CSRFConfig | None = dataclasses.field(default_factory=CSRFConfig)
    headers: HeadersConfig | None = dataclasses.field(default_factory=HeadersConfig)
    cors: CORSConfig | None = None
    trusted_proxies: Sequence[str] = dataclasses.field(default_factory=_proxies_from_environment)
    rate_limit_backend: RateLimitBackend | None = dataclasses.field(
        default_factory=_rate_limits_from_environment
    )
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
        self._plans: dict[Callable[..., Any] | None, HeaderPlan] = {}
        self._plans_base: RawHeaders | None = None
        if app is not None:
            self.install(app)

    def setup(self, app: App) -> None:
        app.response_headers_hook(self._response_headers)
        # The core's error pages style themselves with the request's nonce (inline <style>).
        app.extensions["transom.csp_nonce"] = csp_nonce
        if self.cors is not None:
            app.add_middleware(CORSMiddleware, config=self.cors)
        if self.trusted_proxies:
            # Added last, so it runs first: everything after it sees the real client and scheme.
            app.add_middleware(ProxyHeadersMiddleware, trusted=self.trusted_proxies)
        app.before_request(self._before_request)
        # Cross-site WebSocket hijacking: a browser handshake from a foreign Origin is refused
        # before routing (a guard runs for WebSocket handshakes only, never for HTTP).
        app.websocket_guard(self._guard_websocket)
        app.add_check(self._require_key)
        app.add_check(self._report_csrf)
        app.on_shutdown(self._close)
        app.openapi_hook(self._openapi)
        from transom.openapi import add_responses_provider, set_docs_csrf_provider

        add_responses_provider(app, self._openapi_responses)
        set_docs_csrf_provider(app, self._docs_csrf)

    async def _guard_websocket(self, scope: Scope, receive: Receive, send: Send) -> bool:
        from transom.security.websockets import refuse_foreign_origin

        return await refuse_foreign_origin(self, scope, receive, send)

    def _openapi(self, document: dict[str, Any]) -> None:
        # Sessions are an ambient credential: documented, so Swagger UI (same origin) shows
        # how the API is authenticated; the browser sends the cookie by itself.
        if self.sessions is None:
            return
        from transom.openapi import add_security_scheme

        add_security_scheme(
            document,
            "sessionCookie",
            {
                "type": "apiKey",
                "in": "cookie",
                "name": self.sessions.cookie_name,
                "description": "The session cookie set by logging in (over HTTPS its name "
                "gets the __Host- prefix). Unsafe methods also need the CSRF token.",
            },
        )

    def _openapi_responses(self, route: Route, method: str) -> dict[int, Any] | None:
        """403 on every unsafe operation the CSRF check can refuse (not the exempt ones)."""
        if self.csrf is None or method in SAFE_METHODS:
            return None
        if getattr(route.endpoint, EXEMPT_ATTR, False):
            return None
        return {403: f"CSRF verification failed (send the token in {self.csrf.header_name})"}

    async def _docs_csrf(self, request: Request) -> tuple[str, str] | None:
        """The header and a token for the /docs page's "Try it out" calls, when the browser
        holds a cookie (the only case the check asks for a token): a visitor without one
        gets no session made for them."""
        if self.csrf is None or not request.headers.get("cookie"):
            return None
        return self.csrf.header_name, await csrf_token(request)

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

    def _before_request(self, request: Request) -> Awaitable[None] | None:
        # Plain function: a safe method costs no coroutine, and no context.
        config = self.csrf
        if config is None or request.scope["method"] in SAFE_METHODS or request.route is None:
            return None
        return check_request(request, config)

    def _plan(self, request: Request, base: RawHeaders) -> HeaderPlan:
        if base is not self._plans_base:  # the app was built again: new default headers
            self._plans = {}
            self._plans_base = base
        route = request.route
        endpoint = route.endpoint if route is not None else None
        plan = self._plans.get(endpoint)
        if plan is None:
            plan = self._plans[endpoint] = plan_for(endpoint, self.headers, base)
        return plan

    def _response_headers(
        self, request: Request, response: Response, headers: RawHeaders
    ) -> RawHeaders | Awaitable[RawHeaders]:
        scope = request.scope
        ctx = scope.get(CONTEXT_KEY)
        if ctx is not None:
            return self._finish(ctx, request, response, headers)
        # Nothing of the battery was used: no session to save, no cookie to set. This runs on
        # every response, hence the inlined look-ups.
        route = request.route
        plan = (
            self._plans.get(route.endpoint if route is not None else None)
            if headers is self._plans_base
            else None
        )
        if plan is None:
            plan = self._plan(request, headers)
        secure = scope.get("scheme") in _SECURE
        if not plan.templates:
            if plan.html_csp is None:
                return plan.blocks[secure]
            if not response.raw_headers:  # the content type is the response's own
                content_type = response.content_type
                if content_type is None or not content_type.startswith("text/html"):
                    return plan.blocks[secure]  # not HTML: the policy without a nonce
                return plan.block(secure, True, None)  # HTML, no need to ask is_html again
        return plan.block(secure, is_html(response), None)

    async def _finish(
        self, ctx: RequestContext, request: Request, response: Response, headers: RawHeaders
    ) -> RawHeaders:
        status = response.status_code
        if not ctx.failed:
            try:
                await commit_session(ctx, status)
            except StoreUnavailable as exc:
                # The store is down (an outage, not a bug): one warning line, and a 503 that
                # tells the client when to come back (the app answers it, and calls us again).
                ctx.failed = True
                raise unavailable_error(exc, "Session storage") from exc
            except Exception:
                # Saving failed for another reason (a bug in a custom backend, say): the
                # handler's work can't be remembered, so don't pretend it succeeded.
                logger.exception("Could not save the session")
                ctx.failed = True
                raise HTTPException(503, "Session storage is unavailable") from None
        plan = self._plan(request, headers)
        html = ctx.nonce is not None or is_html(response)
        block = plan.block(ctx.is_secure, html, ctx.csp_nonce)
        extra: RawHeaders = []
        if ctx.session is not None and ctx.session.accessed:
            # The body depends on the cookie: shared caches must not serve it to others.
            extra.append((b"vary", b"Cookie"))
        if status < 500:
            extra.extend((b"set-cookie", c.encode("latin-1")) for c in ctx.set_cookies)
        return [*block, *extra] if extra else block

    async def _close(self) -> None:
        if self.sessions is not None and self.sessions.backend is not None:
            await self.sessions.backend.close()
        await self.rate_limit_backend.close()


class SecurityMiddleware:
    """Deprecated: the battery no longer wraps the app in an ASGI middleware (its work is
    done by a response hook and on first use). Kept as a pass-through for code that names it."""

    def __init__(self, app: ASGIApp, security: Security | None = None) -> None:
        warnings.warn(
            "SecurityMiddleware does nothing any more: app.install(Security()) is all it takes",
            DeprecationWarning,
            stacklevel=2,
        )
        self.app = app
        self.security = security

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
