"""What the battery costs a request that uses none of it: no session work, no context, no
middleware; and what it still does there (headers) and elsewhere (CSRF on unsafe methods)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from transom import App, Request, Settings
from transom.security import (
    CORSConfig,
    MemorySessionBackend,
    Security,
    SecurityConfig,
    SecurityMiddleware,
    SessionConfig,
    SessionDataDep,
)

from .conftest import SECRET

CONTEXT_KEY = "transom.security"


class CountingBackend(MemorySessionBackend):
    """A server-side store that counts what the battery asks of it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    async def load(self, key: str) -> dict[str, Any] | None:
        self.calls.append("load")
        return await super().load(key)

    async def save(self, key: str, record: dict[str, Any], ttl: int) -> None:
        self.calls.append("save")
        await super().save(key, record, ttl)


def make(backend: CountingBackend | None = None, **security: Any) -> App:
    app = App(Settings(secret_key=SECRET))
    sessions = SessionConfig(backend=backend) if backend is not None else SessionConfig()
    app.install(Security(SecurityConfig(sessions=sessions, **security)))

    @app.get("/json")
    async def json(request: Request) -> dict[str, bool]:
        # Seen from inside the handler: did anything make the per-request context?
        return {"context": CONTEXT_KEY in request.scope}

    @app.get("/html")
    async def html(request: Request) -> str:
        return "<p>context</p>" if CONTEXT_KEY in request.scope else "<p>none</p>"

    @app.get("/login")
    async def login(session: SessionDataDep) -> dict[str, bool]:
        session["user"] = "ann"
        return {"ok": True}

    @app.post("/submit")
    async def submit(request: Request) -> dict[str, bool]:
        return {"context": CONTEXT_KEY in request.scope}

    return app


def test_no_middleware_unless_cors_or_proxies() -> None:
    app = make()
    app.build()
    assert app._middleware == []  # the core's no-middleware path serves it
    with_cors = make(cors=CORSConfig(allow_origins=["https://a.example"]))
    with_cors.build()
    assert len(with_cors._middleware) == 1


def test_get_without_cookie_makes_no_context_and_no_cookie() -> None:
    backend = CountingBackend()
    with make(backend).test_client() as client:
        response = client.get("/json")
        assert response.json() == {"context": False}
        assert "set-cookie" not in response.headers
        assert "vary" not in response.headers
        assert "nonce-" not in response.headers["content-security-policy"]
        assert backend.calls == []


def test_session_cookie_alone_loads_nothing_until_the_handler_asks() -> None:
    backend = CountingBackend()
    with make(backend).test_client() as client:
        client.get("/login")
        assert backend.calls == ["save"]
        assert client.cookies
        response = client.get("/json")
        assert response.json() == {"context": False}
        assert backend.calls == ["save"]  # the cookie was sent, but nobody read the session
        assert "set-cookie" not in response.headers


def test_html_gets_a_fresh_nonce_without_a_context() -> None:
    with make().test_client() as client:
        nonces = []
        for _ in range(3):
            response = client.get("/html")
            assert response.text == "<p>none</p>"
            found = re.findall(
                r"'nonce-([A-Za-z0-9_-]+)'", response.headers["content-security-policy"]
            )
            assert len(found) == 2
            assert found[0] == found[1]
            assert len(found[0]) == 22
            nonces.append(found[0])
        assert len(set(nonces)) == 3


def test_https_gets_hsts_and_http_does_not() -> None:
    app = make()
    with app.test_client(base_url="https://testserver") as client:
        assert "max-age=" in client.get("/json").headers["strict-transport-security"]
        assert "max-age=" in client.get("/html").headers["strict-transport-security"]
    with app.test_client() as client:
        assert "strict-transport-security" not in client.get("/json").headers


def test_unsafe_methods_still_get_the_csrf_check() -> None:
    with make().test_client() as client:
        # No cookie, no Origin: an API client, nothing to forge; no context either.
        assert client.post("/submit").json() == {"context": False}
        cross = client.post("/submit", headers={"Sec-Fetch-Site": "cross-site"})
        assert cross.status_code == 403
        client.get("/login")  # a session cookie: an ambient credential
        refused = client.post("/submit")
        assert refused.status_code == 403
        assert "CSRF" in refused.text


def test_security_middleware_is_a_deprecated_pass_through() -> None:
    async def inner(scope: Any, receive: Any, send: Any) -> None:
        return None

    with pytest.warns(DeprecationWarning, match="does nothing"):
        middleware = SecurityMiddleware(inner)
    assert middleware.app is inner
