"""CSRF: tokens in header and form, masking, rotation, Origin/Referer checks, exemptions."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from transom import Request
from transom.responses import JSONResponse
from transom.security import CSRFConfig, CSRFError, SessionDataDep, csrf_input
from transom.security.csrf import mask, unmask

from .conftest import AppFactory, fetch_token

UNSAFE = ["POST", "PUT", "PATCH", "DELETE"]
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def detail(response: Any) -> str:
    return str(response.json()["detail"])


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_safe_methods_are_not_checked(make_app: AppFactory, method: str) -> None:
    with make_app().test_client() as client:
        assert client.request(method, "/token").status_code in (200, 204)


@pytest.mark.parametrize("method", UNSAFE)
def test_unsafe_methods_without_token_are_refused(make_app: AppFactory, method: str) -> None:
    with make_app().test_client() as client:
        fetch_token(client)
        response = client.request(method, "/submit")
    assert response.status_code == 403
    assert "CSRF verification failed" in detail(response)
    assert "missing" in detail(response)


@pytest.mark.parametrize("method", UNSAFE)
def test_unsafe_methods_with_header_token_pass(make_app: AppFactory, method: str) -> None:
    with make_app().test_client() as client:
        token = fetch_token(client)
        response = client.request(method, "/submit", headers={"X-CSRF-Token": token})
    assert response.status_code == 200


def test_no_session_means_no_secret(make_app: AppFactory) -> None:
    with make_app().test_client() as client:
        token = fetch_token(client)
        client.cookies.clear()
        client.cookies.set("analytics", "1")  # a browser: it sends some cookie, not the session
        response = client.post("/submit", headers={"X-CSRF-Token": token})
    assert response.status_code == 403
    assert "no CSRF secret" in detail(response)


def test_form_field_token(make_app: AppFactory) -> None:
    with make_app().test_client() as client:
        token = fetch_token(client)
        assert client.post("/submit", data={"csrf_token": token}).status_code == 200
        assert client.post("/submit", data={"csrf_token": "x" * 86}).status_code == 403
        assert client.post("/submit", data={"other": "1"}).status_code == 403


def test_multipart_form_token(make_app: AppFactory) -> None:
    with make_app().test_client() as client:
        token = fetch_token(client)
        files = {"upload": ("a.txt", b"hello", "text/plain")}
        response = client.post("/submit", data={"csrf_token": token}, files=files)
    assert response.status_code == 200


def test_token_in_json_body_is_not_read(make_app: AppFactory) -> None:
    with make_app().test_client() as client:
        token = fetch_token(client)
        response = client.post("/submit", json={"csrf_token": token})
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("short", "malformed"),
        ("!" * 86, "malformed"),
        ("A" * 87, "malformed"),
        ("A" * 86, "incorrect"),
    ],
)
def test_malformed_and_wrong_tokens(make_app: AppFactory, token: str, reason: str) -> None:
    with make_app().test_client() as client:
        fetch_token(client)
        for response in (
            client.post("/submit", headers={"X-CSRF-Token": token}),
            client.post("/submit", data={"csrf_token": token}),
        ):
            assert response.status_code == 403
            assert reason in detail(response)


def test_token_of_another_session_is_wrong(make_app: AppFactory) -> None:
    app = make_app()
    with app.test_client() as alice, app.test_client() as mallory:
        fetch_token(alice)
        stolen = fetch_token(mallory)
        response = alice.post("/submit", headers={"X-CSRF-Token": stolen})
    assert response.status_code == 403
    assert "incorrect" in detail(response)


def test_unmasked_secret_is_not_a_token(make_app: AppFactory) -> None:
    with make_app().test_client() as client:
        token = fetch_token(client)
        response = client.post("/submit", headers={"X-CSRF-Token": unmask(token)})
    assert response.status_code == 403


def test_tokens_are_masked_per_response(make_app: AppFactory) -> None:
    with make_app().test_client() as client:
        first, second = fetch_token(client), fetch_token(client)
        assert first != second
        assert unmask(first) == unmask(second)
        for token in (first, second):
            assert client.post("/submit", headers={"X-CSRF-Token": token}).status_code == 200


def test_mask_round_trip() -> None:
    secret = "s" * 43
    token = mask(secret)
    assert len(token) == 86
    assert secret not in token
    assert unmask(token) == secret


def test_login_rotates_the_token(make_app: AppFactory) -> None:
    with make_app().test_client() as client:
        before = fetch_token(client)
        assert client.post("/login", headers={"X-CSRF-Token": before}).status_code == 200
        response = client.post("/submit", headers={"X-CSRF-Token": before})
        assert response.status_code == 403
        assert "incorrect" in detail(response)
        after = fetch_token(client)
        assert client.post("/submit", headers={"X-CSRF-Token": after}).status_code == 200


def test_exempt_route(make_app: AppFactory) -> None:
    with make_app().test_client() as client:
        assert client.post("/exempt").status_code == 200


def test_bearer_authorization_is_exempt_but_basic_is_not(make_app: AppFactory) -> None:
    with make_app().test_client() as client:
        fetch_token(client)
        bearer = client.post("/submit", headers={"Authorization": "Bearer abc.def"})
        assert bearer.status_code == 200
        basic = client.post("/submit", headers={"Authorization": "Basic dXNlcjpwdw=="})
        assert basic.status_code == 403


def test_bearer_header_does_not_exempt_a_handler_that_uses_the_cookie_session(
    make_app: AppFactory,
) -> None:
    app = make_app()

    @app.post("/cart")
    async def add_to_cart(request: Request, session: SessionDataDep) -> dict[str, Any]:
        session["cart"] = "attacker's item"
        return {"ok": True}

    with app.test_client() as client:
        token = fetch_token(client)
        client.get("/set", params={"key": "cart", "value": "mine"})
        # A forged request with some bearer-looking header: the token is no credential of the
        # user, the session cookie is, so the CSRF check applies after all.
        forged = client.post("/cart", headers={"Authorization": "Bearer garbage"})
        assert forged.status_code == 403
        assert "CSRF verification failed" in detail(forged)
        assert client.get("/session").json()["cart"] == "mine"
        # With a valid CSRF token the same request passes.
        ok = client.post(
            "/cart", headers={"Authorization": "Bearer garbage", "X-CSRF-Token": token}
        )
        assert ok.status_code == 200
        # No session cookie at all: nothing ambient, the exemption stands.
        client.cookies.clear()
        fresh = client.post("/cart", headers={"Authorization": "Bearer garbage"})
        assert fresh.status_code == 200


def test_bearer_exemption_can_be_turned_off(make_app: AppFactory) -> None:
    with make_app(csrf=CSRFConfig(exempt_bearer=False)).test_client() as client:
        fetch_token(client)  # the browser has a session
        response = client.post("/submit", headers={"Authorization": "Bearer abc"})
    assert response.status_code == 403


# -- Origin ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "reason"),
    [
        ("https://evil.example", "does not match"),
        ("http://testserver.evil.example", "does not match"),
        ("null", "'null'"),
        ("not a url", "malformed"),
        ("http://", "malformed"),
        ("http://testserver:99999", "malformed"),
        ("ftp://testserver", "malformed"),
        ("https://testserver", "does not match"),  # wrong scheme for an http request
        ("http://testserver:8080", "does not match"),  # wrong port
    ],
)
def test_bad_origin_is_refused_even_with_a_good_token(
    make_app: AppFactory, origin: str, reason: str
) -> None:
    with make_app().test_client() as client:
        token = fetch_token(client)
        response = client.post("/submit", headers={"X-CSRF-Token": token, "Origin": origin})
    assert response.status_code == 403
    assert reason in detail(response)


@pytest.mark.parametrize(
    "origin", ["http://testserver", "http://TESTSERVER", "http://testserver:80"]
)
def test_same_origin_passes(make_app: AppFactory, origin: str) -> None:
    with make_app().test_client() as client:
        token = fetch_token(client)
        response = client.post("/submit", headers={"X-CSRF-Token": token, "Origin": origin})
    assert response.status_code == 200


def test_trusted_origins(make_app: AppFactory) -> None:
    config = CSRFConfig(trusted_origins=["https://app.example.com", "https://*.example.org"])
    with make_app(csrf=config).test_client(base_url="https://testserver") as client:
        token = fetch_token(client)

        def post(origin: str) -> int:
            headers = {"X-CSRF-Token": token, "Origin": origin}
            return client.post("/submit", headers=headers).status_code

        assert post("https://app.example.com") == 200
        assert post("https://a.b.example.org") == 200
        assert post("http://app.example.com") == 403  # scheme matters
        assert post("https://example.org.evil.com") == 403


def test_trusted_origin_must_be_an_origin() -> None:
    with pytest.raises(ValueError, match="https://host"):
        CSRFConfig(trusted_origins=["example.com"])


# -- Referer (HTTPS without Origin) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("referer", "reason"),
    [
        (None, "without an Origin or a Referer"),
        ("not a url", "malformed"),
        ("https://[", "malformed"),
        ("", "without an Origin or a Referer"),
        ("http://testserver/form", "insecure"),
        ("https://evil.example/form", "does not match"),
        ("https://testserver.evil.example/form", "does not match"),
    ],
)
def test_strict_referer_on_https(make_app: AppFactory, referer: str | None, reason: str) -> None:
    with make_app().test_client(base_url="https://testserver") as client:
        token = fetch_token(client)
        headers = {"X-CSRF-Token": token}
        if referer is not None:
            headers["Referer"] = referer
        response = client.post("/submit", headers=headers)
    assert response.status_code == 403
    assert reason in detail(response)


def test_referer_with_port_must_match(make_app: AppFactory) -> None:
    with make_app().test_client(base_url="https://testserver:8443") as client:
        token = fetch_token(client)

        def post(referer: str) -> int:
            headers = {"X-CSRF-Token": token, "Referer": referer}
            return client.post("/submit", headers=headers).status_code

        assert post("https://testserver:8443/form") == 200
        assert post("https://testserver/form") == 403


def test_same_site_referer_on_https_passes(make_app: AppFactory) -> None:
    with make_app().test_client(base_url="https://testserver") as client:
        token = fetch_token(client)
        headers = {"X-CSRF-Token": token, "Referer": "https://testserver/form?x=1"}
        assert client.post("/submit", headers=headers).status_code == 200
        trusted = make_app(csrf=CSRFConfig(trusted_origins=["https://sso.example.com"]))
    with trusted.test_client(base_url="https://testserver") as client:
        token = fetch_token(client)
        headers = {"X-CSRF-Token": token, "Referer": "https://sso.example.com/back"}
        assert client.post("/submit", headers=headers).status_code == 200


def test_plain_http_without_origin_or_referer_needs_only_the_token(
    make_app: AppFactory,
) -> None:
    with make_app().test_client() as client:
        token = fetch_token(client)
        assert client.post("/submit", headers={"X-CSRF-Token": token}).status_code == 200


# -- failure page, logging, configuration ---------------------------------------------------


def test_failure_page_is_html_for_browsers(make_app: AppFactory) -> None:
    with make_app().test_client() as client:
        fetch_token(client)
        response = client.post("/submit", headers={"Accept": "text/html"})
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "CSRF verification failed" in response.text
    assert "missing" in response.text


def test_failure_is_logged(make_app: AppFactory, caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="transom.security"),
        make_app().test_client() as client,
    ):
        fetch_token(client)
        client.post("/submit")
        client.cookies.clear()
        client.post("/submit", headers={"Sec-Fetch-Site": "cross-site"})
    assert "CSRF verification failed for POST /submit: the CSRF token is missing" in caplog.text
    assert "CSRF verification failed for POST /submit: the browser marked" in caplog.text


def test_custom_failure_handler(make_app: AppFactory) -> None:
    app = make_app()

    @app.exception_handler(CSRFError)
    def on_csrf(request: Request, exc: CSRFError) -> JSONResponse:
        return JSONResponse({"error": "csrf", "why": exc.reason}, 403)

    with app.test_client() as client:
        fetch_token(client)
        response = client.post("/submit")
    assert response.json()["error"] == "csrf"


def test_handler_does_not_run_when_refused(make_app: AppFactory) -> None:
    app = make_app()
    calls: list[int] = []

    @app.post("/side-effect")
    async def side_effect() -> None:
        calls.append(1)

    with app.test_client() as client:
        fetch_token(client)
        assert client.post("/side-effect").status_code == 403
    assert calls == []


def test_csrf_without_sessions_uses_its_own_cookie(make_app: AppFactory) -> None:
    with make_app(sessions=None).test_client() as client:
        response = client.get("/token")
        [cookie] = response.headers.get_list("set-cookie")
        assert cookie.startswith("csrftoken=")
        assert "HttpOnly" in cookie
        token = response.json()["token"]
        assert client.post("/submit", headers={"X-CSRF-Token": token}).status_code == 200
        assert client.post("/submit").status_code == 403
    with make_app(sessions=None).test_client(base_url="https://testserver") as client:
        [cookie] = client.get("/token").headers.get_list("set-cookie")
        assert cookie.startswith("__Host-csrftoken=")
        assert "Secure" in cookie


def test_csrf_can_be_disabled_explicitly(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="transom.security"):
        app = make_app(csrf=None)
        # Not when the app is made (every CLI command imports it): once, when it is built.
        assert "CSRF protection is disabled" not in caplog.text
        app.build()
        app.build()
    [record] = [r for r in caplog.records if "CSRF protection" in r.getMessage()]
    assert record.levelno == logging.WARNING  # sessions are on: forms can be forged
    assert "CSRF protection is disabled" in record.getMessage()
    with app.test_client() as client:
        assert client.post("/submit").status_code == 200


def test_csrf_off_without_sessions_is_only_info(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # A token-only API: no cookie carries a credential, so no forged request can use one.
    with caplog.at_level(logging.INFO, logger="transom.security"):
        make_app(csrf=None, sessions=None).build()
    [record] = [r for r in caplog.records if "CSRF protection" in r.getMessage()]
    assert record.levelno == logging.INFO


def test_csrf_input_escapes() -> None:
    assert csrf_input('a"b') == '<input type="hidden" name="csrf_token" value="a&quot;b">'


def test_malformed_secret_cookie_is_replaced(make_app: AppFactory) -> None:
    app = make_app(sessions=None)
    with app.test_client() as client:
        bad = {"Cookie": "csrftoken=not-a-secret"}
        response = client.post("/submit", headers={**bad, "X-CSRF-Token": "A" * 86})
        assert response.status_code == 403
        assert "no CSRF secret" in detail(response)
        response = client.get("/token", headers=bad)
        [cookie] = response.headers.get_list("set-cookie")
        secret = cookie.split(";")[0].split("=", 1)[1]
        assert secret != "not-a-secret"
        assert unmask(response.json()["token"]) == secret


# -- requests without ambient credentials (curl, mobile apps, server-to-server) -------------


@pytest.mark.parametrize("method", UNSAFE)
def test_a_cookieless_client_needs_no_token(make_app: AppFactory, method: str) -> None:
    # Adding Security(app) must not break a JSON API for non-browser clients: with no cookie
    # and no Basic-style header the request carries no credential a page could abuse.
    with make_app().test_client() as client:
        assert client.request(method, "/submit").status_code == 200
        same = client.request(method, "/submit", headers={"Origin": "http://testserver"})
        assert same.status_code == 200
        assert (
            client.request(method, "/submit", headers={"Sec-Fetch-Site": "same-origin"})
        ).status_code == 200
        assert (
            client.request(method, "/submit", headers={"Sec-Fetch-Site": "none"}).status_code == 200
        )
    assert client.cookies.get("session") is None


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Sec-Fetch-Site": "cross-site"}, "cross-site (Sec-Fetch-Site)"),
        ({"Sec-Fetch-Site": "same-site"}, "same-site (Sec-Fetch-Site)"),
        (
            {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
            "cross-site (Sec-Fetch-Site)",
        ),
        ({"Origin": "https://evil.example"}, "does not match"),
        ({"Origin": "null"}, "'null'"),
        ({"Authorization": "Basic dXNlcjpwdw=="}, "no CSRF secret"),
        ({"Cookie": "anything=1"}, "no CSRF secret"),
    ],
)
def test_a_cookieless_request_from_another_site_is_refused(
    make_app: AppFactory, headers: dict[str, str], reason: str
) -> None:
    app = make_app()
    with app.test_client() as client:
        response = client.post("/submit", headers=headers)
    assert response.status_code == 403
    assert reason in detail(response)


def test_login_csrf_from_another_site_is_refused_without_cookies(make_app: AppFactory) -> None:
    # A page on evil.example posting the attacker's credentials to our login form: the victim's
    # browser has no cookie for us yet, but it says where the request comes from.
    with make_app().test_client() as client:
        forged = client.post(
            "/login", headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
        )
        assert forged.status_code == 403
        assert client.cookies.get("session") is None
        assert client.post("/login", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200


def test_trusted_origins_may_post_cross_site_without_cookies(make_app: AppFactory) -> None:
    app = make_app(csrf=CSRFConfig(trusted_origins=["https://app.example.com"]))
    with app.test_client() as client:
        response = client.post(
            "/submit",
            headers={"Origin": "https://app.example.com", "Sec-Fetch-Site": "cross-site"},
        )
    assert response.status_code == 200
