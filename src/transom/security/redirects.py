"""Safe ``next`` URLs: only paths on this site, never another host or a scheme downgrade.

The one check behind the login pages of :mod:`transom.auth` (``transom.auth.safe_next``) and
the admin.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import urlsplit

__all__ = ["safe_next"]


def safe_next(
    url: str | None,
    *,
    host: str,
    secure: bool,
    allowed_hosts: frozenset[str] = frozenset(),
    default: str = "/",
) -> str:
    """Return ``url`` when it is a safe place to redirect to after login, else ``default``.

    Accepted: a relative path (``/account``) or an absolute URL on ``host`` (or one of
    ``allowed_hosts``) with ``https`` (``http`` only when the current request is not secure).
    Refused: other hosts, scheme-relative ``//evil``, backslash tricks (``/\\evil``), control
    characters, ``javascript:`` and every other scheme.

    Example:
        >>> safe_next("//evil.example", host="site.example", secure=True)
        '/'
        >>> safe_next("/account?tab=2", host="site.example", secure=True)
        '/account?tab=2'
    """
    if not url:
        return default
    url = url.strip()
    # Browsers ignore tabs/newlines inside URLs and treat "\" like "/": check what they'll see.
    if any(unicodedata.category(ch).startswith("C") for ch in url) or "\\" in url:
        return default
    try:
        parts = urlsplit(url)
    except ValueError:
        return default
    if not parts.scheme and not parts.netloc:
        return url if url.startswith("/") and not url.startswith("//") else default
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return default
    if parts.scheme == "http" and secure:
        return default  # https -> http would expose the session to the network
    try:
        target = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return default
    own = host.lower()
    netloc = target if port is None else f"{target}:{port}"
    if parts.username is not None or parts.password is not None:
        return default
    if netloc == own or netloc in allowed_hosts:
        return url
    return default
