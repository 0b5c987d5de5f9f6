"""Strict ``Host`` header parsing and the ``allowed_hosts`` check.

A ``Host`` value chooses where absolute links point (password-reset and verification emails,
pagination links), so it must be a host and nothing else. A lenient parser that cuts the port
with a right split on ``:`` accepts ``127.0.0.1:8410@evil.com`` (the "port" is ``8410@evil.com``),
and a browser that follows ``http://127.0.0.1:8410@evil.com/...`` goes to ``evil.com`` with the
token. So the value is parsed whole, RFC 3986 style, before the allow-list is consulted:

- a DNS name or IPv4 address (letters, digits, ``-``, ``_`` and dots; an optional final dot),
  or a bracketed IPv6 address,
- then an optional numeric port (1 to 5 digits, at most 65535),
- nothing else: no userinfo (``@``), path, query, spaces, percent-escapes or sub-delimiters.

That is stricter than RFC 3986's reg-name, which also allows ``!$&'()*+,;=`` and ``%XX``: no
browser sends those in a ``Host``, and each is a way to make a link mean something else.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

__all__ = ["AllowedHosts", "parse_host"]

# Labels of letters, digits, '-' and '_' joined by single dots; a trailing dot (the DNS root)
# is allowed and dropped. IPv4 addresses match this too.
_NAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?")
_PORT = re.compile(r"[0-9]{1,5}")


def parse_host(value: str) -> tuple[str, int | None] | None:
    """Split a ``Host`` header into ``(host, port)``, or ``None`` when it is not a plain host.

    The host comes back lower-cased, without a trailing dot; an IPv6 host keeps its brackets.

    Example:
        >>> parse_host("Example.COM.:8000")
        ('example.com', 8000)
        >>> parse_host("[::1]")
        ('[::1]', None)
        >>> parse_host("127.0.0.1:8410@evil.com") is None
        True
    """
    if not value.isascii():  # before lower(): it maps a Kelvin sign to "k"
        return None
    value = value.lower()
    port: int | None = None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        host, rest = value[: end + 1], value[end + 1 :]
        if "%" in host:  # a zone id ("%eth0") names a local interface, never a site
            return None
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return None
        if rest:
            if not rest.startswith(":") or not _PORT.fullmatch(rest[1:]):
                return None
            port = int(rest[1:])
    else:
        host, colon, rest = value.partition(":")
        if colon:
            if not _PORT.fullmatch(rest):
                return None
            port = int(rest)
        if len(host) > 253 or not _NAME.fullmatch(host):
            return None
        host = host.rstrip(".")
    if port is not None and port > 65535:
        return None
    return host, port


class AllowedHosts:
    """The ``allowed_hosts`` setting, compiled: exact names, ``.suffix`` patterns, or ``*``.

    Every value is parsed strictly first, even under ``*``: ``*`` allows any *host*, never a
    value that is not one.
    """

    __slots__ = ("_any", "_exact", "_seen", "_suffixes")

    def __init__(self, patterns: Iterable[str]) -> None:
        hosts = [p.lower().rstrip(".") for p in patterns]
        self._any = "*" in hosts
        self._exact = frozenset(h for h in hosts if not h.startswith("."))
        self._suffixes = tuple(h for h in hosts if h.startswith("."))
        # Raw header values already allowed: on a busy site nearly every request carries one
        # of a handful, so the common case is one set look-up instead of a parse.
        self._seen: set[bytes] = set()

    def allows(self, raw: bytes | None) -> bool:
        """Whether a raw ``Host`` header value is a well-formed, allowed host.

        ``None`` (no header: HTTP/1.0) is allowed; absolute URLs then use the server address.
        """
        if raw is None or raw in self._seen:
            return True
        parsed = parse_host(raw.decode("latin-1"))
        if parsed is None:
            return False
        host = parsed[0]
        allowed = (
            self._any
            or host in self._exact
            or any(host.endswith(suffix) or host == suffix[1:] for suffix in self._suffixes)
        )
        if allowed and len(self._seen) < 256:
            self._seen.add(raw)
        return allowed
