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
from transom.responses import Response
from transom.security._context import get_context, take_nonce

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


_SECURE_SCHEMES = ("https", "wss")
_HSTS = b"strict-transport-security"
RawHeaders = list[tuple[bytes, bytes]]
Template = tuple[bytes, tuple[bytes, ...]]  # a header name, its value split at "{nonce}"


class HeaderPlan:
    """The security headers of one handler, worked out once from the app's default block, the
    :class:`HeadersConfig` and the handler's :func:`security_headers` overrides.

    A response then costs a look-up (non-HTML: the whole block is ready, static CSP included)
    or, for HTML, one nonce joined into the precomputed pieces of the policy.
    """

    __slots__ = ("blocks", "csp_name", "html_blocks", "html_csp", "templates")

    def __init__(
        self,
        config: HeadersConfig | None,
        overrides: Mapping[bytes, str | None],
        base: RawHeaders,
    ) -> None:
        # The app's defaults, but those a handler override replaces or removes; a header the
        # defaults hold twice is sent once (the first one wins, as for the handler's own).
        kept: RawHeaders = []
        seen: set[bytes] = set()
        for name, value in base:
            if name in overrides or (name in _SINGLE and name in seen):
                continue
            seen.add(name)
            kept.append((name, value))
        fixed: RawHeaders = []
        #: Overrides whose value holds ``{nonce}``: on every response of the handler.
        self.templates: list[Template] = []
        for name, override in overrides.items():
            if override is None:
                continue
            encoded = override.encode("latin-1")
            if b"{nonce}" in encoded:
                self.templates.append((name, tuple(encoded.split(b"{nonce}"))))
            else:
                fixed.append((name, encoded))
        static: RawHeaders = []
        self.csp_name = b"content-security-policy"
        #: The policy's pieces around its nonces, for HTML responses (None: no nonce CSP).
        self.html_csp: tuple[bytes, ...] | None = None
        hsts: RawHeaders = []
        if config is not None:
            if config.csp_report_only:
                self.csp_name = b"content-security-policy-report-only"
            if config.csp and self.csp_name not in seen and self.csp_name not in overrides:
                assert config._static_csp is not None
                static.append((self.csp_name, config._static_csp))
                self.html_csp = tuple(config.csp.encode("latin-1").split(b"{nonce}"))
            if config._hsts and _HSTS not in seen and _HSTS not in overrides:
                hsts.append((_HSTS, config._hsts))
        #: By ``secure`` (HTTPS): the block of a response that needs no nonce.
        self.blocks = (kept + static + fixed, kept + static + hsts + fixed)
        #: By ``secure``: the block of an HTML response, before its nonce policy.
        self.html_blocks = (kept + fixed, kept + hsts + fixed)

    def block(self, secure: bool, html: bool, nonce: Callable[[], str] | None) -> RawHeaders:
        """The headers for one response (a shared list when no nonce is needed: don't change
        it); ``nonce`` gives the request's nonce (``None``: a fresh one, only if needed)."""
        csp = self.html_csp if html else None
        if csp is None and not self.templates:
            return self.blocks[secure]
        value = nonce().encode("ascii") if nonce is not None else take_nonce()
        if csp is not None:
            out = [*self.html_blocks[secure], (self.csp_name, value.join(csp))]
        else:
            out = list(self.blocks[secure])
        for name, parts in self.templates:
            out.append((name, value.join(parts)))
        return out


def is_html(response: Response) -> bool:
    """Whether ``response`` is sent as ``text/html`` (its own Content-Type header first)."""
    content_type = response.content_type
    if response.raw_headers:
        for name, value in response.raw_headers:
            if name == b"content-type":
                return value.startswith(b"text/html")
    return content_type is not None and content_type.startswith("text/html")


def plan_for(
    endpoint: Callable[..., Any] | None, config: HeadersConfig | None, base: RawHeaders
) -> HeaderPlan:
    """A new :class:`HeaderPlan` for ``endpoint`` (``None``: answers outside a route)."""
    overrides: dict[bytes, str | None] = (
        getattr(endpoint, OVERRIDES_ATTR, {}) if endpoint is not None else {}
    )
    return HeaderPlan(config, overrides, base)


def is_secure(scope: Mapping[str, Any]) -> bool:
    """Whether the request arrived over HTTPS (after trusted-proxy rewriting)."""
    return scope.get("scheme") in _SECURE_SCHEMES
