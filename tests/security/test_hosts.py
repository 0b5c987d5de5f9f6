"""Host-header poisoning and request limits, seen from the security battery's side."""

from __future__ import annotations

import pytest

from transom import App, Request, Settings
from transom.security import CSRFToken, Security, SecurityConfig, SessionDataDep

from .conftest import SECRET


def make(settings: Settings | None = None) -> tuple[App, list[str]]:
    app = App(settings or Settings(secret_key=SECRET))
    Security(app)
    calls: list[str] = []

    @app.get("/reset")
    async def reset(request: Request, session: SessionDataDep) -> dict[str, str]:
        calls.append("reset")
        session["touched"] = "1"
        return {"link": request.url_for("reset")}

    @app.get("/token")
    async def token(token: CSRFToken) -> dict[str, str]:
        return {"token": token}

    @app.post("/upload")
    async def upload(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    return app, calls


@pytest.mark.parametrize(
    "host",
    ["evil.example", "localhost.evil.example", "evil.example:80", "127.0.0.1.evil", "[::2]", ""],
)
def test_foreign_host_gets_400_before_any_handler(host: str) -> None:
    app, calls = make()
    with app.test_client() as client:
        response = client.get("/reset", headers={"Host": host})
    assert response.status_code == 400
    assert calls == []
    # No session is created and security headers are still there.
    assert response.headers.get_list("set-cookie") == []
    assert response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1:8000", "[::1]:8000", "LOCALHOST."])
def test_default_allowed_hosts(host: str) -> None:
    app, _calls = make()
    with app.test_client() as client:
        response = client.get("/reset", headers={"Host": host})
    assert response.status_code == 200


def test_host_check_in_production_mode() -> None:
    settings = Settings(secret_key=SECRET, debug=False, allowed_hosts=["example.com"])
    app, calls = make(settings)
    with app.test_client() as client:
        assert client.get("/reset", headers={"Host": "example.com"}).status_code == 200
        assert client.get("/reset", headers={"Host": "evil.com"}).status_code == 400
    assert calls == ["reset"]


def test_body_limit_is_enforced_before_reading_everything() -> None:
    settings = Settings(secret_key=SECRET, max_body_size=1000)
    app, _ = make(settings)
    with app.test_client() as client:
        response = client.post(
            "/upload",
            content=b"x" * 5000,
            headers={"Authorization": "Bearer t", "Content-Type": "application/octet-stream"},
        )
    assert response.status_code == 413


def test_form_field_limit_applies_to_the_csrf_check() -> None:
    settings = Settings(secret_key=SECRET, max_form_fields=10)
    app, _ = make(settings)
    with app.test_client() as client:
        client.get("/token")
        data = {f"f{i}": "v" for i in range(50)}
        response = client.post("/upload", data=data)
    # Reading the form to find the CSRF token respects the same limits as the handler.
    assert response.status_code in (400, 413)


def test_too_many_headers_gets_431_before_routing() -> None:
    app = App(Settings(secret_key=SECRET, max_headers=20))
    Security(app)
    calls: list[int] = []

    @app.get("/")
    async def index() -> None:
        calls.append(1)

    with app.test_client() as client:
        headers = [(f"X-H{i}", "v") for i in range(30)]
        response = client.get("/", headers=headers)
        assert response.status_code == 431
        assert "Request headers too large (limit 20 headers" in response.json()["detail"]
        assert response.headers["x-frame-options"] == "DENY"
        assert client.get("/").status_code == 204
    assert calls == [1]


def test_oversized_headers_get_431() -> None:
    app, calls = make()
    with app.test_client() as client:
        response = client.get("/reset", headers={"Cookie": "a=" + "x" * 40_000})
    assert response.status_code == 431
    assert "too large" in response.json()["detail"]
    assert calls == []


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:8410@evil.com",  # userinfo: the browser goes to evil.com
        "localhost@evil.com",
        "localhost:80/evil.com",
        "localhost/x",
        "localhost?x",
        "localhost#x",
        "local host",
        "localhost:",
        "localhost:99999",
        "localhost:8000:1",
        "localhost:-1",
        "localhost:+80",
        "localhost:0x50",
        "%6cocalhost",
        "[::1",
        "[::1]x",
        "[::1]:",
        "[::1]@evil.com",
        "[fe80::1%25eth0]",
        "[evil.com]",
        "local\thost",
        "localhost\\evil.com",
    ],
)
def test_malformed_host_gets_400_even_when_any_host_is_allowed(host: str) -> None:
    for hosts in (["localhost", "127.0.0.1", "[::1]"], ["*"]):
        app, calls = make(Settings(secret_key=SECRET, allowed_hosts=hosts))
        with app.test_client() as client:
            response = client.get("/reset", headers={"Host": host})
        assert response.status_code == 400, (hosts, host)
        assert calls == []


def test_links_carry_the_normalised_host() -> None:
    app, _ = make()
    with app.test_client() as client:
        link = client.get("/reset", headers={"Host": "LocalHost.:8000"}).json()["link"]
    assert link == "http://localhost:8000/reset"


def test_forwarded_host_is_parsed_as_strictly_as_host() -> None:
    app = App(Settings(secret_key=SECRET, allowed_hosts=["example.com"]))
    app.install(Security(SecurityConfig(trusted_proxies=["10.0.0.0/8"])))

    @app.get("/where")
    async def where(request: Request) -> dict[str, str]:
        return {"link": request.url_for("where")}

    with app.test_client(client_address=("10.0.0.2", 5000)) as client:
        forged = {"Host": "example.com", "X-Forwarded-Host": "example.com:443@evil.com"}
        assert client.get("/where", headers=forged).status_code == 400
        good = {"Host": "internal", "X-Forwarded-Host": "Example.com"}
        assert client.get("/where", headers=good).json() == {"link": "http://example.com/where"}
