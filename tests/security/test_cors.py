"""CORS: explicit origins, credentials, preflight."""

from __future__ import annotations

import pytest

from transom import App, Settings
from transom.security import CORSConfig, Security, SecurityConfig

from .conftest import SECRET


def make(config: CORSConfig) -> App:
    app = App(Settings(secret_key=SECRET))
    app.install(Security(SecurityConfig(cors=config)))

    @app.route("/api", methods=["GET", "POST"])
    async def api() -> dict[str, bool]:
        return {"ok": True}

    return app


def preflight(app: App, origin: str, method: str = "POST", headers: str = "") -> object:
    request_headers = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        request_headers["Access-Control-Request-Headers"] = headers
    with app.test_client() as client:
        return client.options("/api", headers=request_headers)


def test_nothing_is_shared_by_default() -> None:
    app = App(Settings(secret_key=SECRET))
    Security(app)

    @app.get("/api")
    async def api() -> dict[str, bool]:
        return {"ok": True}

    with app.test_client() as client:
        response = client.get("/api", headers={"Origin": "https://other.example"})
    assert "access-control-allow-origin" not in response.headers


def test_listed_origin_gets_cors_headers() -> None:
    app = make(CORSConfig(allow_origins=["https://app.example"], expose_headers=["X-Total"]))
    with app.test_client() as client:
        response = client.get("/api", headers={"Origin": "https://app.example"})
        assert response.headers["access-control-allow-origin"] == "https://app.example"
        assert response.headers["access-control-expose-headers"] == "X-Total"
        assert "Origin" in response.headers.get_list("vary")
        assert "access-control-allow-credentials" not in response.headers
        other = client.get("/api", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        assert "Origin" in other.headers.get_list("vary")


def test_wildcard_subdomains() -> None:
    app = make(CORSConfig(allow_origins=["https://*.example.com"]))
    with app.test_client() as client:
        ok = client.get("/api", headers={"Origin": "https://a.example.com"})
        bad = client.get("/api", headers={"Origin": "https://example.com.evil.net"})
    assert ok.headers["access-control-allow-origin"] == "https://a.example.com"
    assert "access-control-allow-origin" not in bad.headers


def test_credentials_echo_the_origin() -> None:
    app = make(CORSConfig(allow_origins=["https://app.example"], allow_credentials=True))
    with app.test_client() as client:
        response = client.get("/api", headers={"Origin": "https://app.example"})
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    assert response.headers["access-control-allow-credentials"] == "true"


def test_star_without_credentials() -> None:
    app = make(CORSConfig(allow_origins=["*"]))
    with app.test_client() as client:
        response = client.get("/api", headers={"Origin": "https://any.example"})
    assert response.headers["access-control-allow-origin"] == "*"


def test_star_with_credentials_is_refused() -> None:
    with pytest.raises(ValueError, match="list the origins"):
        CORSConfig(allow_origins=["*"], allow_credentials=True)


def test_bad_origin_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="https://host"):
        CORSConfig(allow_origins=["app.example"])


def test_preflight_success() -> None:
    app = make(CORSConfig(allow_origins=["https://app.example"], max_age=99))
    response = preflight(app, "https://app.example", "POST", "Content-Type, X-CSRF-Token")
    assert response.status_code == 204  # type: ignore[attr-defined]
    headers = response.headers  # type: ignore[attr-defined]
    assert headers["access-control-allow-origin"] == "https://app.example"
    assert "POST" in headers["access-control-allow-methods"]
    assert headers["access-control-allow-headers"] == "content-type, x-csrf-token"
    assert headers["access-control-max-age"] == "99"


@pytest.mark.parametrize(
    ("origin", "method", "headers", "reason"),
    [
        ("https://evil.example", "POST", "", "origin"),
        ("https://app.example", "TRACE", "", "method"),
        ("https://app.example", "POST", "X-Secret", "x-secret"),
    ],
)
def test_preflight_refusals_say_why(origin: str, method: str, headers: str, reason: str) -> None:
    app = make(CORSConfig(allow_origins=["https://app.example"]))
    response = preflight(app, origin, method, headers)
    assert response.status_code == 403  # type: ignore[attr-defined]
    assert reason in response.text  # type: ignore[attr-defined]
    assert "access-control-allow-origin" not in response.headers  # type: ignore[attr-defined]


def test_plain_options_without_preflight_headers_reaches_the_app() -> None:
    app = make(CORSConfig(allow_origins=["https://app.example"]))
    with app.test_client() as client:
        response = client.options("/api")
    assert response.status_code == 204
    assert "allow" in response.headers


def test_cors_does_not_bypass_csrf() -> None:
    app = make(CORSConfig(allow_origins=["https://app.example"], allow_credentials=True))
    with app.test_client() as client:
        response = client.post("/api", headers={"Origin": "https://app.example"})
    assert response.status_code == 403
