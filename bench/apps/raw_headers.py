"""The raw ASGI floor sending the response headers ``Transom + Security(app)`` sends: its four
default security headers, a Content-Security-Policy and an ``X-Request-ID`` (fixed values).

Bench-only (``bench/server_cpu.py``): beside ``raw_asgi``, it measures what those six headers
cost the server itself (granian encodes them in Rust, uvicorn in Python), apart from the
framework's own Python. The wrapper around ``send`` adds a little Python of its own.
"""

from __future__ import annotations

from .raw_asgi import Message, Receive, Scope, Send
from .raw_asgi import app as raw_app

EXTRA = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-request-id", b"f22ff843680156e8ff839853679b4a1a"),
]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """``raw_asgi.app`` with :data:`EXTRA` appended to every response's headers."""

    async def send_extra(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message["headers"], *EXTRA]
        await send(message)

    await raw_app(scope, receive, send_extra if scope["type"] == "http" else send)


__all__ = ["app"]
