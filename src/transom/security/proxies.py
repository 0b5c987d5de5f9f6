"""Trusted reverse proxies: honour ``X-Forwarded-For/Proto/Host`` only from listed addresses.

Behind a load balancer every request comes from the balancer's address over plain HTTP; the
real client address, scheme and host travel in ``X-Forwarded-*`` headers, which *anyone* can
also send. :class:`ProxyHeadersMiddleware` rewrites the ASGI scope from those headers only when
the connection comes from a trusted proxy, and strips them otherwise, so nothing downstream
(rate limits, CSRF origin checks, ``Secure`` cookies, HSTS, allowed hosts) can be fooled.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from transom._types import ASGIApp, Receive, Scope, Send

__all__ = ["ProxyHeadersMiddleware"]

_FORWARDED = (b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host")
_SCHEMES = {"http": ("http", "ws"), "https": ("https", "wss")}
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("["):  # "[2001:db8::1]:443"
        text = text[1 : text.find("]")]
    elif text.count(":") == 1:  # "203.0.113.9:5000"
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class ProxyHeadersMiddleware:
    """Rewrite client address, scheme and host from headers set by trusted proxies.

    Args:
        app: The ASGI app to wrap.
        trusted: Proxy addresses or networks (``"10.0.0.1"``, ``"10.0.0.0/8"``, ``"::1"``).
        forwarded_host: Also honour ``X-Forwarded-Host`` (the result still has to pass
            ``allowed_hosts``).

    The client is the right-most ``X-Forwarded-For`` address that is not itself a trusted
    proxy (entries further left may be forged by the client). Proto and host come from the
    right-most value, the one the nearest trusted proxy wrote.
    """

    def __init__(
        self, app: ASGIApp, trusted: Sequence[str] = (), *, forwarded_host: bool = True
    ) -> None:
        self.app = app
        self.networks: list[IPNetwork] = [ipaddress.ip_network(t, strict=False) for t in trusted]
        self.forwarded_host = forwarded_host

    def is_trusted(self, address: str) -> bool:
        """Whether ``address`` belongs to a trusted proxy."""
        ip = _parse_ip(address)
        return ip is not None and any(ip in net for net in self.networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = self._rewrite(scope)
        await self.app(scope, receive, send)

    def _rewrite(self, scope: Scope) -> Scope:
        headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
        if not any(name in _FORWARDED for name, _ in headers):
            return scope
        # In place, as uvicorn's own proxy-headers middleware does: middleware outside this one
        # (the cache's store step) reads what the app wrote into this same scope dict.
        client = scope.get("client")
        kept = [(n, v) for n, v in headers if n not in _FORWARDED]
        if not client or not self.is_trusted(str(client[0])):
            # Forged by the client: drop them so no handler trusts them by accident.
            scope["headers"] = kept
            return scope
        values: dict[bytes, list[str]] = {}
        for name, value in headers:
            if name in _FORWARDED:
                values.setdefault(name, []).extend(
                    v.strip() for v in value.decode("latin-1").split(",") if v.strip()
                )
        chain = values.get(b"x-forwarded-for", [])
        if chain:
            scope["client"] = self._client(chain, client)
        protos = values.get(b"x-forwarded-proto", [])
        if protos:
            proto = protos[-1].lower()
            if proto in _SCHEMES:
                scope["scheme"] = _SCHEMES[proto][scope["type"] == "websocket"]
        hosts = values.get(b"x-forwarded-host", [])
        if hosts and self.forwarded_host:
            kept = [(n, v) for n, v in kept if n != b"host"]
            kept.append((b"host", hosts[-1].encode("latin-1")))
        scope["headers"] = kept
        return scope

    def _client(self, chain: list[str], peer: Any) -> tuple[str, int]:
        last: tuple[str, int] = (str(peer[0]), int(peer[1]))
        for entry in reversed(chain):
            ip = _parse_ip(entry)
            if ip is None:
                return last  # garbage: nothing left of it can be trusted
            if not any(ip in net for net in self.networks):
                return (str(ip), 0)
            last = (str(ip), 0)
        return last  # every hop is a trusted proxy: the left-most one
