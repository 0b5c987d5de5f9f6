"""Cross-site request forgery protection, on by default for POST, PUT, PATCH and DELETE.

A random secret is kept per session (or, with sessions disabled, in its own cookie). Pages get
a *masked* token: random mask + (mask XOR secret), so the token changes with every response
and a compression side channel (BREACH) learns nothing from repeated pages. An unsafe request
that carries a cookie (or Basic-style ``Authorization``, which browsers also attach by
themselves) must:

1. come from a trusted origin: ``Origin`` (when sent) must be this site or a trusted origin;
   without ``Origin``, HTTPS requests must carry a ``Referer`` on this site (``https`` only);
2. carry a token (``X-CSRF-Token`` header, or the ``csrf_token`` form field) that unmasks to
   the secret.

An unsafe request with neither carries no credential a page could abuse: it is refused only
when the browser marks it as sent from another site (``Sec-Fetch-Site: cross-site`` or
``same-site``, or a foreign ``Origin``), which also stops login CSRF.

Exempt: routes decorated with :func:`csrf_exempt`, and requests carrying an ``Authorization``
header with a scheme browsers never send by themselves (``Bearer``, ...; not ``Basic``), until
their handler loads the cookie session (then the full check runs).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hmac
import html
import re
import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

from transom.exceptions import HTTPException
from transom.params import Depends
from transom.requests import Request
from transom.security._context import RequestContext, get_context, security_logger
from transom.security.sessions import CSRF_KEY, build_cookie, load_session

__all__ = [
    "CSRFConfig",
    "CSRFError",
    "CSRFToken",
    "csrf_exempt",
    "csrf_input",
    "csrf_token",
    "rotate_csrf_secret",
]

F = TypeVar("F", bound=Callable[..., Any])
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
EXEMPT_ATTR = "__transom_csrf_exempt__"
# Browsers attach these by themselves once the user has logged in, so they don't prove intent.
AMBIENT_AUTH_SCHEMES = frozenset({"basic", "digest", "negotiate", "ntlm"})
_SECRET_BYTES = 32
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{43}")
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{86}")


@dataclasses.dataclass
class CSRFConfig:
    """CSRF settings.

    Attributes:
        trusted_origins: Other origins allowed to post here, e.g. ``https://app.example.com``
            or ``https://*.example.com``.
        header_name: The header JavaScript sends the token in.
        field_name: The form field the token travels in.
        cookie_name: Cookie holding the secret when sessions are disabled.
        exempt_bearer: Skip the check for non-ambient ``Authorization`` headers (``Bearer``...).
    """

    trusted_origins: Sequence[str] = ()
    header_name: str = "X-CSRF-Token"
    field_name: str = "csrf_token"
    cookie_name: str = "csrftoken"
    exempt_bearer: bool = True

    def __post_init__(self) -> None:
        patterns = []
        for origin in self.trusted_origins:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"trusted origin {origin!r} must look like https://host[:port]")
            patterns.append(f"{parts.scheme}://{parts.netloc.lower()}")
        self._origins = tuple(patterns)

    def origin_trusted(self, origin: str) -> bool:
        """Whether ``scheme://host[:port]`` is listed (``*.`` matches any subdomain)."""
        for pattern in self._origins:
            if pattern == origin:
                return True
            scheme, _, host = pattern.partition("://")
            if host.startswith("*."):
                o_scheme, _, o_host = origin.partition("://")
                if o_scheme == scheme and o_host.endswith(host[1:]):
                    return True
        return False


class CSRFError(HTTPException):
    """403 raised when CSRF verification fails; ``reason`` says why.

    Customise the page with ``@app.exception_handler(CSRFError)``.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(403, f"CSRF verification failed: {reason}")
        self.reason = reason


def csrf_exempt(func: F) -> F:
    """Turn CSRF checks off for one handler (webhooks, token-authenticated endpoints)."""
    setattr(func, EXEMPT_ATTR, True)
    return func


# -- tokens -------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mask(secret: str) -> str:
    """A fresh masked token for ``secret``."""
    raw = _unb64(secret)
    pad = secrets.token_bytes(len(raw))
    return _b64(pad + bytes(a ^ b for a, b in zip(pad, raw, strict=True)))


def unmask(token: str) -> str:
    """The secret behind a masked token (raises ``ValueError`` when malformed)."""
    if not _TOKEN_RE.fullmatch(token):
        raise ValueError("malformed token")
    try:
        raw = _unb64(token)
    except (binascii.Error, ValueError):
        raise ValueError("malformed token") from None
    pad, masked = raw[:_SECRET_BYTES], raw[_SECRET_BYTES:]
    return _b64(bytes(a ^ b for a, b in zip(pad, masked, strict=True)))


async def _stored_secret(ctx: RequestContext) -> str | None:
    if ctx.csrf_cookie is not None:
        return ctx.csrf_cookie
    if ctx.security.sessions is not None:
        value = (await load_session(ctx)).get(CSRF_KEY)
    else:
        value = ctx.get_cookie(_cookie_name(ctx))
    return value if isinstance(value, str) and _SECRET_RE.fullmatch(value) else None


def _cookie_name(ctx: RequestContext) -> str:
    config = ctx.security.csrf
    assert config is not None
    return ("__Host-" if ctx.is_secure else "") + config.cookie_name


async def _store_secret(ctx: RequestContext, secret: str) -> None:
    if ctx.security.sessions is not None:
        (await load_session(ctx))[CSRF_KEY] = secret
        return
    ctx.csrf_cookie = secret
    ctx.set_cookies.append(
        build_cookie(
            _cookie_name(ctx),
            secret,
            max_age=365 * 24 * 3600,
            secure=ctx.is_secure,
            http_only=True,
            same_site="lax",
        )
    )


async def csrf_token(request: Request) -> str:
    """A masked CSRF token for this response (different on every call, all valid).

    Also usable as a dependency: ``token: CSRFToken``.
    """
    ctx = get_context(request)
    secret = await _stored_secret(ctx)
    if secret is None:
        secret = _b64(secrets.token_bytes(_SECRET_BYTES))
        await _store_secret(ctx, secret)
    return mask(secret)


#: Inject a fresh token: ``async def form(token: CSRFToken): ...``.
CSRFToken = Annotated[str, Depends(csrf_token, use_cache=False)]


def csrf_input(token: str, field_name: str = "csrf_token") -> str:
    """The hidden ``<input>`` to put in a form."""
    return f'<input type="hidden" name="{html.escape(field_name)}" value="{html.escape(token)}">'


async def rotate_csrf_secret(request: Request) -> None:
    """Replace the secret (tokens issued before stop working); done by ``start_session()``."""
    ctx = get_context(request)
    ctx.csrf_cookie = None
    await _store_secret(ctx, _b64(secrets.token_bytes(_SECRET_BYTES)))


# -- verification -------------------------------------------------------------------------------


def _own_origin(request: Request) -> str:
    default = 443 if request.is_secure else 80
    host = request.host.lower()
    if host.endswith(f":{default}"):
        host = host[: -len(f":{default}")]
    return f"{request.scheme}://{host}"


def _normalise_origin(value: str) -> str | None:
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != (443 if parts.scheme == "https" else 80):
        host = f"{host}:{port}"
    return f"{parts.scheme}://{host}"


def _check_origin(request: Request, config: CSRFConfig) -> None:
    own = _own_origin(request)
    origin = request.headers.get("origin")
    if origin is not None:
        if origin == "null":
            raise CSRFError("the Origin header is 'null' (sandboxed or privacy-redirected page)")
        normalised = _normalise_origin(origin)
        if normalised is None:
            raise CSRFError(f"the Origin header {origin!r} is malformed")
        if normalised != own and not config.origin_trusted(normalised):
            raise CSRFError(f"the Origin {normalised!r} does not match {own!r} or a trusted origin")
        return
    if not request.is_secure:
        return  # plain HTTP: a Referer can be forged by any man in the middle anyway
    referer = request.headers.get("referer")
    if not referer:
        raise CSRFError("HTTPS request without an Origin or a Referer header")
    normalised = _normalise_origin(referer)
    if normalised is None:
        raise CSRFError("the Referer header is malformed")
    if not normalised.startswith("https://"):
        raise CSRFError("the Referer is insecure (http) while this request is HTTPS")
    if normalised != own and not config.origin_trusted(normalised):
        raise CSRFError(f"the Referer {normalised!r} does not match {own!r} or a trusted origin")


def _check_cross_site(request: Request, config: CSRFConfig) -> None:
    """Refuse what a browser marks as sent from another site, for credential-less requests."""
    site = request.headers.get("sec-fetch-site")
    if site in ("cross-site", "same-site"):
        origin = _normalise_origin(str(request.headers.get("origin", "")))
        if origin is None or not config.origin_trusted(origin):
            raise CSRFError(f"the browser marked this request {site} (Sec-Fetch-Site)")
        return
    if request.headers.get("origin") is not None:
        _check_origin(request, config)  # only its Origin part runs: the header is there


async def _submitted_token(request: Request, config: CSRFConfig) -> str | None:
    token = request.headers.get(config.header_name)
    if token is not None:
        return str(token)
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        value = (await request.form()).get(config.field_name)
        return value if isinstance(value, str) else None
    return None


def check_request(request: Request, config: CSRFConfig) -> Awaitable[None] | None:
    """Check the unsafe ``request``: ``None`` when it passed at once, else a coroutine that
    finishes the check (raising :class:`CSRFError`). The per-request context is only made
    when needed: a credential-less request (an API client) never gets one."""
    route = request.route
    if route is not None and getattr(route.endpoint, EXEMPT_ATTR, False):
        return None
    # One pass over the headers for everything the decision needs (this runs on every POST).
    authorization: bytes | None = None
    ambient = False
    browser = False  # Sec-Fetch-Site or Origin: what _check_cross_site looks at
    for name, value in request.scope["headers"]:
        if name == b"cookie":
            # Any cookie counts, not only the session's: the app (or auth's remember-me) may
            # authenticate by another one, and a browser sends them all by itself.
            ambient = ambient or bool(value.strip())
        elif name == b"authorization":
            if authorization is None:
                authorization = value
            if _auth_scheme(value) in AMBIENT_AUTH_SCHEMES:
                ambient = True
        elif name == b"sec-fetch-site" or name == b"origin":
            browser = True
    if config.exempt_bearer and authorization:
        scheme = _auth_scheme(authorization)
        if scheme and scheme not in AMBIENT_AUTH_SCHEMES:
            # A token header is no ambient credential, so no check now; but if the handler
            # then uses the cookie session, the cookie is what the request acts with after
            # all, and the check runs at that moment (load_session calls verify_deferred).
            get_context(request).csrf_deferred = request
            return None
    if ambient:
        return _verify_logged(request, config, get_context(request))
    if browser:
        # Nothing a browser attaches by itself (no cookie, no Basic-style header): the
        # request can't act as anyone it doesn't name, so there is nothing to forge. A curl
        # or mobile client gets through without a token; a page on another site is still
        # refused by what browsers always send with its requests (Sec-Fetch-Site, Origin),
        # which also covers login forms posted cross-site.
        try:
            _check_cross_site(request, config)
        except CSRFError as exc:
            _log_refusal(request, exc)
            raise
    return None


def _auth_scheme(value: bytes) -> str:
    return value.split(b" ", 1)[0].strip().lower().decode("latin-1")


async def verify_request(request: Request, ctx: RequestContext) -> None:
    """Raise :class:`CSRFError` unless the unsafe ``request`` is safe to process."""
    config = ctx.security.csrf
    if config is None or request.method in SAFE_METHODS:
        return
    pending = check_request(request, config)
    if pending is not None:
        await pending


async def _verify_logged(request: Request, config: CSRFConfig, ctx: RequestContext) -> None:
    try:
        await _verify(request, config, ctx)
    except CSRFError as exc:
        _log_refusal(request, exc)
        raise


async def verify_deferred(ctx: RequestContext) -> None:
    """Run the check skipped for a token-carrying request that turned to the cookie session."""
    request, ctx.csrf_deferred = ctx.csrf_deferred, None
    config = ctx.security.csrf
    if request is not None and config is not None:
        try:
            await _verify(request, config, ctx)
        except CSRFError as exc:
            _log_refusal(request, exc)
            raise


def _log_refusal(request: Request, exc: CSRFError) -> None:
    security_logger.warning(
        "CSRF verification failed for %s %s: %s", request.method, request.path, exc.reason
    )


async def _verify(request: Request, config: CSRFConfig, ctx: RequestContext) -> None:
    """The full check: a trusted origin and a token that matches the stored secret."""
    _check_origin(request, config)
    secret = await _stored_secret(ctx)
    if secret is None:
        raise CSRFError(
            "no CSRF secret for this client (session cookie missing or expired); "
            "load the form again"
        )
    token = await _submitted_token(request, config)
    if not token:
        raise CSRFError(
            f"the CSRF token is missing (send it in the {config.header_name} header "
            f"or the {config.field_name!r} form field)"
        )
    try:
        candidate = unmask(token)
    except ValueError:
        raise CSRFError("the CSRF token is malformed") from None
    if not hmac.compare_digest(candidate, secret):
        raise CSRFError("the CSRF token is incorrect")
