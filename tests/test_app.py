"""The App: handlers, hooks, error handling, hosts, lifespan, middleware, settings checks."""

from __future__ import annotations

import ast
import logging
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import transom
from transom import App, HTMLResponse, HTTPException, JSONResponse, Request, Response
from transom._types import ASGIApp, Message, Receive, Scope, Send
from transom.exceptions import ImproperlyConfigured
from transom.settings import Settings
from transom.testing import TestClient


def make_app(**settings: Any) -> App:
    return App(Settings(**settings))


def test_hello_world() -> None:
    app = App()

    @app.get("/")
    def hello() -> str:
        return "Hello, World!"

    with app.test_client() as client:
        response = client.get("/")
    assert response.status_code == 200
    assert response.text == "Hello, World!"
    assert response.headers["content-type"] == "text/html; charset=utf-8"


def test_sync_handlers_run_off_the_event_loop_thread() -> None:
    app = make_app()
    loop_threads: list[str] = []

    @app.get("/sync")
    def sync_handler() -> dict[str, str]:
        return {"thread": threading.current_thread().name}

    @app.get("/async")
    async def async_handler() -> dict[str, str]:
        loop_threads.append(threading.current_thread().name)
        return {"thread": threading.current_thread().name}

    with app.test_client() as client:
        sync_thread = client.get("/sync").json()["thread"]
        async_thread = client.get("/async").json()["thread"]
    assert sync_thread.startswith("transom")
    assert async_thread == loop_threads[0]
    assert sync_thread != async_thread


def test_default_security_headers_and_override() -> None:
    app = make_app()
    app.default_headers["X-Frame-Options"] = "SAMEORIGIN"
    del app.default_headers["Referrer-Policy"]

    @app.get("/")
    def index() -> str:
        return "x"

    with app.test_client() as client:
        headers = client.get("/").headers
        missing = client.get("/missing").headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "SAMEORIGIN"
    assert "referrer-policy" not in headers
    assert headers["cross-origin-opener-policy"] == "same-origin"
    # Error responses carry them too.
    assert missing["x-content-type-options"] == "nosniff"


def test_before_and_after_request_hooks() -> None:
    app = make_app()
    order: list[str] = []

    @app.before_request
    async def before(request: Request) -> Response | None:
        order.append("before")
        if request.headers.get("x-block"):
            return JSONResponse({"blocked": True}, 403)
        return None

    @app.after_request
    def after(request: Request, response: Response) -> Response:
        order.append("after")
        response.headers["X-After"] = "1"
        return response

    @app.get("/")
    def index() -> str:
        order.append("handler")
        return "ok"

    with app.test_client() as client:
        assert client.get("/").headers["x-after"] == "1"
        blocked = client.get("/", headers={"X-Block": "1"})
    assert blocked.status_code == 403
    assert blocked.headers["x-after"] == "1"
    assert order == ["before", "handler", "after", "before", "after"]


class PaymentError(Exception):
    pass


class CardDeclined(PaymentError):
    pass


def test_exception_handlers_by_class_and_status() -> None:
    app = make_app()

    @app.exception_handler(PaymentError)
    async def payment(request: Request, exc: PaymentError) -> Response:
        return JSONResponse({"payment": type(exc).__name__}, 402)

    @app.exception_handler(404)
    def not_found(request: Request, exc: HTTPException) -> Response:
        return HTMLResponse("<h1>Lost?</h1>", 404)

    @app.get("/pay")
    def pay() -> str:
        raise CardDeclined()

    @app.get("/gone")
    def gone() -> str:
        raise HTTPException(404, "gone")

    with app.test_client() as client:
        assert client.get("/pay").json() == {"payment": "CardDeclined"}
        assert client.get("/pay").status_code == 402
        assert client.get("/gone").text == "<h1>Lost?</h1>"
        assert client.get("/no-route").text == "<h1>Lost?</h1>"


def test_response_headers_hook_on_every_answer_without_middleware() -> None:
    app = make_app()
    seen: list[int] = []
    extra = [(b"x-hooked", b"1")]

    def hook(request: Request, response: Response, headers: list[tuple[bytes, bytes]]) -> Any:
        seen.append(response.status_code)
        if request.url.path == "/async":

            async def later() -> list[tuple[bytes, bytes]]:
                return [*headers, (b"x-hooked", b"async")]

            return later()
        return [*headers, *extra]

    app.response_headers_hook(hook)

    @app.get("/")
    def index() -> Response:
        return Response(b"ok", headers={"X-Hooked": "own", "Vary": "Accept"})

    @app.get("/async")
    def other() -> str:
        return "ok"

    with app.test_client() as client:
        own = client.get("/")
        assert own.headers.get_list("x-hooked") == ["own"]  # the response's own header wins
        assert own.headers["x-frame-options"] == "DENY"  # the default block is passed on
        assert client.get("/async").headers["x-hooked"] == "async"
        assert client.get("/missing").headers["x-hooked"] == "1"  # 404s too
    assert seen == [200, 200, 404]
    assert app._middleware == []  # no ASGI middleware was needed


def test_response_headers_hook_failure_is_answered_and_hooked_again() -> None:
    app = make_app()
    calls: list[int] = []

    def hook(request: Request, response: Response, headers: list[tuple[bytes, bytes]]) -> Any:
        calls.append(response.status_code)
        if response.status_code == 200:
            raise HTTPException(503, "store down", headers={"Retry-After": "5"})
        return [*headers, (b"x-hooked", b"error")]

    app.response_headers_hook(hook)

    @app.get("/")
    def index() -> str:
        return "ok"

    with app.test_client() as client:
        response = client.get("/")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.headers["x-hooked"] == "error"
    assert calls == [200, 503]


def test_set_cookie_and_vary_add_to_the_responses_own() -> None:
    app = make_app()
    app.response_headers_hook(
        lambda request, response, headers: [
            *headers,
            (b"set-cookie", b"b=2"),
            (b"vary", b"Cookie"),
        ]
    )

    @app.get("/")
    def index() -> Response:
        response = Response(b"ok", headers={"Vary": "Accept"})
        response.set_cookie("a", "1")
        return response

    with app.test_client() as client:
        response = client.get("/")
    assert sorted(response.headers.get_list("vary")) == ["Accept", "Cookie"]
    assert len(response.headers.get_list("set-cookie")) == 2


def test_http_exception_detail_and_headers() -> None:
    app = make_app()

    @app.get("/teapot")
    def teapot() -> str:
        raise HTTPException(418, {"reason": "short and stout"}, headers={"X-Tea": "earl grey"})

    with app.test_client() as client:
        response = client.get("/teapot")
        html = client.get("/teapot", headers={"Accept": "text/html"})
    assert response.status_code == 418
    assert response.json() == {"detail": {"reason": "short and stout"}}
    assert response.headers["x-tea"] == "earl grey"
    assert html.headers["content-type"].startswith("text/html")
    assert "418 I&#x27;m a Teapot" in html.text or "418" in html.text


def test_500_hides_internals_and_logs_with_a_request_id(caplog: pytest.LogCaptureFixture) -> None:
    app = make_app()

    @app.get("/boom")
    def boom() -> str:
        secret = "db-password-123"
        raise RuntimeError(f"connection failed with {secret}")

    with app.test_client() as client, caplog.at_level(logging.ERROR, "transom.error"):
        response = client.get("/boom")
        html = client.get("/boom", headers={"Accept": "text/html", "X-Request-ID": "abc-123"})
        bad_id = client.get("/boom", headers={"X-Request-ID": "<script>"})
    assert response.status_code == 500
    body = response.json()
    assert body["detail"] == "Internal Server Error"
    rid = body["request_id"]
    assert response.headers["x-request-id"] == rid
    assert "db-password" not in response.text
    assert "RuntimeError" not in response.text
    assert html.status_code == 500
    # The page shows the request's id; a client's own X-Request-ID counts only from a trusted
    # proxy (tests/test_logs.py).
    assert html.headers["x-request-id"] in html.text
    assert "abc-123" not in html.text
    assert "db-password" not in html.text
    assert bad_id.json()["request_id"] != "<script>"
    assert any(rid in record.getMessage() and record.exc_info for record in caplog.records)


def test_debug_mode_shows_the_traceback_escaped() -> None:
    app = make_app(debug=True)

    @app.get("/boom")
    def boom() -> str:
        payload = "<script>alert(1)</script>"
        raise ValueError(payload)

    with app.test_client() as client:
        html = client.get("/boom", headers={"Accept": "text/html"})
        api = client.get("/boom")
    assert html.status_code == 500
    assert "ValueError" in html.text
    assert "def boom" in html.text
    assert "<script>alert(1)</script>" not in html.text
    assert "&lt;script&gt;" in html.text
    assert api.json()["exception"] == "ValueError: <script>alert(1)</script>"


def test_error_handler_that_fails_gives_a_plain_500() -> None:
    app = make_app()

    @app.exception_handler(KeyError)
    def broken(request: Request, exc: KeyError) -> Response:
        raise RuntimeError("handler bug")

    @app.get("/")
    def index() -> str:
        raise KeyError("x")

    with app.test_client() as client:
        response = client.get("/")
    assert response.status_code == 500
    assert response.json()["detail"] == "Internal Server Error"


@pytest.mark.parametrize(
    ("allowed", "host", "status"),
    [
        (["localhost"], "localhost", 200),
        (["localhost"], "localhost:8000", 200),
        (["localhost"], "LOCALHOST.", 200),
        (["localhost"], "evil.example", 400),
        (["localhost"], "localhost.evil.example", 400),
        ([".example.com"], "example.com", 200),
        ([".example.com"], "api.example.com:443", 200),
        ([".example.com"], "badexample.com", 400),
        (["[::1]"], "[::1]:8000", 200),
        (["*"], "anything.example", 200),
    ],
)
def test_host_header_validation(allowed: list[str], host: str, status: int) -> None:
    app = make_app(allowed_hosts=allowed)
    reached: list[bool] = []

    @app.get("/")
    def index(request: Request) -> str:
        reached.append(True)
        return request.url_for("index")

    with app.test_client() as client:
        response = client.get("/", headers={"Host": host})
    assert response.status_code == status
    assert bool(reached) == (status == 200)
    if status == 400:
        assert response.json() == {"detail": "Invalid Host header"}


def test_default_allowed_hosts_reject_others_in_production() -> None:
    app = App(Settings(debug=False))

    @app.get("/")
    def index() -> str:
        return "ok"

    with app.test_client() as client:
        assert client.get("/", headers={"Host": "127.0.0.1:8000"}).status_code == 200
        assert client.get("/", headers={"Host": "attacker.example"}).status_code == 400


def test_an_app_that_signs_nothing_needs_no_secret_key() -> None:
    app = App(Settings(secret_key=None, debug=False))

    @app.get("/")
    def index() -> str:
        return "Hello, World!"

    with app.test_client() as client:
        assert client.get("/").text == "Hello, World!"


def test_missing_secret_key_fails_at_startup_when_something_signs() -> None:
    from transom.security import Security

    app = App(Settings(secret_key=None, debug=False))
    Security(app)
    with pytest.raises(ImproperlyConfigured, match="TRANSOM_SECRET_KEY is not set, and transom"):
        app.test_client().__enter__()
    # Debug mode may run without one (a random per-process key, logged).
    debug = App(Settings(secret_key=None, debug=True))
    Security(debug)
    with debug.test_client() as client:
        assert client.get("/nothing").status_code == 404


class HeaderMiddleware:
    """A plain ASGI middleware, as any third-party one would be written."""

    def __init__(self, app: ASGIApp, name: str, value: str) -> None:
        self.app = app
        self.header = (name.lower().encode(), value.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"], self.header]
            await send(message)

        await self.app(scope, receive, wrapped)


def test_asgi_middleware_wraps_the_app_last_added_outermost() -> None:
    app = make_app()
    app.add_middleware(HeaderMiddleware, name="X-Order", value="inner")
    app.add_middleware(HeaderMiddleware, name="X-Order", value="outer")

    @app.get("/")
    def index() -> str:
        return "ok"

    with app.test_client() as client:
        response = client.get("/")
    assert response.headers.get_list("x-order") == ["inner", "outer"]
    with pytest.raises(RuntimeError, match="before the app starts"):
        app.add_middleware(HeaderMiddleware, name="x", value="y")


def test_websocket_to_a_path_without_websocket_route_is_refused() -> None:
    import asyncio

    app = make_app()
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "websocket", "path": "/", "headers": [(b"host", b"localhost")]}
    asyncio.run(app(scope, receive, send))
    # No denial extension in the scope: closed before accept (the server answers 403).
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": "Not Found"}]


def test_handler_returning_an_unsupported_type_is_a_500() -> None:
    app = make_app()

    @app.get("/")
    def index() -> object:
        return object()

    with app.test_client() as client:
        assert client.get("/").status_code == 500


def test_content_length_with_transfer_encoding_gets_400_and_closes() -> None:
    app = App()
    calls: list[bytes] = []

    @app.post("/echo")
    async def echo(request: Request) -> None:
        calls.append(await request.body())

    with app.test_client() as client:
        response = client.post(
            "/echo",
            content=b"0\r\n\r\n",
            headers={"Content-Length": "5", "Transfer-Encoding": "chunked"},
        )
        assert response.status_code == 400
        assert response.headers["connection"] == "close"
        assert "both Content-Length and Transfer-Encoding" in response.json()["detail"]
        assert client.post("/echo", content=b"ok").status_code == 204
    assert calls == [b"ok"]


def test_importing_the_app_loads_neither_the_cli_nor_the_test_client() -> None:
    # The core is usable without click and httpx: app.py reaches the test client only
    # through `test_client_class`, and serving through transom.serving (no click).
    code = (
        "import sys, transom, transom.serving\n"
        "app = transom.App()\n"
        "loaded = [m for m in ('transom.cli', 'transom.testing', 'click', 'httpx') "
        "if m in sys.modules]\n"
        "print(loaded)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"
    # Nor does it import them anywhere (a method's import would do so when called); the
    # type checker alone sees the test client's classes.
    tree = ast.parse((Path(transom.__file__).parent / "app.py").read_text())
    type_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING"
        for node in ast.walk(block)
    }
    imported = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and id(node) not in type_only
    }
    imported |= {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert not {"cli", "testing", "transom.cli", "transom.testing"} & imported


class _CustomClient(TestClient):
    pass


def test_test_client_class_names_the_client_the_app_makes() -> None:
    class CustomApp(App):
        test_client_class = f"{__name__}:_CustomClient"

    app = CustomApp()
    app.get("/")(lambda: "hi")
    with app.test_client() as client:
        assert isinstance(client, _CustomClient)
        assert client.get("/").text == "hi"


def test_invalidate_makes_the_next_request_read_the_settings_again() -> None:
    app = make_app(max_body_size=10)

    @app.post("/echo")
    async def echo(request: Request) -> bytes:
        return await request.body()

    with app.test_client() as client:
        assert client.post("/echo", content=b"x" * 20).status_code == 413
        assert app.is_built
        app.settings.max_body_size = 100
        assert client.post("/echo", content=b"x" * 20).status_code == 413  # built: unchanged
        app.invalidate()
        assert not app.is_built
        assert client.post("/echo", content=b"x" * 20).content == b"x" * 20
        assert app.is_built


def test_started_follows_startup_and_shutdown() -> None:
    app = App()
    assert not app.started
    with app.test_client():
        assert app.started
    assert not app.started
