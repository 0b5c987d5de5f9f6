"""Trusted proxies: X-Forwarded-For/Proto/Host honoured only from configured addresses."""

from __future__ import annotations

from typing import Any

import pytest

from transom import App, Request, Settings
from transom.security import ProxyHeadersMiddleware, Security, SecurityConfig, SessionDataDep, limit

from .conftest import SECRET

PROXY = ("10.0.0.5", 4000)


def make(trusted: list[str], **settings: Any) -> App:
    app = App(Settings(secret_key=SECRET, **settings))
    app.install(Security(SecurityConfig(trusted_proxies=trusted)))

    @app.get("/whoami")
    async def whoami(request: Request) -> dict[str, Any]:
        return {
            "client": request.client[0] if request.client else None,
            "scheme": request.scheme,
            "host": request.host,
            "forwarded": request.headers.get("x-forwarded-for"),
        }

    @app.get("/login")
    async def login_page(session: SessionDataDep) -> dict[str, bool]:
        session["seen"] = True
        return {"ok": True}

    @app.get("/limited")
    @limit("2/minute")
    async def limited() -> dict[str, bool]:
        return {"ok": True}

    return app


def get(app: App, path: str, peer: tuple[str, int], headers: dict[str, str]) -> Any:
    with app.test_client(client_address=peer) as client:
        return client.get(path, headers=headers)


def test_untrusted_peer_cannot_spoof() -> None:
    app = make(["10.0.0.0/8"])
    headers = {
        "X-Forwarded-For": "1.2.3.4",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "localhost",
    }
    data = get(app, "/whoami", ("203.0.113.7", 5000), headers).json()
    assert data == {
        "client": "203.0.113.7",
        "scheme": "http",
        "host": "testserver",
        "forwarded": None,
    }


def test_nothing_is_trusted_by_default() -> None:
    app = App(Settings(secret_key=SECRET))
    Security(app)

    @app.get("/c")
    async def c(request: Request) -> str:
        return request.client[0] if request.client else ""

    with app.test_client(client_address=PROXY) as client:
        assert client.get("/c", headers={"X-Forwarded-For": "1.2.3.4"}).text == PROXY[0]


def test_trusted_proxy_sets_client_scheme_and_host() -> None:
    app = make(["10.0.0.0/8"])
    headers = {
        "X-Forwarded-For": "198.51.100.9",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "localhost",
    }
    data = get(app, "/whoami", PROXY, headers).json()
    assert data["client"] == "198.51.100.9"
    assert data["scheme"] == "https"
    assert data["host"] == "localhost"


def test_right_most_untrusted_address_wins() -> None:
    app = make(["10.0.0.0/8"])
    # The client forged "6.6.6.6"; our proxies are 10.0.0.7 and the peer 10.0.0.5.
    chain = "6.6.6.6, 198.51.100.9, 10.0.0.7"
    assert get(app, "/whoami", PROXY, {"X-Forwarded-For": chain}).json()["client"] == "198.51.100.9"
    # Garbage in the chain: stop at the last trusted hop.
    chain = "198.51.100.9, not-an-ip, 10.0.0.7"
    assert get(app, "/whoami", PROXY, {"X-Forwarded-For": chain}).json()["client"] == "10.0.0.7"


def test_multiple_header_lines_and_ipv6() -> None:
    app = make(["::1", "10.0.0.5"])
    with app.test_client(client_address=("::1", 1)) as client:
        response = client.get(
            "/whoami",
            headers=[("X-Forwarded-For", "2001:db8::1"), ("X-Forwarded-For", "10.0.0.5")],
        )
    assert response.json()["client"] == "2001:db8::1"


def test_invalid_proto_is_ignored() -> None:
    app = make(["10.0.0.5"])
    data = get(app, "/whoami", PROXY, {"X-Forwarded-Proto": "gopher"}).json()
    assert data["scheme"] == "http"


def test_forwarded_https_makes_cookies_secure_and_adds_hsts() -> None:
    app = make(["10.0.0.5"])
    response = get(app, "/login", PROXY, {"X-Forwarded-Proto": "https"})
    [cookie] = response.headers.get_list("set-cookie")
    assert cookie.startswith("__Host-session=")
    assert "Secure" in cookie
    assert "strict-transport-security" in response.headers


def test_forwarded_host_is_still_checked_against_allowed_hosts() -> None:
    app = make(["10.0.0.5"])
    response = get(app, "/whoami", PROXY, {"X-Forwarded-Host": "evil.example"})
    assert response.status_code == 400


def test_rate_limit_uses_the_real_client() -> None:
    app = make(["10.0.0.5"])
    with app.test_client(client_address=PROXY) as client:
        for _ in range(2):
            assert client.get("/limited", headers={"X-Forwarded-For": "1.1.1.1"}).status_code == 200
        assert client.get("/limited", headers={"X-Forwarded-For": "1.1.1.1"}).status_code == 429
        assert client.get("/limited", headers={"X-Forwarded-For": "2.2.2.2"}).status_code == 200


@pytest.mark.parametrize(
    ("address", "trusted"),
    [("10.1.2.3", True), ("11.0.0.1", False), ("::1", True), ("garbage", False)],
)
def test_is_trusted(address: str, trusted: bool) -> None:
    middleware = ProxyHeadersMiddleware(lambda s, r, x: None, ["10.0.0.0/8", "::1"])  # type: ignore[arg-type,return-value]
    assert middleware.is_trusted(address) is trusted


def test_trusted_proxies_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Where the deployment is described: TRANSOM_TRUSTED_PROXIES, comma-separated.
    monkeypatch.setenv("TRANSOM_TRUSTED_PROXIES", "192.0.2.1, 10.0.0.0/8")
    app = App(Settings(secret_key=SECRET))
    security = app.install(Security())
    assert security.trusted_proxies == ("192.0.2.1", "10.0.0.0/8")

    @app.get("/whoami")
    async def whoami(request: Request) -> dict[str, Any]:
        return {"client": request.client[0] if request.client else None}

    headers = {"X-Forwarded-For": "203.0.113.7"}
    assert get(app, "/whoami", PROXY, headers).json() == {"client": "203.0.113.7"}
    assert get(app, "/whoami", ("198.51.100.2", 1), headers).json() == {"client": "198.51.100.2"}
    # Code still decides when it says so.
    assert Security(SecurityConfig(trusted_proxies=[])).trusted_proxies == ()
