"""``app.install(Auth(AuthConfig(...)))``: the auth battery (routes, hashers, tokens)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Coroutine, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final, overload

import httpx

from transom._types import ASGIApp, Receive, Scope, Send
from transom.auth.email import ConsoleBackend, EmailBackend
from transom.auth.hashers import PasswordHashers, use_hashers
from transom.auth.jwt import JWTConfig, JWTManager
from transom.auth.revocation import SharedRevocations
from transom.auth.tokens import SignedTokens
from transom.auth.validators import DEFAULT_VALIDATORS, PasswordValidator
from transom.batteries import Battery, split_arguments
from transom.exceptions import ImproperlyConfigured
from transom.requests import Request
from transom.security.logins import LoginLimits
from transom.security.ratelimit import parse_rate

if TYPE_CHECKING:
    from transom.app import App
    from transom.auth.oidc import OAuthProvider  # Authlib is only needed for social login

__all__ = ["EXTENSION_KEY", "Auth", "AuthConfig", "get_auth"]

EXTENSION_KEY: Final = "transom.auth"
logger = logging.getLogger("transom.auth")


@dataclasses.dataclass
class _Urls:
    login: str
    logout: str


@dataclasses.dataclass
class AuthConfig:
    """The settings of :class:`Auth`.

    Attributes:
        user_model: The user class, like Django's ``AUTH_USER_MODEL``: ``None`` (default) for
            the built-in :class:`~transom.auth.User` (or a subclass of it), or your own model
            built on :class:`~transom.auth.AbstractUser`; then the built-in user is never
            imported, so neither its class nor its tables exist (see "Your own user model"
            in ``docs/auth.md``).
        prefix: Where the login/logout/account pages and the JSON token endpoints live;
            ``None`` adds no routes (and then Auth needs no templates).
        hashers: Password hashers of this app (default argon2id, older formats upgraded on
            login); another app in the same process keeps its own.
        validators: Password validators for signup, change and reset.
        signup: Offer a signup page.
        login_url: Where ``login_required`` sends browsers (default: the battery's page).
        login_redirect: Where to go after login when there is no ``next``.
        logout_redirect: Where to go after logout.
        remember_days: Lifetime of the "remember me" cookie (0 turns the option off).
        site_url: Public base URL for links in emails (``https://example.com``); required
            when ``allowed_hosts`` accepts any host, so a forged ``Host`` can't poison links.
        email_backend: Delivers mail (default: printed to the console).
        from_email: ``From`` address of the battery's emails.
        reset_max_age: Seconds a password-reset link stays valid.
        verify_max_age: Seconds an email-verification link stays valid.
        login_rate_ip: Login attempts allowed per client address, whatever the account.
        login_rate_account: Login attempts allowed on one account from one client address
            (past it, that address is locked out of that account; the owner elsewhere is not).
        login_rate_account_total: Login attempts allowed on one account from all addresses
            together (a distributed guess; see ``docs/auth.md``).
        reset_rate_ip: Password-reset requests allowed per client address.
        reset_rate_email: Password-reset requests allowed per submitted address.
        jwt: JWT settings; ``None`` turns the JWT endpoints and ``Bearer`` auth off.
        token_schemes: ``Authorization`` schemes and what they carry: ``"jwt"`` or ``"api"``
            (default ``{"Bearer": "jwt", "Token": "api"}``).
        sync_permissions: Create missing model permissions when the app starts.
        allowed_redirect_hosts: Other hosts ``next`` may point to.
        providers: Social login providers (:func:`~transom.auth.oidc.github`,
            :func:`~transom.auth.oidc.google`, :func:`~transom.auth.oidc.oidc`).
        social_create_users: Create a local user on a first social login.
    """

    user_model: type[Any] | None = None
    prefix: str | None = "/auth"
    hashers: PasswordHashers | None = None
    validators: Sequence[PasswordValidator] = DEFAULT_VALIDATORS
    signup: bool = False
    login_url: str | None = None
    login_redirect: str = "/"
    logout_redirect: str = "/"
    remember_days: int = 30
    site_url: str | None = None
    email_backend: EmailBackend | None = None
    from_email: str = "webmaster@localhost"
    reset_max_age: int = 3600
    verify_max_age: int = 3 * 24 * 3600
    login_rate_ip: str = "30/minute"
    login_rate_account: str = "10/15minute"
    login_rate_account_total: str = "100/hour"
    reset_rate_ip: str = "10/hour"
    reset_rate_email: str = "3/hour"
    jwt: JWTConfig | None = None
    token_schemes: dict[str, str] | None = None
    sync_permissions: bool = True
    allowed_redirect_hosts: Sequence[str] = ()
    providers: Sequence[OAuthProvider] = ()
    social_create_users: bool = True


class Auth(Battery):
    """The auth battery of one app: ``app.install(Auth(AuthConfig(...)))``.

    Requires :class:`~transom.security.Security` (its keys sign tokens; its sessions carry
    browser logins when they are on) and, when it serves pages (``prefix`` is not ``None``),
    :class:`~transom.templating.Templates`: both come with their defaults unless the app
    installs them itself. ``Auth(app)`` / ``Auth(app, config)`` install at once;
    ``Auth(app, prefix=...)`` (keyword options) is deprecated. The config's values are on the
    battery too (``auth.prefix``, ``auth.hashers``, ``auth.jwt_config``...).

    Example:
        >>> from transom import App, Settings
        >>> app = App(Settings(secret_key="s3cret"))
        >>> auth = app.install(Auth(AuthConfig(signup=True)))
        >>> Auth.of(app) is auth
        True
    """

    name = EXTENSION_KEY
    #: Where :class:`~transom.templating.Templates` finds the battery's pages.
    template_packages = ("transom.auth",)

    @overload
    def __init__(self, config: AuthConfig | None = None, /) -> None: ...

    @overload
    def __init__(self, app: App, config: AuthConfig | None = None, /, **options: Any) -> None: ...

    def __init__(self, first: Any = None, second: Any = None, /, **options: Any) -> None:
        super().__init__()
        app, config = split_arguments(Auth, AuthConfig, (first, second), options)
        self.config = config
        #: The user model in effect (``config.user_model`` or the built-in one).
        self.user_model: type[Any] = config.user_model or _builtin_user()
        self.prefix = config.prefix
        self.hashers = config.hashers or PasswordHashers()
        self.validators = tuple(config.validators)
        self.signup = config.signup
        self.login_url = config.login_url
        self.login_redirect = config.login_redirect
        self.logout_redirect = config.logout_redirect
        self.remember_days = config.remember_days
        self.site_url = config.site_url.rstrip("/") if config.site_url else None
        self.email_backend: EmailBackend = config.email_backend or ConsoleBackend()
        self.from_email = config.from_email
        self.reset_max_age = config.reset_max_age
        self.verify_max_age = config.verify_max_age
        self.login_rate_ip = config.login_rate_ip
        self.login_rate_account = config.login_rate_account
        self.login_rate_account_total = config.login_rate_account_total
        #: The login budgets of :func:`~transom.auth.authenticate` (site, token and admin).
        self.login_limits = LoginLimits(
            ip=config.login_rate_ip,
            account_ip=config.login_rate_account,
            account=config.login_rate_account_total,
        )
        parse_rate(config.reset_rate_ip)
        parse_rate(config.reset_rate_email)
        self.reset_rate_ip = config.reset_rate_ip
        self.reset_rate_email = config.reset_rate_email
        self.jwt_config = config.jwt
        schemes = config.token_schemes
        if schemes is None:
            schemes = {"Bearer": "jwt", "Token": "api"}
        self.token_schemes = {k.lower(): v for k, v in schemes.items()}
        for kind in self.token_schemes.values():
            if kind not in ("jwt", "api"):
                raise ValueError(f"token scheme kind {kind!r} must be 'jwt' or 'api'")
        self.allowed_redirect_hosts = frozenset(h.lower() for h in config.allowed_redirect_hosts)
        self.providers = tuple(config.providers)
        self.social_create_users = config.social_create_users
        #: Options for the HTTP client that talks to identity providers (tests add a transport).
        self.http_options: dict[str, Any] = {"timeout": 10.0}
        self._jwt: JWTManager | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        if app is not None:
            self.install(app)

    def requirements(self) -> tuple[type[Battery], ...]:
        from transom.db import Database
        from transom.security.extension import Security

        if self.prefix is None:
            return (Security, Database)
        from transom.templating.engine import Templates

        return (Security, Templates, Database)

    def setup(self, app: App) -> None:
        # Every request (and the lifespan, where start-up hooks run) of this app hashes with
        # this app's hashers: User.set_password/check_password find them in the context.
        app.add_middleware(_HashersMiddleware, hashers=self.hashers)
        if self.prefix is not None:
            from transom.auth.views import build_router

            app.include_router(build_router(self), self.prefix)
        app.add_check(self._check)
        app.on_shutdown(self._drain)
        app.openapi_hook(self._openapi)
        if self.config.sync_permissions:
            app.on_startup(self._sync_permissions)

    def template_context(self, request: Request) -> dict[str, Any]:
        """``current_user()`` and ``has_perm(perm, obj=None)`` in every template."""
        from transom.auth.web import template_context

        return template_context(request)

    @contextlib.contextmanager
    def activate(self) -> Iterator[Auth]:
        """Use this app's password hashers in the ``with`` block (scripts, tests, commands).

        Requests of the app need no such block: the battery sets them for each request.
        """
        with use_hashers(self.hashers):
            yield self

    def _openapi(self, document: dict[str, Any]) -> None:
        """Declare the ``Authorization`` schemes this battery accepts (Swagger's "Authorize")."""
        from transom.openapi import add_security_scheme

        for scheme, kind in self.token_schemes.items():
            if kind == "jwt" and self.jwt_config is None:
                continue  # JWT off: the scheme is refused, so not offered
            title = scheme.capitalize()
            if scheme == "bearer":
                spec: dict[str, Any] = {"type": "http", "scheme": "bearer"}
                if kind == "jwt":
                    spec["bearerFormat"] = "JWT"
            else:
                # Not a registered HTTP scheme: Swagger UI sends an apiKey header as typed.
                what = "a JWT access token" if kind == "jwt" else "an API token"
                spec = {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": f"`{title} <token>`: {what}.",
                }
            add_security_scheme(document, f"{title}Auth", spec)

    # -- helpers ----------------------------------------------------------------------------
    def spawn(self, job: Coroutine[Any, Any, object], what: str) -> None:
        """Run ``job`` in the background, after the response; a failure is logged.

        Mail goes out this way, so a request takes as long whether or not it sent any; the
        app waits for unfinished jobs when it shuts down.
        """

        async def run() -> None:
            try:
                await job
            except Exception:
                logger.exception("Background job failed: %s", what)

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=10)

    def secret_keys(self) -> tuple[str, ...]:
        """The security battery's keys (oldest first; the last signs)."""
        from transom.security.extension import Security

        return Security.of(self.app).secret_keys()

    @property
    def tokens(self) -> SignedTokens:
        """Signed tokens for reset and verification links."""
        return SignedTokens(self.secret_keys())

    @property
    def jwt(self) -> JWTManager:
        """The JWT manager (``Auth(jwt=JWTConfig())`` must be set)."""
        if self.jwt_config is None:
            raise ImproperlyConfigured("JWT is off: pass Auth(AuthConfig(jwt=JWTConfig(...)))")
        if self._jwt is None:
            self._jwt = JWTManager(self.jwt_config, self.secret_keys()[-1])
        return self._jwt

    def http_client(self) -> httpx.AsyncClient:
        """A client for talking to identity providers."""
        return httpx.AsyncClient(**self.http_options)

    def url(self, name: str, **params: Any) -> str:
        """The path of one of the battery's routes (``"login"``, ``"password_reset"``...)."""
        return self.app.url_path_for(f"auth.{name}", **params)

    def absolute_url(self, request: Request, path: str) -> str:
        """``path`` on the public site: ``site_url`` when set, else the request's validated host.

        Raises:
            ImproperlyConfigured: no ``site_url`` and ``allowed_hosts`` accepts any Host.
        """
        if self.site_url:
            return self.site_url + path
        if "*" in self.app.settings.allowed_hosts:
            raise ImproperlyConfigured(
                "links in emails need AuthConfig(site_url=...) when allowed_hosts contains '*': "
                "otherwise a forged Host header would choose where the link points"
            )
        return f"{request.scheme}://{request.host}{path}"

    def _check(self) -> None:
        if self.prefix is not None and not self.site_url and "*" in self.app.settings.allowed_hosts:
            raise ImproperlyConfigured(
                "transom.auth sends links by email: with allowed_hosts ['*'] set "
                "AuthConfig(site_url='https://your.site'), or a forged Host header would choose "
                "where password-reset links point"
            )
        if self.prefix is not None or self.jwt_config is not None:
            # Reset links, "remember me" cookies and JWTs are signed, sessions on or off.
            self.app.settings.require_secret_key("transom.auth signs tokens and links")
        if self.jwt_config is not None:
            # The cache battery is optional: found by its extension name when the app has
            # one (on Redis, a revocation then reaches every process at once), never imported.
            cache = self.app.extensions.get("transom.cache")
            if cache is not None and not isinstance(self.jwt.revocations, SharedRevocations):
                self.jwt.revocations = SharedRevocations(cache)

    async def _sync_permissions(self) -> None:
        from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

        from transom.auth.permissions import sync_permissions
        from transom.db import get_database

        database = get_database(self.app)
        try:
            async with database.session() as db:
                created = await sync_permissions(db)
                await db.commit()
        except (OperationalError, ProgrammingError, DBAPIError) as exc:
            # Not migrated yet (first start, CI before `transom db migrate`): not fatal.
            logger.warning("Permissions not synchronised (%s); run `transom db migrate`", exc)
            return
        if created:
            logger.info("Created %d permissions", len(created))


def _builtin_user() -> type[Any]:
    # Imported here, not at the top: importing maps it, which only projects using it want.
    from transom.auth.user import User

    return User


class _HashersMiddleware:
    """Makes the app's password hashers current for each request and the lifespan."""

    def __init__(self, app: ASGIApp, hashers: PasswordHashers) -> None:
        self.app = app
        self.hashers = hashers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with use_hashers(self.hashers):
            await self.app(scope, receive, send)


def get_auth(app: Any) -> Auth:
    """The app's :class:`Auth` (:meth:`Auth.of`); a clear error when it is not installed."""
    if app is None:
        raise ImproperlyConfigured("transom.auth is not installed: call app.install(Auth())")
    return Auth.of(app)
