"""Security headers: defaults, CSP nonces, HSTS, per-app and per-route overrides, clickjacking."""

from __future__ import annotations

import re

import pytest

from transom import App, HTMLResponse, Request, Settings
from transom.security import (
    CSPNonce,
    HeadersConfig,
    Security,
    SecurityConfig,
    csp_nonce,
    security_headers,
)

from .conftest import SECRET


def make(headers: HeadersConfig | None = None, **kw: object) -> App:
    app = App(Settings(secret_key=SECRET))
    if headers is None:
        app.install(Security(SecurityConfig(**kw)))  # type: ignore[arg-type]
    else:
        app.install(Security(SecurityConfig(headers=headers, **kw)))  # type: ignore[arg-type]

    @app.get("/page")
    async def page(nonce: CSPNonce) -> str:
        return f"<script nonce='{nonce}'>1</script>"

    @app.get("/plain")
    async def plain() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/embed")
    @security_headers(
        {
            "X-Frame-Options": None,
            "Content-Security-Policy": "frame-ancestors https://partner.example; "
            "script-src 'nonce-{nonce}'",
        }
    )
    async def embed(request: Request) -> str:
        return csp_nonce(request)

    @app.get("/own")
    async def own() -> HTMLResponse:
        return HTMLResponse("x", headers={"X-Frame-Options": "SAMEORIGIN"})

    return app


def test_default_headers_on_every_response() -> None:
    with make().test_client() as client:
        for path in ("/plain", "/page", "/missing"):
            headers = client.get(path).headers
            assert headers["x-content-type-options"] == "nosniff"
            assert headers["x-frame-options"] == "DENY"
            assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
            assert headers["cross-origin-opener-policy"] == "same-origin"
            csp = headers["content-security-policy"]
            assert "frame-ancestors 'none'" in csp
            assert "object-src 'none'" in csp
            assert "strict-transport-security" not in headers  # plain HTTP


def test_csp_nonce_is_per_request_and_matches_the_page() -> None:
    with make().test_client() as client:
        nonces = []
        for _ in range(2):
            response = client.get("/page")
            match = re.search(
                r"'nonce-([A-Za-z0-9_-]+)'", response.headers["content-security-policy"]
            )
            assert match is not None
            assert f"nonce='{match.group(1)}'" in response.text
            nonces.append(match.group(1))
        assert nonces[0] != nonces[1]


def test_hsts_only_over_https() -> None:
    with make().test_client(base_url="https://testserver") as client:
        assert client.get("/plain").headers["strict-transport-security"] == "max-age=31536000"
    config = HeadersConfig(hsts_max_age=600, hsts_include_subdomains=True, hsts_preload=True)
    with make(config).test_client(base_url="https://testserver") as client:
        assert (
            client.get("/plain").headers["strict-transport-security"]
            == "max-age=600; includeSubDomains; preload"
        )
    with make(HeadersConfig(hsts_max_age=0)).test_client(base_url="https://testserver") as client:
        assert "strict-transport-security" not in client.get("/plain").headers


def test_custom_and_report_only_csp() -> None:
    config = HeadersConfig(
        csp="default-src 'none'; script-src 'nonce-{nonce}'", csp_report_only=True
    )
    with make(config).test_client() as client:
        headers = client.get("/page").headers
    assert "content-security-policy" not in headers
    assert headers["content-security-policy-report-only"].startswith("default-src 'none'")
    assert "{nonce}" not in headers["content-security-policy-report-only"]


def test_headers_none_keeps_core_defaults_only() -> None:
    app = App(Settings(secret_key=SECRET))
    app.install(Security(SecurityConfig(headers=None)))

    @app.get("/")
    async def index() -> str:
        return "hi"

    with app.test_client() as client:
        headers = client.get("/").headers
    assert "content-security-policy" not in headers
    assert headers["x-frame-options"] == "DENY"


def test_per_route_override_and_removal() -> None:
    with make().test_client() as client:
        response = client.get("/embed")
    assert "x-frame-options" not in response.headers
    csp = response.headers["content-security-policy"]
    assert csp == f"frame-ancestors https://partner.example; script-src 'nonce-{response.text}'"
    assert response.headers.get_list("content-security-policy") == [csp]


def test_handler_header_wins_over_default_without_duplicates() -> None:
    with make().test_client() as client:
        response = client.get("/own")
    assert response.headers.get_list("x-frame-options") == ["SAMEORIGIN"]


def test_per_app_override_through_default_headers() -> None:
    app = make()
    app.default_headers["Referrer-Policy"] = "no-referrer"
    del app.default_headers["Cross-Origin-Opener-Policy"]
    with app.test_client() as client:
        headers = client.get("/plain").headers
    assert headers["referrer-policy"] == "no-referrer"
    assert "cross-origin-opener-policy" not in headers


def test_override_rejects_header_injection() -> None:
    with pytest.raises(ValueError, match="CR or LF"):
        security_headers({"X-Frame-Options": "DENY\r\nSet-Cookie: a=b"})


def test_headers_on_error_responses() -> None:
    app = make()

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("x")

    with app.test_client() as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.headers["x-frame-options"] == "DENY"
    assert "content-security-policy" in response.headers


def test_non_html_responses_get_the_policy_without_a_nonce() -> None:
    with make().test_client() as client:
        json_csp = client.get("/plain").headers["content-security-policy"]
        html_csp = client.get("/page").headers["content-security-policy"]
    assert "nonce-" not in json_csp
    assert "script-src 'self';" in json_csp
    assert "script-src 'self' 'nonce-" in html_csp


def test_core_error_pages_use_the_csp_nonce() -> None:
    app = App(Settings(secret_key="k"))
    Security(app)
    with app.test_client() as client:
        response = client.get("/no-such-page", headers={"Accept": "text/html"})
    assert response.status_code == 404
    nonce = response.headers["content-security-policy"].split("'nonce-")[1].split("'")[0]
    assert f"<style nonce='{nonce}'>" in response.text
