"""The security battery's part of a WebSocket handshake: Origin checking and the session.

Browsers send cookies with a WebSocket handshake to any site, and the same-origin policy does
not apply to WebSockets: without a check, a page on another site could open a connection that
carries the user's session (cross-site WebSocket hijacking). A handshake whose ``Origin`` is
neither this app's own origin nor one of ``CSRFConfig.trusted_origins`` is refused with 403
before the handler runs. A handshake without ``Origin`` is not from a browser page (browsers
always send it) and carries no ambient credential a third party chose, so it passes.

The same :class:`~transom.security._context.RequestContext` as for HTTP requests is made on
first use (a WebSocket is a Request), so ``SessionDataDep``, ``CurrentUser`` and friends work
in WebSocket handlers. The session is read-only there: a WebSocket has no response to carry a
new cookie.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from transom._types import Receive, Scope, Send
from transom.security._context import security_logger
from transom.security.csrf import _normalise_origin

if TYPE_CHECKING:
    from transom.security.extension import Security

__all__ = ["refuse_foreign_origin", "websocket_origin_allowed"]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def websocket_origin_allowed(security: Security, scope: Scope) -> bool:
    """Whether the handshake's ``Origin`` (if any) is this app's or a trusted one."""
    origin = _header(scope, b"origin")
    if origin is None:
        return True
    normalised = _normalise_origin(origin)
    if normalised is None:  # "null" (sandboxed page) or malformed: never trusted
        return False
    https = scope.get("scheme") in ("wss", "https")
    host = (_header(scope, b"host") or "").lower()
    default = ":443" if https else ":80"
    if host.endswith(default):
        host = host[: -len(default)]
    own = f"{'https' if https else 'http'}://{host}"
    if normalised == own:
        return True
    csrf = security.csrf
    return csrf is not None and csrf.origin_trusted(normalised)


async def refuse_foreign_origin(
    security: Security, scope: Scope, receive: Receive, send: Send
) -> bool:
    """Refuse a foreign-origin handshake (403, or 1008 without the denial extension) and
    return False; True when it may go on (the handler then gets the session lazily, as an
    HTTP request does)."""
    if websocket_origin_allowed(security, scope):
        return True
    security_logger.warning(
        "Refused websocket %s from foreign Origin %r",
        scope.get("path"),
        _header(scope, b"origin"),
    )
    await receive()  # websocket.connect
    if "websocket.http.response" in (scope.get("extensions") or {}):
        body = orjson.dumps({"detail": "Cross-origin WebSocket refused"})
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode("latin-1")),
            *security.app.default_headers.raw,
        ]
        await send({"type": "websocket.http.response.start", "status": 403, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008, "reason": "cross-origin"})
    return False
