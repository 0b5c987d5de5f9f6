"""Responses: return-value conversion, JSON, cookies, header safety, redirects, streaming."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import decimal
import enum
import pathlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import pytest
from pydantic import BaseModel

from transom import (
    App,
    Cookie,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from transom._types import Message
from transom.responses import json_dumps, to_response

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
    "cross-origin-opener-policy": "same-origin",
}


class Pet(BaseModel):
    name: str
    born: dt.date


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Color(enum.Enum):
    RED = "red"


def app_returning(value: Any, **route: Any) -> App:
    app = App()

    @app.route("/", methods=("GET", "POST"), **route)
    async def handler() -> Any:
        return value

    return app


def get(app: App, method: str = "GET", base_url: str = "http://testserver") -> Any:
    with app.test_client(base_url=base_url) as client:
        return client.request(method, "/")


# -- return-value conversion -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "status", "ctype", "body"),
    [
        ("<b>hi</b>", 200, "text/html; charset=utf-8", b"<b>hi</b>"),
        ("", 200, "text/html; charset=utf-8", b""),
        ({"a": 1}, 200, "application/json", b'{"a":1}'),
        ([1, "two"], 200, "application/json", b'[1,"two"]'),
        (
            Pet(name="Rex", born=dt.date(2020, 1, 2)),
            200,
            "application/json",
            b'{"name":"Rex","born":"2020-01-02"}',
        ),
        (Point(1, 2), 200, "application/json", b'{"x":1,"y":2}'),
        ([Point(0, 0)], 200, "application/json", b'[{"x":0,"y":0}]'),
        (b"\x00\xff", 200, "application/octet-stream", b"\x00\xff"),
        (bytearray(b"ba"), 200, "application/octet-stream", b"ba"),
        (42, 200, "application/json", b"42"),
        (True, 200, "application/json", b"true"),
        (Color.RED, 200, "application/json", b'"red"'),
        (PlainTextResponse("plain", 202), 202, "text/plain; charset=utf-8", b"plain"),
        (("created", 201), 201, "text/html; charset=utf-8", b"created"),
        (({"id": 7}, 201), 201, "application/json", b'{"id":7}'),
        ((None, 202), 202, None, b""),
        ((b"raw", 203), 203, "application/octet-stream", b"raw"),
        ((JSONResponse([1]), 201), 201, "application/json", b"[1]"),
    ],
)
def test_return_value_conversion(value: Any, status: int, ctype: str | None, body: bytes) -> None:
    response = get(app_returning(value))
    assert response.status_code == status
    assert response.headers.get("content-type") == ctype
    assert response.content == body
    assert response.headers["content-length"] == str(len(body))
    for name, expected in SECURITY_HEADERS.items():
        assert response.headers[name] == expected


def test_tuple_with_headers() -> None:
    response = get(app_returning(("made", 201, {"Location": "/x/1", "X-Count": 3})))
    assert response.status_code == 201
    assert response.headers["location"] == "/x/1"
    assert response.headers["x-count"] == "3"
    assert response.text == "made"


def test_tuple_headers_may_override_content_type() -> None:
    response = get(app_returning(("a,b", 200, {"Content-Type": "text/csv"})))
    assert response.headers.get_list("content-type") == ["text/csv"]


def test_none_is_204_without_body_or_length() -> None:
    response = get(app_returning(None))
    assert response.status_code == 204
    assert response.content == b""
    assert "content-length" not in response.headers
    assert "content-type" not in response.headers


def test_route_status_code_applies_to_plain_values() -> None:
    assert get(app_returning({"a": 1}, status_code=201)).status_code == 201
    assert get(app_returning(None, status_code=200)).status_code == 200
    # An explicit Response keeps its own status.
    assert get(app_returning(Response(b"", 208), status_code=201)).status_code == 208


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (object(), "handler returned object"),
        (("a", "201"), "a tuple return value must be"),
        (("a",), "a tuple return value must be"),
        (("a", 200, {}, 1), "a tuple return value must be"),
    ],
)
def test_unconvertible_values_raise(value: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        to_response(value, None)


def test_unconvertible_value_is_500() -> None:
    response = get(app_returning(object()))
    assert response.status_code == 500
    assert response.json()["detail"] == "Internal Server Error"


# -- JSON ------------------------------------------------------------------------------------


def test_json_dumps_types() -> None:
    when = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
    uid = uuid.UUID("12345678-1234-5678-1234-567812345678")
    content = {
        "when": when,
        "naive": dt.datetime(2024, 5, 6, 7, 8, 9),
        "day": dt.date(2024, 5, 6),
        "uid": uid,
        "price": decimal.Decimal("1.10"),
        "pet": Pet(name="Rex", born=dt.date(2020, 1, 2)),
        "point": Point(1, 2),
        "color": Color.RED,
        "set": frozenset({1}),
        "tuple": (1, 2),
        "path": pathlib.PurePosixPath("/a/b"),
        1: "int key",
    }
    assert json_dumps(content) == (
        b'{"when":"2024-05-06T07:08:09+00:00","naive":"2024-05-06T07:08:09",'
        b'"day":"2024-05-06","uid":"12345678-1234-5678-1234-567812345678","price":"1.10",'
        b'"pet":{"name":"Rex","born":"2020-01-02"},"point":{"x":1,"y":2},"color":"red",'
        b'"set":[1],"tuple":[1,2],"path":"/a/b","1":"int key"}'
    )
    with pytest.raises(TypeError, match="not JSON serializable"):
        json_dumps({"x": object()})


def test_json_response_class() -> None:
    app = app_returning(JSONResponse({"id": uuid.UUID(int=1)}, 201, headers={"X-A": "b"}))
    response = get(app)
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-a"] == "b"
    assert response.json() == {"id": "00000000-0000-0000-0000-000000000001"}


def test_response_classes_and_media_types() -> None:
    assert HTMLResponse("x").content_type == "text/html; charset=utf-8"
    assert PlainTextResponse("x").content_type == "text/plain; charset=utf-8"
    assert Response("x", media_type="text/csv; charset=latin-1").content_type == (
        "text/csv; charset=latin-1"
    )
    assert Response(b"x", media_type="image/png").content_type == "image/png"
    assert Response("é").body == "é".encode()
    assert Response(None).body == b""
    assert Response(memoryview(b"mv")).body == b"mv"
    assert repr(Response(b"", 418)) == "<Response 418>"
    with pytest.raises(TypeError, match="Response content must be str or bytes"):
        Response({"a": 1})


def test_user_header_replaces_app_default() -> None:
    response = get(app_returning(HTMLResponse("x", headers={"X-Frame-Options": "SAMEORIGIN"})))
    assert response.headers.get_list("x-frame-options") == ["SAMEORIGIN"]
    assert response.headers["x-content-type-options"] == "nosniff"


# -- cookies ---------------------------------------------------------------------------------


def cookie_app(**kwargs: Any) -> App:
    app = App()

    @app.get("/")
    async def handler() -> Response:
        response = PlainTextResponse("ok")
        response.set_cookie("sid", 'v a;l"ue', **kwargs)
        return response

    return app


def set_cookies(app: App, base_url: str = "http://testserver") -> list[str]:
    response = get(app, base_url=base_url)
    assert response.status_code == 200
    return list(response.headers.get_list("set-cookie"))


def test_cookie_defaults_are_safe() -> None:
    assert set_cookies(cookie_app()) == ["sid=v%20a%3Bl%22ue; HttpOnly; Path=/; SameSite=Lax"]
    assert set_cookies(cookie_app(), "https://testserver") == [
        "sid=v%20a%3Bl%22ue; HttpOnly; Path=/; SameSite=Lax; Secure"
    ]


def test_cookie_value_round_trips_through_request() -> None:
    app = cookie_app()

    @app.get("/read")
    async def read(sid: Annotated[str | None, Cookie()] = None) -> dict[str, str | None]:
        return {"sid": sid}

    with app.test_client() as client:
        client.get("/")
        response = client.get("/read")
    assert response.json() == {"sid": 'v a;l"ue'}


@pytest.mark.parametrize(
    ("kwargs", "base_url", "expected"),
    [
        (
            {"max_age": 60, "path": "/app", "domain": "example.com", "samesite": "strict"},
            "http://testserver",
            "sid=v%20a%3Bl%22ue; Domain=example.com; HttpOnly; Max-Age=60; Path=/app; "
            "SameSite=Strict",
        ),
        ({"httponly": False, "samesite": None}, "http://testserver", "sid=v%20a%3Bl%22ue; Path=/"),
        (
            {"secure": True},
            "http://testserver",
            "sid=v%20a%3Bl%22ue; HttpOnly; Path=/; SameSite=Lax; Secure",
        ),
        (
            {"secure": False},
            "https://testserver",
            "sid=v%20a%3Bl%22ue; HttpOnly; Path=/; SameSite=Lax",
        ),
        (
            {"samesite": "none"},
            "http://testserver",
            "sid=v%20a%3Bl%22ue; HttpOnly; Path=/; SameSite=None; Secure",
        ),
        (
            {"samesite": "Strict"},
            "http://testserver",
            "sid=v%20a%3Bl%22ue; HttpOnly; Path=/; SameSite=Strict",
        ),
        (
            {"expires": dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)},
            "http://testserver",
            "sid=v%20a%3Bl%22ue; expires=Wed, 02 Jan 2030 03:04:05 GMT; HttpOnly; Path=/; "
            "SameSite=Lax",
        ),
        (
            {
                "expires": dt.datetime(
                    2030, 1, 2, 5, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2))
                )
            },
            "http://testserver",
            "sid=v%20a%3Bl%22ue; expires=Wed, 02 Jan 2030 03:04:05 GMT; HttpOnly; Path=/; "
            "SameSite=Lax",
        ),
        (
            {"expires": dt.datetime(2030, 1, 2, 3, 4, 5)},
            "http://testserver",
            "sid=v%20a%3Bl%22ue; expires=Wed, 02 Jan 2030 03:04:05 GMT; HttpOnly; Path=/; "
            "SameSite=Lax",
        ),
    ],
)
def test_cookie_options(kwargs: dict[str, Any], base_url: str, expected: str) -> None:
    assert set_cookies(cookie_app(**kwargs), base_url) == [expected]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"samesite": "none", "secure": False}, "SameSite=None cookies must be Secure"),
        ({"samesite": "sometimes"}, "samesite must be"),
        ({"path": "/; Domain=evil.example"}, "invalid cookie path or domain"),
        ({"domain": "a.example\r\nX-Evil: 1"}, "invalid cookie path or domain"),
    ],
)
def test_bad_cookie_options_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Response().set_cookie("k", "v", **kwargs)


def test_bad_cookie_name_is_refused() -> None:
    with pytest.raises(Exception, match="Illegal key"):
        Response().set_cookie("bad name\r\n", "v")


def test_delete_cookie_and_replacing_a_cookie() -> None:
    app = App()

    @app.get("/")
    async def handler() -> Response:
        response = Response()
        response.set_cookie("a", "1")
        response.set_cookie("a", "2")  # same name and path: replaces
        response.set_cookie("a", "3", path="/other")
        response.delete_cookie("gone", domain="example.com")
        return response

    cookies = set_cookies(app, "https://testserver")
    assert cookies[:2] == [
        "a=2; HttpOnly; Path=/; SameSite=Lax; Secure",
        "a=3; HttpOnly; Path=/other; SameSite=Lax; Secure",
    ]
    assert cookies[2].startswith("gone=; Domain=example.com; expires=")
    assert cookies[2].endswith(" GMT; HttpOnly; Max-Age=0; Path=/; SameSite=Lax; Secure")


def test_delete_cookie_clears_it_in_the_client() -> None:
    app = App()

    @app.get("/set")
    async def set_it() -> Response:
        response = Response()
        response.set_cookie("a", "1")
        return response

    @app.get("/del")
    async def del_it() -> Response:
        response = Response()
        response.delete_cookie("a")
        return response

    with app.test_client() as client:
        client.get("/set")
        assert client.cookies.get("a") == "1"
        client.get("/del")
        assert client.cookies.get("a") is None


# -- header injection ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"X-A": "ok\r\nSet-Cookie: evil=1"},
        {"X-A": "ok\nX-B: 2"},
        {"X-A": "nul\x00"},
        {"X-A\r\nX-B": "v"},
        {"X-A: b": "v"},
        {"": "v"},
    ],
)
def test_header_injection_is_refused(headers: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="header"):
        Response(b"", headers=headers)
    response = Response()
    key, value = next(iter(headers.items()))
    with pytest.raises(ValueError, match="header"):
        response.headers[key] = value
    with pytest.raises(ValueError, match="header"):
        response.headers.append(key, value)


def test_header_injection_in_returned_tuple_is_500() -> None:
    response = get(app_returning(("x", 200, {"X-A": "a\r\nSet-Cookie: evil=1"})))
    assert response.status_code == 500
    assert "set-cookie" not in response.headers
    assert "x-a" not in response.headers


# -- redirects -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "location"),
    [
        ("/next", "/next"),
        ("/a b/é?q=x y&r=1#frag", "/a%20b/%C3%A9?q=x%20y&r=1#frag"),
        ("https://example.com/p?next=%2Fhome", "https://example.com/p?next=%2Fhome"),
        ("/x\r\nSet-Cookie: evil=1", "/x%0D%0ASet-Cookie:%20evil=1"),
        ("/<script>", "/%3Cscript%3E"),
    ],
)
def test_redirect_location_is_quoted(url: str, location: str) -> None:
    response = get(app_returning(RedirectResponse(url)))
    assert response.status_code == 302
    assert response.headers["location"] == location
    assert response.content == b""
    assert response.headers["content-length"] == "0"


@pytest.mark.parametrize("status", [301, 303, 307, 308])
def test_redirect_status(status: int) -> None:
    response = get(app_returning(RedirectResponse("/x", status, headers={"X-A": "1"})))
    assert (response.status_code, response.headers["location"]) == (status, "/x")
    assert response.headers["x-a"] == "1"


# -- streaming -------------------------------------------------------------------------------


def sync_chunks() -> Iterator[str | bytes]:
    yield "a"
    yield b"b"
    yield "é"


async def async_chunks() -> AsyncIterator[str | bytes]:
    for chunk in ("x", b"y", "z"):
        await asyncio.sleep(0)
        yield chunk


@pytest.mark.parametrize(
    ("factory", "body"),
    [
        (sync_chunks, "abé".encode()),
        (async_chunks, b"xyz"),
        (lambda: [b"1", b"2"], b"12"),
        (lambda: iter(()), b""),
    ],
)
def test_streaming_response(factory: Any, body: bytes) -> None:
    app = App()

    @app.get("/")
    async def handler() -> StreamingResponse:
        return StreamingResponse(factory(), 201, {"X-S": "1"}, media_type="text/plain")

    with app.test_client() as client:
        response = client.get("/")
        head = client.head("/")
    assert response.status_code == 201
    assert response.content == body
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["x-s"] == "1"
    assert (head.status_code, head.content) == (201, b"")


def test_streaming_sends_each_chunk_as_it_comes() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    response = StreamingResponse(async_chunks(), media_type="text/event-stream")
    asyncio.run(response({"method": "GET"}, receive, send))
    # No Content-Length: the length is not known in advance.
    assert sent[0]["headers"] == [(b"content-type", b"text/event-stream; charset=utf-8")]
    assert [m.get("body") for m in sent[1:]] == [b"x", b"y", b"z", b""]
    assert [m.get("more_body", False) for m in sent[1:]] == [True, True, True, False]


def test_head_gets_headers_without_body() -> None:
    response = get(app_returning({"a": 1}), method="HEAD")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == "7"
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses(status: int) -> None:
    response = get(app_returning(Response(b"ignored", status, media_type="text/plain")))
    assert response.status_code == status
    assert response.content == b""
    assert "content-length" not in response.headers
    assert "content-type" not in response.headers


def test_response_is_an_asgi_app() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    response = PlainTextResponse("hey", headers={"X-A": "1"})
    response.set_cookie("c", "v")
    asyncio.run(response({"type": "http", "method": "GET", "scheme": "https"}, receive, send))
    assert sent == [
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", b"3"),
                (b"x-a", b"1"),
                (b"set-cookie", b"c=v; HttpOnly; Path=/; SameSite=Lax; Secure"),
            ],
        },
        {"type": "http.response.body", "body": b"hey"},
    ]


def test_client_reports_only_headers_the_app_sent() -> None:
    app = App()

    @app.get("/")
    async def handler() -> StreamingResponse:
        return StreamingResponse([b"abc"])

    with app.test_client() as client:
        response = client.get("/")
    assert response.content == b"abc"
    assert "content-length" not in response.headers


def test_objects_with_a_json_method_are_returned_as_json() -> None:
    class Row:
        def __init__(self, id: int) -> None:
            self.id = id

        def __json__(self) -> dict[str, int]:
            return {"id": self.id}

    app = App()

    @app.get("/one")
    def one() -> Any:
        return Row(1)

    @app.get("/many")
    def many() -> Any:
        return {"rows": [Row(1), Row(2)]}

    with app.test_client() as client:
        assert client.get("/one").json() == {"id": 1}
        assert client.get("/many").json() == {"rows": [{"id": 1}, {"id": 2}]}


def test_json_integers_beyond_64_bits() -> None:
    """orjson refuses them; an int parameter echoed back must not turn into a 500."""
    import datetime
    import uuid

    from transom import App, Settings

    app = App(Settings(secret_key="test"))

    @app.get("/items/{item_id:int}")
    async def item(item_id: int) -> dict[str, Any]:
        return {"id": item_id, "at": datetime.date(2024, 1, 2), "uid": uuid.UUID(int=1)}

    with app.test_client() as client:
        r = client.get("/items/20000000000000000000")
        assert r.status_code == 200, r.text
        assert r.json() == {
            "id": 20000000000000000000,
            "at": "2024-01-02",
            "uid": "00000000-0000-0000-0000-000000000001",
        }


def test_header_block_is_what_send_to_sends() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    response = PlainTextResponse("hey", headers={"X-A": "1", "Vary": "Accept"})
    response.set_cookie("c", "v")
    extra = [(b"x-a", b"default"), (b"vary", b"Cookie"), (b"x-frame-options", b"DENY")]
    scope = {"type": "http", "method": "GET", "scheme": "https"}
    block = response.header_block(scope, extra, 3)
    asyncio.run(response.send_to(scope, send, extra))
    assert block == sent[0]["headers"]
    # The response's own X-A wins over the block's; Vary adds up; the cookie is Secure on HTTPS.
    assert block == [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"3"),
        (b"x-a", b"1"),
        (b"vary", b"Accept"),
        (b"vary", b"Cookie"),
        (b"x-frame-options", b"DENY"),
        (b"set-cookie", b"c=v; HttpOnly; Path=/; SameSite=Lax; Secure"),
    ]
    # Without a length (what a battery reads before the body is known) and without a block.
    plain = response.header_block({"type": "http", "scheme": "http"})
    assert (b"content-length", b"3") not in plain
    assert plain[-1] == (b"set-cookie", b"c=v; HttpOnly; Path=/; SameSite=Lax")
    assert block is not response.header_block(scope, extra, 3)  # a new list each call
