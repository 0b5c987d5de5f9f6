"""The access log: one line per request on ``transom.access``, its fields, the off switch."""

from __future__ import annotations

import logging
import re

import pytest
from pydantic import ValidationError

from transom import App, HTTPException
from transom._types import ASGIApp, Receive, Scope, Send
from transom.settings import Settings

ACCESS = "transom.access"


def make_app(**settings: object) -> App:
    app = App(Settings(**settings))  # type: ignore[arg-type]

    @app.get("/hello")
    def hello() -> str:
        return "Hello, World!"

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("boom")

    @app.get("/teapot")
    def teapot() -> None:
        raise HTTPException(418)

    return app


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == ACCESS]


def test_each_request_writes_one_line(caplog: pytest.LogCaptureFixture) -> None:
    app = make_app()
    with app.test_client() as client, caplog.at_level(logging.INFO, ACCESS):
        client.get("/hello?token=secret")
        client.get("/teapot")
        client.post("/hello")
        client.get("/nowhere")
    logged = lines(caplog)
    assert len(logged) == 4
    pattern = r'127\.0\.0\.1 - "GET /hello HTTP/1\.1" 200 13 \d+\.\dms'
    assert re.fullmatch(pattern, logged[0]), logged[0]
    assert "secret" not in logged[0]  # the query string is not in the default format
    assert '"GET /teapot HTTP/1.1" 418 ' in logged[1]
    assert '"POST /hello HTTP/1.1" 405 ' in logged[2]
    assert '"GET /nowhere HTTP/1.1" 404 ' in logged[3]
    assert all(r.levelno == logging.INFO for r in caplog.records if r.name == ACCESS)


def test_the_format_picks_the_fields(caplog: pytest.LogCaptureFixture) -> None:
    app = make_app(
        access_log_format="%(method)s %(path)s%(query)s %(status)s rid=%(request_id)s "
        "ua=%(user_agent)s ref=%(referer)s t=%(time)s"
    )
    with app.test_client() as client, caplog.at_level(logging.INFO, ACCESS):
        hello = client.get("/hello?a=1", headers={"User-Agent": "probe/1", "X-Request-ID": "abc-1"})
        client.get("/boom")
    first, second = lines(caplog)
    # The request's id, as returned: a client's own counts only from a trusted proxy.
    rid_hello = hello.headers["x-request-id"]
    assert first.startswith(f"GET /hello?a=1 200 rid={rid_hello} ua=probe/1 ref=- t=")
    assert re.search(r"t=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$", first), first
    # A 500 carries the request id its error page and error log show.
    rid = re.search(r"rid=(\S+)", second)
    assert second.startswith("GET /boom 500 ")
    assert rid is not None
    assert rid.group(1) != "-"


def test_what_a_middleware_answers_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    def refuse(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b"later"})

        return middleware

    app = make_app()
    app.add_middleware(refuse)
    with app.test_client() as client, caplog.at_level(logging.INFO, ACCESS):
        assert client.get("/hello").status_code == 503
    assert '"GET /hello HTTP/1.1" 503 5 ' in lines(caplog)[0]


def test_request_text_cannot_forge_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    app = make_app(access_log_format="%(path)s %(user_agent)s")
    with app.test_client() as client, caplog.at_level(logging.INFO, ACCESS):
        client.get("/hello", headers={"User-Agent": "a\tb\x7f"})
    assert lines(caplog) == ["/hello a\\x09b\\x7f"]


def test_off_switch(caplog: pytest.LogCaptureFixture) -> None:
    app = make_app(access_log=False)
    with app.test_client() as client, caplog.at_level(logging.INFO, ACCESS):
        assert client.get("/hello").status_code == 200
    assert lines(caplog) == []


def test_a_bad_format_is_refused_at_configuration() -> None:
    with pytest.raises(ValidationError, match="unknown access log field 'stauts'"):
        Settings(access_log_format="%(stauts)s")
    with pytest.raises(ValidationError, match="not a usable access log format"):
        Settings(access_log_format="%(status)d %(duration_ms)")
