"""Request: headers, query, cookies, client, URL, body readers and the body limits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Annotated, Any

import pytest
from pydantic import BaseModel

from transom import App, Header, Query, Request
from transom._types import Message
from transom.exceptions import ClientDisconnect, HTTPException
from transom.requests import parse_cookie_header, parse_json
from transom.settings import Settings


def make_scope(
    method: str = "GET",
    path: str = "/",
    headers: Iterable[tuple[bytes, bytes]] = ((b"host", b"localhost"),),
    query: bytes = b"",
    **extra: Any,
) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": list(headers),
        "client": ("127.0.0.1", 1234),
        "server": ("localhost", 80),
    }
    scope.update(extra)
    return scope


def run_asgi(
    app: App, scope: dict[str, Any], incoming: list[Message]
) -> tuple[int, dict[str, str], bytes, int]:
    """Call ``app`` with ``incoming`` messages; return status, headers, body, receive calls."""
    calls = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal calls
        calls += 1
        if incoming:
            return incoming.pop(0)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = sent[0]
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], headers, body, calls


def chunks(*parts: bytes) -> list[Message]:
    return [
        {"type": "http.request", "body": p, "more_body": i < len(parts) - 1}
        for i, p in enumerate(parts)
    ]


def echo_app(settings: Settings | None = None) -> App:
    app = App(settings)

    @app.post("/body")
    async def body(request: Request) -> bytes:
        return await request.body()

    @app.post("/json")
    async def as_json(request: Request) -> dict[str, Any]:
        first = await request.json()
        second = await request.json()  # cached: the body is read once
        return {"value": first, "same": first is second}

    @app.post("/stream")
    async def stream(request: Request) -> dict[str, Any]:
        sizes = [len(chunk) async for chunk in request.stream()]
        return {"sizes": sizes}

    return app


# -- headers, query, cookies -----------------------------------------------------------------


def test_headers_are_case_insensitive_and_keep_repeats() -> None:
    app = App()

    @app.get("/")
    async def handler(request: Request) -> dict[str, Any]:
        return {
            "ua": request.headers["User-Agent"],
            "multi": request.headers.getlist("x-multi"),
            "first": request.headers.get("X-MULTI"),
            "missing": request.headers.get("x-missing", "dflt"),
            "has": "x-multi" in request.headers,
            "ctype": request.content_type,
        }

    with app.test_client() as client:
        response = client.get(
            "/",
            headers=[
                ("User-Agent", "probe/1"),
                ("X-Multi", "a"),
                ("X-Multi", "b"),
                ("Content-Type", "Application/JSON; charset=utf-8"),
            ],
        )
    assert response.status_code == 200
    assert response.json() == {
        "ua": "probe/1",
        "multi": ["a", "b"],
        "first": "a",
        "missing": "dflt",
        "has": True,
        "ctype": "application/json",
    }


def test_header_param_converts_underscores() -> None:
    app = App()

    @app.get("/")
    async def handler(
        x_token: Annotated[str, Header()], x_n: Annotated[list[int], Header()]
    ) -> dict[str, Any]:
        return {"token": x_token, "n": x_n}

    with app.test_client() as client:
        ok = client.get("/", headers=[("X-Token", "t"), ("X-N", "1"), ("X-N", "2")])
        missing = client.get("/", headers={"X-N": "1"})
    assert ok.json() == {"token": "t", "n": [1, 2]}
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["header", "x-token"]


def test_query_multi_dict() -> None:
    app = App()

    @app.get("/")
    async def handler(request: Request) -> dict[str, Any]:
        q = request.query
        return {
            "a": q["a"],
            "all_a": q.getlist("a"),
            "blank": q["blank"],
            "utf8": q["utf8"],
            "plus": q["plus"],
            "missing": q.getlist("missing"),
            "keys": list(q),
            "items": q.multi_items(),
        }

    with app.test_client() as client:
        response = client.get("/?a=1&a=2&blank=&utf8=%C3%A9t%C3%A9&plus=a+b%2Bc")
    assert response.json() == {
        "a": "1",
        "all_a": ["1", "2"],
        "blank": "",
        "utf8": "été",
        "plus": "a b+c",
        "missing": [],
        "keys": ["a", "blank", "utf8", "plus"],
        "items": [["a", "1"], ["a", "2"], ["blank", ""], ["utf8", "été"], ["plus", "a b+c"]],
    }


def test_query_params_typed() -> None:
    app = App()

    @app.get("/")
    async def handler(
        tag: Annotated[list[str], Query()], page: Annotated[int, Query(ge=1)] = 1
    ) -> dict[str, Any]:
        return {"tag": tag, "page": page}

    with app.test_client() as client:
        ok = client.get("/?tag=x&tag=y&page=3")
        bad = client.get("/?tag=x&page=0")
    assert ok.json() == {"tag": ["x", "y"], "page": 3}
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "page"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("a=1; b=2", {"a": "1", "b": "2"}),
        ('q="quoted value"', {"q": "quoted value"}),
        ("enc=x%20y%3Bz", {"enc": "x y;z"}),
        ("dup=first; dup=second", {"dup": "first"}),
        ("flag; =nameless; ok=1", {"ok": "1"}),
        ("  spaced  =  v  ;", {"spaced": "v"}),
        ("eq=a=b", {"eq": "a=b"}),
        ("", {}),
    ],
)
def test_parse_cookie_header(header: str, expected: dict[str, str]) -> None:
    assert parse_cookie_header(header) == expected


def test_cookies_from_request() -> None:
    app = App()

    @app.get("/")
    async def handler(request: Request) -> dict[str, str]:
        return request.cookies

    with app.test_client() as client:
        one = client.get("/", headers={"Cookie": "sid=abc; theme=dark"})
        # HTTP/2 servers may pass each cookie in its own Cookie header.
        split = client.get("/", headers=[("Cookie", "sid=abc"), ("Cookie", "theme=dark")])
    assert one.json() == {"sid": "abc", "theme": "dark"}
    assert split.json() == {"sid": "abc", "theme": "dark"}


# -- client, url, host -----------------------------------------------------------------------


def test_client_url_host_and_scheme() -> None:
    app = App()

    @app.get("/items/{name}", name="item")
    async def handler(request: Request, name: str) -> dict[str, Any]:
        return {
            "client": request.client,
            "url": str(request.url),
            "base": str(request.base_url),
            "host": request.host,
            "hostname": request.url.hostname,
            "secure": request.is_secure,
            "method": request.method,
            "path": request.path,
            "for": request.url_for("item", name="x y"),
        }

    with app.test_client(client_address=("10.1.2.3", 4567)) as client:
        plain = client.get("/items/a?b=1&c=%20")
    assert plain.json() == {
        "client": ["10.1.2.3", 4567],
        "url": "http://testserver/items/a?b=1&c=%20",
        "base": "http://testserver/",
        "host": "testserver",
        "hostname": "testserver",
        "secure": False,
        "method": "GET",
        "path": "/items/a",
        "for": "http://testserver/items/x%20y",
    }
    with app.test_client(base_url="https://testserver:8443") as client:
        tls = client.get("/items/b")
    assert tls.json()["url"] == "https://testserver:8443/items/b"
    assert tls.json()["hostname"] == "testserver"
    assert tls.json()["secure"] is True


def test_url_is_percent_encoded() -> None:
    app = App()

    @app.get("/{name}")
    async def handler(request: Request, name: str) -> str:
        return str(request.url)

    with app.test_client() as client:
        response = client.get("/caf%C3%A9%20bar")
    assert response.text == "http://testserver/caf%C3%A9%20bar"


def test_host_falls_back_to_server_and_client_may_be_missing() -> None:
    scope = make_scope(headers=[], server=("example.com", 8080), client=None)
    request = Request(scope)
    assert request.host == "example.com:8080"
    assert request.client is None
    assert Request(make_scope(headers=[], server=("example.com", 443))).host == "example.com"
    assert Request(make_scope(headers=[], server=None)).host == "localhost"
    assert repr(Request(make_scope(method="POST", path="/p"))) == "<Request POST /p>"
    with pytest.raises(RuntimeError, match="url_for needs"):
        Request(make_scope()).url_for("x")


def test_disallowed_host_is_400() -> None:
    app = App()

    @app.get("/")
    async def handler() -> str:
        return "ok"

    with app.test_client() as client:
        response = client.get("/", headers={"Host": "evil.example"})
    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid Host header"}


def test_request_state_is_per_request() -> None:
    request = Request(make_scope())
    request.state.user = "ann"
    assert request.state.user == "ann"
    assert Request(make_scope()).state.__dict__ == {}


# -- body, json, stream ----------------------------------------------------------------------


def test_body_json_and_stream() -> None:
    with echo_app().test_client() as client:
        body = client.post("/body", content=b"\x00raw\xff")
        as_json = client.post("/json", content=b'{"a": [1, 2.5, null]}')
        stream = client.post("/stream", content=b"x" * 10)
    assert (body.status_code, body.content) == (200, b"\x00raw\xff")
    assert body.headers["content-type"] == "application/octet-stream"
    assert as_json.json() == {"value": {"a": [1, 2.5, None]}, "same": True}
    assert stream.json() == {"sizes": [10]}


def test_stream_yields_chunks_as_they_arrive() -> None:
    scope = make_scope("POST", "/stream")
    status, _, body, calls = run_asgi(echo_app(), scope, chunks(b"ab", b"", b"cde", b"f"))
    assert status == 200
    assert json.loads(body) == {"sizes": [2, 3, 1]}
    assert calls == 4


def test_empty_body() -> None:
    with echo_app().test_client() as client:
        body = client.post("/body")
        as_json = client.post("/json", content=b"  \n")
    assert (body.status_code, body.content) == (200, b"")
    assert as_json.status_code == 400
    assert as_json.json() == {"detail": "Malformed JSON: the request body is empty"}


@pytest.mark.parametrize("payload", [b"{", b"{'a': 1}", b"[1,]", b"\xff\xfe", b"nul"])
def test_malformed_json_is_400(payload: bytes) -> None:
    with echo_app().test_client() as client:
        response = client.post("/json", content=payload)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Malformed JSON: ")


class Item(BaseModel):
    data: Any


def nested(depth: int) -> bytes:
    return b'{"data":' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


@pytest.mark.parametrize(("depth", "status"), [(5, 200), (6, 400)])
def test_json_depth_limit(depth: int, status: int) -> None:
    app = echo_app(Settings(max_json_depth=5))

    @app.post("/model")
    async def model(item: Item) -> dict[str, str]:
        return {"ok": "yes"}

    @app.post("/dict")
    async def as_dict(payload: dict[str, Any]) -> dict[str, str]:
        return {"ok": "yes"}

    with app.test_client() as client:
        for url in ("/json", "/model", "/dict"):
            response = client.post(url, content=nested(depth), headers=JSON_HEADERS)
            assert response.status_code == status, url
            if status == 400:
                assert response.json() == {"detail": "Malformed JSON: nesting deeper than 5 levels"}


def test_json_depth_counts_objects_and_arrays() -> None:
    assert parse_json(b'{"a":{"b":[{"c":1}]}}', max_depth=4) == {"a": {"b": [{"c": 1}]}}
    with pytest.raises(HTTPException) as info:
        parse_json(b'{"a":{"b":[{"c":[]}]}}', max_depth=4)
    assert info.value.status_code == 400
    # Brackets inside strings do not count as nesting.
    assert parse_json(b'"[[[[[[[[[[["', max_depth=2) == "[[[[[[[[[[["


JSON_HEADERS = {"Content-Type": "application/json"}


# -- limits ----------------------------------------------------------------------------------


def test_declared_content_length_over_limit_is_413_before_reading() -> None:
    app = echo_app(Settings(max_body_size=100))
    scope = make_scope("POST", "/body", [(b"host", b"localhost"), (b"content-length", b"101")])
    status, _, body, calls = run_asgi(app, scope, chunks(b"x" * 101))
    assert status == 413
    assert json.loads(body) == {"detail": "Request body exceeds the limit of 100 bytes"}
    assert calls == 0


def test_body_at_limit_is_accepted() -> None:
    app = echo_app(Settings(max_body_size=100))
    with app.test_client() as client:
        ok = client.post("/body", content=b"x" * 100)
        over = client.post("/body", content=b"x" * 101)
    assert (ok.status_code, ok.content) == (200, b"x" * 100)
    assert over.status_code == 413


def test_streamed_body_over_limit_is_413_without_reading_the_rest() -> None:
    app = echo_app(Settings(max_body_size=100))
    scope = make_scope("POST", "/body")  # no Content-Length: chunked
    status, _, body, calls = run_asgi(app, scope, chunks(b"x" * 60, b"x" * 60, b"x" * 60))
    assert status == 413
    assert json.loads(body) == {"detail": "Request body exceeds the limit of 100 bytes"}
    assert calls == 2


def test_body_lying_about_its_length_still_hits_the_limit() -> None:
    app = echo_app(Settings(max_body_size=100))
    headers = [(b"host", b"localhost"), (b"content-length", b"10")]
    status, _, _, _ = run_asgi(app, make_scope("POST", "/body", headers), chunks(b"y" * 150))
    assert status == 413


def test_stream_uses_upload_limit() -> None:
    app = echo_app(Settings(max_body_size=10, max_upload_size=50))
    with app.test_client() as client:
        ok = client.post("/stream", content=b"z" * 50)
        over = client.post("/stream", content=b"z" * 51)
    assert ok.json() == {"sizes": [50]}
    assert over.status_code == 413
    assert over.json() == {"detail": "Request body exceeds the limit of 50 bytes"}


@pytest.mark.parametrize("value", [b"abc", b"-1", b"1e3", b"\xb2", b"1 0", b""])
def test_invalid_content_length_is_400(value: bytes) -> None:
    headers = [(b"host", b"localhost"), (b"content-length", value)]
    status, _, body, calls = run_asgi(echo_app(), make_scope("POST", "/body", headers), [])
    assert status == 400
    assert json.loads(body) == {"detail": "Invalid Content-Length header"}
    assert calls == 0


# -- disconnect and double reads -------------------------------------------------------------


def test_disconnect_while_reading_raises_client_disconnect() -> None:
    incoming = [{"type": "http.request", "body": b"ab", "more_body": True}]

    async def receive() -> Message:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def read() -> None:
        await Request(make_scope("POST"), receive).body()

    with pytest.raises(ClientDisconnect):
        asyncio.run(read())


def test_handler_can_catch_disconnect() -> None:
    app = App()
    seen: list[str] = []

    @app.post("/")
    async def handler(request: Request) -> str:
        try:
            await request.body()
        except ClientDisconnect:
            seen.append("gone")
            return "bye"
        return "read"

    status, _, body, _ = run_asgi(app, make_scope("POST"), [{"type": "http.disconnect"}])
    assert (status, body, seen) == (200, b"bye", ["gone"])


def test_body_is_cached_but_raw_stream_reads_once() -> None:
    async def scenario() -> tuple[bytes, bytes, list[bytes]]:
        request = Request(make_scope("POST"), _one_shot(b"payload"))
        first = await request.body()
        again = await request.body()
        replay = [c async for c in request.stream()]
        return first, again, replay

    assert asyncio.run(scenario()) == (b"payload", b"payload", [b"payload"])

    async def consumed() -> None:
        request = Request(make_scope("POST"), _one_shot(b"payload"))
        assert [c async for c in request.stream()] == [b"payload"]
        await request.body()

    with pytest.raises(RuntimeError, match="already consumed"):
        asyncio.run(consumed())


def _one_shot(data: bytes) -> Any:
    async def receive() -> Message:
        return {"type": "http.request", "body": data, "more_body": False}

    return receive


def test_request_outside_app_uses_default_limits() -> None:
    async def read() -> bytes:
        return await Request(make_scope("POST")).body()

    assert asyncio.run(read()) == b""


def test_client_disconnect_is_not_logged_as_a_server_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = echo_app()
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    with caplog.at_level("ERROR", logger="transom"):
        asyncio.run(app(make_scope("POST", "/body"), receive, send))
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == []
    assert sent == []  # nobody is listening: nothing is sent


def test_body_and_media_type_and_the_json_depth_limit() -> None:
    app = App(Settings(max_json_depth=5, max_body_size=16))

    @app.post("/both")
    async def both(request: Request) -> dict[str, Any]:
        body, media = await request.body_and_media_type()
        again, _ = await request.body_and_media_type()  # read once, kept
        assert again is body
        return {"body": body.decode(), "media": media, "depth": request.max_json_depth}

    json_type = [(b"host", b"localhost"), (b"content-type", b"Application/JSON; charset=utf-8")]
    status, _, body, _ = run_asgi(
        app, make_scope("POST", "/both", headers=json_type), chunks(b'{"a":', b"1}")
    )
    assert status == 200
    assert json.loads(body) == {"body": '{"a":1}', "media": "application/json", "depth": 5}
    # The body limit holds on this path too.
    status, _, _, _ = run_asgi(
        app, make_scope("POST", "/both", headers=json_type), chunks(b"x" * 17)
    )
    assert status == 413


def test_form_loaded_says_whether_the_form_was_parsed() -> None:
    app = App(Settings(max_body_size=1000))
    seen: list[bool] = []

    @app.post("/form")
    async def form(request: Request) -> dict[str, Any]:
        seen.append(request.form_loaded)
        data = await request.form()
        seen.append(request.form_loaded)
        return {"name": data["name"]}

    @app.post("/ignore")
    async def ignore(request: Request) -> str:
        seen.append(request.form_loaded)
        return "ok"

    form_type = [(b"host", b"localhost"), (b"content-type", b"application/x-www-form-urlencoded")]
    status, _, body, _ = run_asgi(
        app, make_scope("POST", "/form", headers=form_type), chunks(b"name=ada")
    )
    assert (status, json.loads(body)) == (200, {"name": "ada"})
    status, _, _, _ = run_asgi(
        app, make_scope("POST", "/ignore", headers=form_type), chunks(b"name=ada")
    )
    assert status == 200
    assert seen == [False, True, False]
    assert app.request_limits[0] == 1000  # the settings' max body, once the app is built
