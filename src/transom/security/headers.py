"""Security response headers: Content-Security-Policy with per-request nonces, HSTS, overrides.

The core already adds ``X-Content-Type-Options``, ``X-Frame-Options``, ``Referrer-Policy`` and
``Cross-Origin-Opener-Policy`` to every response (change them app-wide on
``app.default_headers``). This module adds a CSP whose ``{nonce}`` placeholder is replaced by a
fresh nonce per request (:func:`csp_nonce` gives it to templates), HSTS on HTTPS responses, and
:func:`security_headers` to change or remove any of them for one handler.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypeVar

from transom.params import Depends
from transom.requests import Request
from transom.security._context import RequestContext, get_context

__all__ = ["DEFAULT_CSP", "CSPNonce", "HeadersConfig", "csp_nonce", "security_headers"]

F = TypeVar("F", bound=Callable[..., Any])
OVERRIDES_ATTR = "__transom_security_headers__"

#: Scripts and styles only from this origin or carrying the request's nonce; no plugins, no
#: framing (the modern twin of X-Frame-Options: DENY), forms post only here.
DEFAULT_CSP = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'nonce-{nonce}'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# Headers that may be present twice (the handler's own value, then the app default appended by
# the core): the first one wins.
_SINGLE = frozenset(
    {
        b"x-content-type-options",
        b"x-frame-options",
        b"referrer-policy",
        b"cross-origin-opener-policy",
        b"content-security-policy",
        b"content-security-policy-report-only",
        b"strict-transport-security",
    }
)


@dataclasses.dataclass
class HeadersConfig:
    """CSP and HSTS settings.

    Attributes:
        csp: The policy; ``{nonce}`` becomes the request's nonce. ``None`` sends no CSP.
        csp_report_only: Send ``Content-Security-Policy-Report-Only`` instead (to try a policy).
        hsts_max_age: Seconds browsers must use HTTPS only; ``0`` turns HSTS off. Sent on HTTPS
            responses only (browsers ignore it over HTTP).
        hsts_include_subdomains: Add ``includeSubDomains`` (every subdomain must be HTTPS).
        hsts_preload: Add ``preload`` (only once you have submitted the domain to the list).
    """

    csp: str | None = DEFAULT_CSP
    csp_report_only: bool = False
    hsts_max_age: int = 365 * 24 * 3600
    hsts_include_subdomains: bool = False
    hsts_preload: bool = False

    def __post_init__(self) -> None:
        hsts = self.hsts_value()
        self._hsts = hsts.encode("latin-1") if hsts else None
        # Responses that are not HTML run no scripts: they get the policy without the nonce
        # (stricter, and it saves generating one).
        self._static_csp = (
            self.csp.replace(" 'nonce-{nonce}'", "").replace("'nonce-{nonce}'", "").encode()
            if self.csp
            else None
        )

    def hsts_value(self) -> str | None:
        """The ``Strict-Transport-Security`` value, or ``None`` when disabled."""
        if self.hsts_max_age <= 0:
            return None
        value = f"max-age={self.hsts_max_age}"
        if self.hsts_include_subdomains:
            value += "; includeSubDomains"
        if self.hsts_preload:
            value += "; preload"
        return value


def security_headers(headers: Mapping[str, str | None]) -> Callable[[F], F]:
    """Override security headers for one handler; ``None`` removes a header.

    ``{nonce}`` in a ``Content-Security-Policy`` value is replaced by the request's nonce::

        @app.get("/embed")
        @security_headers({"X-Frame-Options": None, "Content-Security-Policy":
                           "frame-ancestors https://partner.example"})
        async def embed(): ...
    """
    for value in headers.values():
        if value is not None and ("\r" in value or "\n" in value):
            raise ValueError("header values must not contain CR or LF")
    raw = {name.lower().encode("latin-1"): value for name, value in headers.items()}

    def decorator(func: F) -> F:
        merged = {**getattr(func, OVERRIDES_ATTR, {}), **raw}
        setattr(func, OVERRIDES_ATTR, merged)
        return func

    return decorator


def csp_nonce(request: Request) -> str:
    """The nonce of this request's CSP: ``<script nonce="{{ nonce }}">``."""
    return get_context(request).csp_nonce()


#: Inject the nonce: ``async def page(nonce: CSPNonce): ...``.
CSPNonce = Annotated[str, Depends(csp_nonce)]


def apply_headers(ctx: RequestContext, headers: list[tuple[bytes, bytes]]) -> None:
    """Finish the response headers in place: de-duplicate, add CSP/HSTS, apply overrides."""
    seen: set[bytes] = set()
    kept: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        if name in _SINGLE:
            if name in seen:
                continue
            seen.add(name)
        kept.append((name, value))
    config = ctx.security.headers
    overrides: dict[bytes, str | None] = (
        getattr(ctx.endpoint, OVERRIDES_ATTR, {}) if ctx.endpoint is not None else {}
    )
    if config is not None:
        csp_name = (
            b"content-security-policy-report-only"
            if config.csp_report_only
            else b"content-security-policy"
        )
        if config.csp and csp_name not in seen and csp_name not in overrides:
            if ctx.nonce is None and not _is_html(kept):
                assert config._static_csp is not None
                kept.append((csp_name, config._static_csp))
            else:
                kept.append((csp_name, _with_nonce(ctx, config.csp)))
        if config._hsts and ctx.is_secure and b"strict-transport-security" not in seen:
            kept.append((b"strict-transport-security", config._hsts))
    for name, override in overrides.items():
        kept = [item for item in kept if item[0] != name]
        if override is not None:
            kept.append((name, _with_nonce(ctx, override)))
    headers[:] = kept


def _is_html(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"content-type":
            return value.startswith(b"text/html")
    return False


def _with_nonce(ctx: RequestContext, policy: str) -> bytes:
    if "{nonce}" in policy:
        policy = policy.replace("{nonce}", ctx.csp_nonce())
    return policy.encode("latin-1")
