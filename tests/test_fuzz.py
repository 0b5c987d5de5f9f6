"""Fuzzing request parsing: whatever a client sends, the app answers below 500, and answers.

A realistic app (typed path and query parameters, a Pydantic body, a form with an upload, a
signed-cookie session with CSRF, a JSON list body) is called through the ASGI interface with
scopes built here, so the fuzz can send what an HTTP client library would refuse to: odd bytes
in header names and values, duplicated or contradictory headers, NUL bytes in paths, bodies cut
into random chunks. Every call is bounded by ``asyncio.wait_for``: a hang fails the example.

Two Hypothesis profiles: ``ci`` (the default: a few dozen examples per test, derandomized so
that ``make test`` is stable) and ``fuzz`` (thousands of random examples: ``make fuzz``, or
``HYPOTHESIS_PROFILE=fuzz pytest tests/test_fuzz.py``; ``FUZZ_EXAMPLES`` sets how many).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import string
from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import quote, unquote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from transom import App, Body, Cookie, File, FormParam, Header, Settings, UploadFile
from transom.security import CSRFToken, Security, SessionDataDep

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "3000")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

HOST = b"testserver"
#: Seconds one request may take before the example counts as a hang.
HANG_AFTER = 20.0


# -- the app under test ---------------------------------------------------------------------


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []
    quantity: int = 1


def build_app() -> App:
    """The app the fuzz talks to: one route per kind of parameter parsing."""
    app = App(Settings(secret_key="fuzz-secret-key", allowed_hosts=["testserver", "localhost"]))
    Security(app)

    @app.get("/items/{item_id:int}")
    async def get_item(
        item_id: int, q: str | None = None, page: int = 1, ratio: float = 1.0, full: bool = False
    ) -> dict[str, Any]:
        return {"id": item_id, "q": q, "page": page, "ratio": ratio, "full": full}

    @app.get("/users/{name}/flag/{on}")
    async def user_flag(name: str, on: bool) -> dict[str, Any]:
        return {"name": name, "on": on}

    @app.get("/price/{amount:float}")
    async def price(amount: float, tags: list[str] | None = None) -> float:
        return amount

    @app.get("/files/{rest:path}")
    async def files(rest: str) -> dict[str, str]:
        return {"rest": rest}

    @app.post("/items")
    async def create_item(item: Item) -> Item:
        return item

    @app.post("/totals")
    async def totals(values: Annotated[list[int], Body()]) -> dict[str, int]:
        return {"count": len(values), "sum": sum(values)}

    @app.post("/upload")
    async def upload(
        title: Annotated[str, FormParam()],
        doc: Annotated[UploadFile, File()],
        note: Annotated[str | None, FormParam()] = None,
    ) -> dict[str, Any]:
        content = await doc.read()
        return {"title": title, "filename": doc.filename, "size": len(content), "note": note}

    @app.get("/token")
    async def token(csrf: CSRFToken) -> dict[str, str]:
        return {"token": csrf}

    @app.post("/cart")
    async def add_to_cart(
        session: SessionDataDep, item: Annotated[str, FormParam()]
    ) -> dict[str, Any]:
        cart = [*session.get("cart", []), item]
        session["cart"] = cart
        return {"cart": cart}

    @app.get("/cart")
    async def show_cart(session: SessionDataDep) -> dict[str, Any]:
        return {"cart": session.get("cart", [])}

    @app.get("/whoami")
    async def whoami(
        user_agent: Annotated[str | None, Header()] = None,
        theme: Annotated[str | None, Cookie()] = None,
        x_count: Annotated[int | None, Header()] = None,
    ) -> dict[str, Any]:
        return {"ua": user_agent, "theme": theme, "count": x_count}

    return app


# -- calling it through ASGI ------------------------------------------------------------------


class Answer:
    def __init__(self) -> None:
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""


async def call(
    app: App,
    method: str,
    path: str,
    *,
    raw_path: bytes | None = None,
    query: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    chunks: list[bytes] | None = None,
) -> Answer:
    """One request through the ASGI interface; ``chunks`` arrive as separate body messages."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": raw_path,
        "query_string": query,
        "root_path": "",
        "headers": headers if headers is not None else [(b"host", HOST)],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    pending = list(chunks or [b""])
    answered = asyncio.Event()
    answer = Answer()

    async def receive() -> dict[str, Any]:
        if pending:
            body = pending.pop(0)
            return {"type": "http.request", "body": body, "more_body": bool(pending)}
        await answered.wait()  # like a server: the client is gone once the answer is sent
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            assert answer.status is None, "response started twice"
            answer.status = int(message["status"])
            answer.headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            assert answer.status is not None, "body before the response start"
            answer.body += message.get("body", b"")
            if not message.get("more_body", False):
                answered.set()

    try:
        await app(scope, receive, send)  # type: ignore[arg-type]
    finally:
        answered.set()
    return answer


class Harness:
    """One app on one event loop for the whole module (Hypothesis reruns the test body)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.app = build_app()
        self.loop.run_until_complete(self.app.startup())
        # A real session cookie and its CSRF token, so fuzzed POSTs can get past CSRF.
        answer = self.run("GET", "/token")
        assert answer.status == 200, answer.body
        cookies = [v.split(b";")[0] for k, v in answer.headers if k == b"set-cookie"]
        self.cookie = b"; ".join(cookies)
        self.token = answer.body.split(b'"token":"')[1].split(b'"')[0]

    def run(self, method: str, path: str, **kwargs: Any) -> Answer:
        """Send one request and check the two properties: it is answered, and not with 5xx."""
        kwargs.setdefault("raw_path", quote(path, safe="/").encode("ascii"))
        coro = call(self.app, method, path, **kwargs)
        try:
            answer = self.loop.run_until_complete(asyncio.wait_for(coro, HANG_AFTER))
        except TimeoutError:
            pytest.fail(f"hang: {method} {path!r} {kwargs!r}"[:3000])
        assert answer.status is not None, "no response sent"
        assert answer.status < 500, (answer.status, answer.body[:500], method, path)
        return answer

    def close(self) -> None:
        self.loop.run_until_complete(self.app.shutdown())
        self.loop.close()


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    h = Harness()
    yield h
    h.close()


# -- strategies --------------------------------------------------------------------------------

ANY_BYTES = st.binary(max_size=64)
ODD = ["", "\x00", "%00", "%", "%zz", "%ff", "..", ".", "%2e%2e", "%2F", "\\", "ü", "\u202e", " "]
NUMBERS = [
    "0",
    "-1",
    "1.5",
    "1e309",
    "-1e309",
    "nan",
    "inf",
    "-0",
    "0x10",
    "1_000",
    "9" * 5000,
    "٣",  # an Arabic-Indic digit: int() accepts it
    "true",
    "yes",
    "off",
]
SEGMENT = st.one_of(
    st.sampled_from(ODD + NUMBERS),
    st.text(max_size=30),
    st.text(alphabet=string.digits, min_size=1, max_size=30),
)
ROUTES = ["/items/{}", "/users/{}/flag/{}", "/price/{}", "/files/{}/{}", "/cart", "/whoami"]


@st.composite
def paths(draw: st.DrawFn) -> str:
    template = draw(st.sampled_from([*ROUTES, "/{}", "/{}/{}/{}"]))
    segments = [draw(SEGMENT) for _ in range(template.count("{}"))]
    return template.format(*segments)


def query_strings() -> st.SearchStrategy[bytes]:
    key = st.one_of(st.sampled_from(["q", "page", "ratio", "full", "tags", "x", ""]), st.text())
    value = st.one_of(st.sampled_from(ODD + NUMBERS), st.text(max_size=40))

    @st.composite
    def encoded(draw: st.DrawFn) -> bytes:
        pairs = draw(st.lists(st.tuples(key, value), max_size=8))
        parts = []
        for k, v in pairs:
            raw = draw(st.booleans())
            k_b = k.encode("utf-8", "surrogatepass") if raw else quote(k).encode("ascii")
            v_b = v.encode("utf-8", "surrogatepass") if raw else quote(v).encode("ascii")
            parts.append(k_b + draw(st.sampled_from([b"=", b"", b"==", b"=%"])) + v_b)
        separator = draw(st.sampled_from([b"&", b";", b"&&"]))
        return separator.join(parts)

    return st.one_of(encoded(), st.binary(max_size=200), st.just(b"q=" + b"x" * 100_000))


HEADER_NAMES = [
    b"host",
    b"content-type",
    b"content-length",
    b"cookie",
    b"accept",
    b"accept-encoding",
    b"x-csrf-token",
    b"origin",
    b"referer",
    b"x-forwarded-for",
    b"x-forwarded-proto",
    b"transfer-encoding",
    b"x-request-id",
    b"range",
    b"if-none-match",
    b"if-modified-since",
    b"authorization",
    b"user-agent",
    b"x-count",
    b"sec-fetch-site",
]
HEADER_VALUE = st.one_of(
    ANY_BYTES,
    st.sampled_from([s.encode("utf-8") for s in ODD + NUMBERS]),
    st.binary(min_size=5000, max_size=20000),
    st.just(b"x" * 200_000),  # over any sane header size
    st.sampled_from(
        [
            b"text/html",
            b"application/json",
            b"multipart/form-data",
            b"multipart/form-data; boundary=",
            b"bytes=0-1,5-",
            b"Bearer x",
            b"null",
            b"http://evil.example",
            b"testserver",
            b"testserver:99999",
            b"[::1",
        ]
    ),
)
HEADER_NAME = st.one_of(
    st.sampled_from(HEADER_NAMES),
    st.binary(min_size=1, max_size=20).map(bytes.lower),
)


@st.composite
def header_lists(draw: st.DrawFn) -> list[tuple[bytes, bytes]]:
    headers = draw(st.lists(st.tuples(HEADER_NAME, HEADER_VALUE), max_size=12))
    if draw(st.booleans()):
        headers.insert(0, (b"host", HOST))  # reach the routes most of the time
    if draw(st.booleans()) and headers:
        headers.extend(draw(st.lists(st.sampled_from(headers), max_size=3)))  # duplicates
    return headers


@st.composite
def cookie_headers(draw: st.DrawFn, real: bytes) -> bytes:
    name = st.one_of(st.sampled_from([b"session", b"theme", b"csrftoken", b""]), ANY_BYTES)
    value = st.one_of(
        st.just(real.split(b"=", 1)[1] if b"=" in real else b""),
        st.sampled_from([b'"quoted"', b'"unterminated', b"a=b=c", b"\x00", b"\xff\xfe", b""]),
        ANY_BYTES,
        st.just(b"v" * 10_000),
    )
    pairs = draw(st.lists(st.tuples(name, value), max_size=6))
    if draw(st.booleans()):
        pairs.append((b"", real))  # the genuine session cookie, sometimes tampered
        if draw(st.booleans()):
            pairs[-1] = (b"", real[:-3] + b"AAA")
    glue = draw(st.sampled_from([b"; ", b";", b", ", b";;"]))
    return glue.join(k + b"=" + v if k else v for k, v in pairs)


JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)


def _dumps(value: Any) -> bytes:
    # The stdlib, not orjson: it writes integers of any size, which the app must survive.
    return json.dumps(value).encode()


@st.composite
def json_bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return _dumps(draw(JSON_VALUES))
    if kind == 1:  # deep nesting
        depth = draw(st.integers(100, 100_000))
        opener = draw(st.sampled_from([b"[", b'{"a":']))
        return opener * depth + draw(st.sampled_from([b"", b"1" + b"]" * depth]))
    if kind == 2:  # huge numbers, in the places the models expect numbers
        number = draw(st.sampled_from([b"1" * 5000, b"1e99999", b"-1e-99999", b"NaN", b"0" * 9]))
        return draw(
            st.sampled_from(
                [
                    b"[" + number + b"]",
                    b'{"name":"a","price":' + number + b',"quantity":' + number + b"}",
                    number,
                ]
            )
        )
    if kind == 3:  # NUL bytes, bad UTF-8, lone surrogates
        return draw(
            st.sampled_from(
                [
                    b'{"name":"a\x00b","price":1}',
                    b'{"name":"\\u0000","price":1}',
                    b'{"name":"\\ud800","price":1}',
                    b'{"name":"\xff\xfe","price":1}',
                    b"[1,2,\x00]",
                    b"\xef\xbb\xbf[1]",
                ]
            )
        )
    if kind == 4:  # valid-looking items with wrong types
        item = draw(
            st.fixed_dictionaries(
                {"name": JSON_VALUES, "price": JSON_VALUES},
                optional={"tags": JSON_VALUES, "quantity": JSON_VALUES},
            )
        )
        return _dumps(item)
    return draw(st.binary(max_size=300))  # not JSON at all


BOUNDARY = st.one_of(
    st.text(alphabet=string.ascii_letters + string.digits + "-_'()+,./:=? ", max_size=70),
    # Around python-multipart's 256-byte limit, which it enforces when the parser is built
    # (a 500 until the fix in _multipart.py, which gives a 400).
    st.integers(200, 2000).map(lambda n: "b" * n),
    st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
)


@st.composite
def multipart_bodies(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """(content-type value, body) of a multipart form, often subtly or badly broken."""
    boundary = draw(BOUNDARY)
    declared = boundary.encode("latin-1")
    if draw(st.booleans()):
        declared = b'"' + declared + b'"'
    content_type = b"multipart/form-data; boundary=" + declared
    if draw(st.integers(0, 9)) == 0:
        content_type = draw(
            st.sampled_from(
                [b"multipart/form-data", b"multipart/form-data; boundary", b"multipart/mixed"]
            )
        )
    real = boundary.encode("latin-1")
    if draw(st.integers(0, 9)) == 0:
        real = draw(ANY_BYTES)  # the body uses another boundary than declared
    name = st.one_of(st.sampled_from([b"title", b"doc", b"note", b"item", b"csrftoken"]), ANY_BYTES)
    disposition = st.one_of(
        st.builds(
            lambda n, f: (
                b'form-data; name="' + n + b'"' + (b'; filename="' + f + b'"' if f else b"")
            ),
            name,
            st.one_of(
                st.none(),
                st.sampled_from([b"a.txt", b"../../etc/passwd", b"C:\\x\\y.txt", b"\x00", b""]),
                ANY_BYTES,
            ),
        ),
        st.sampled_from([b"form-data", b"form-data; name=", b"attachment; name=x", b""]),
        ANY_BYTES,
    )
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        headers = b"Content-Disposition: " + draw(disposition) + b"\r\n"
        if draw(st.booleans()):
            headers += b"Content-Type: " + draw(HEADER_VALUE) + b"\r\n"
        if draw(st.integers(0, 9)) == 0:
            headers += draw(ANY_BYTES) + b"\r\n"  # a malformed header line
        data = draw(st.one_of(ANY_BYTES, st.just(b"x" * 70_000), st.just(b"--" + real)))
        parts.append(b"--" + real + b"\r\n" + headers + b"\r\n" + data + b"\r\n")
    ending = draw(st.sampled_from([b"--" + real + b"--\r\n", b"--" + real, b"", b"--\r\n"]))
    body = b"".join(parts) + ending
    return content_type, body


def split(body: bytes, cuts: list[int]) -> list[bytes]:
    """Cut ``body`` at the given offsets (modulo its length) into body messages."""
    if not body:
        return [b""]
    points = sorted({c % len(body) for c in cuts} | {0, len(body)})
    return [body[a:b] for a, b in itertools.pairwise(points)]


CUTS = st.lists(st.integers(0, 1 << 20), max_size=6)
METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "BREW"])


def _auth(harness: Harness, mode: int) -> list[tuple[bytes, bytes]]:
    """Headers that get a POST past CSRF (a real token, or a bearer exemption), or not."""
    if mode == 0:
        return [(b"cookie", harness.cookie), (b"x-csrf-token", harness.token)]
    if mode == 1:
        return [(b"authorization", b"Bearer fuzz")]
    return []


def _length(body: bytes, mode: int) -> list[tuple[bytes, bytes]]:
    """A Content-Length that is right, absent, wrong, or nonsense."""
    values = [str(len(body)).encode(), None, b"0", b"-1", b"99999999999999999999", b"abc"]
    value = values[mode % len(values)]
    return [] if value is None else [(b"content-length", value)]


# -- the tests ---------------------------------------------------------------------------------


@given(method=METHODS, path=paths(), query=query_strings())
def test_fuzz_paths_and_query_strings(
    harness: Harness, method: str, path: str, query: bytes
) -> None:
    harness.run(method, path, query=query)


@given(
    method=METHODS,
    path=st.sampled_from(["/items/1", "/whoami", "/cart", "/token", "/nowhere"]),
    raw=st.one_of(st.none(), st.binary(max_size=60)),
)
def test_fuzz_raw_paths(harness: Harness, method: str, path: str, raw: bytes | None) -> None:
    # The decoded path and the raw one need not agree (a proxy may have rewritten either).
    decoded = path if raw is None else unquote(raw.decode("latin-1"))
    harness.run(method, decoded, raw_path=raw)


@given(method=METHODS, path=st.sampled_from(["/whoami", "/items/7", "/cart"]), data=st.data())
def test_fuzz_headers(harness: Harness, method: str, path: str, data: st.DataObject) -> None:
    headers = data.draw(header_lists())
    body = data.draw(st.binary(max_size=100))
    harness.run(method, path, headers=headers, chunks=[body])


@given(data=st.data(), method=st.sampled_from(["GET", "POST"]))
def test_fuzz_cookies(harness: Harness, data: st.DataObject, method: str) -> None:
    cookie = data.draw(cookie_headers(harness.cookie))
    headers = [(b"host", HOST), (b"cookie", cookie)]
    if data.draw(st.booleans()):
        headers.append((b"cookie", data.draw(cookie_headers(harness.cookie))))
    if method == "POST":
        headers.append((b"x-csrf-token", data.draw(st.sampled_from([harness.token, b"x", b""]))))
        headers.append((b"content-type", b"application/x-www-form-urlencoded"))
    path = data.draw(st.sampled_from(["/cart", "/whoami", "/token"]))
    harness.run(method, path, headers=headers, chunks=[b"item=fuzz"])


@given(
    path=st.sampled_from(["/items", "/totals"]),
    body=json_bodies(),
    content_type=st.sampled_from(
        [b"application/json", b"application/json; charset=latin-1", b"text/plain", b"x/y+json"]
    ),
    auth=st.integers(0, 2),
    length=st.integers(0, 7),
    cuts=CUTS,
)
def test_fuzz_json_bodies(
    harness: Harness,
    path: str,
    body: bytes,
    content_type: bytes,
    auth: int,
    length: int,
    cuts: list[int],
) -> None:
    headers = [(b"host", HOST), (b"content-type", content_type)]
    headers += _auth(harness, auth) + _length(body, length)
    harness.run("POST", path, headers=headers, chunks=split(body, cuts))


LONG_BOUNDARY = b"b" * 300


@example(  # always tried: the over-long boundary that gave a 500
    path="/upload",
    form=(
        b"multipart/form-data; boundary=" + LONG_BOUNDARY,
        b"--" + LONG_BOUNDARY + b'\r\nContent-Disposition: form-data; name="title"\r\n\r\nT\r\n'
        b"--" + LONG_BOUNDARY + b"--\r\n",
    ),
    auth=1,
    length=0,
    cuts=[],
)
@given(
    path=st.sampled_from(["/upload", "/cart", "/items"]),
    form=multipart_bodies(),
    auth=st.integers(0, 2),
    length=st.integers(0, 7),
    cuts=CUTS,
)
def test_fuzz_multipart_bodies(
    harness: Harness,
    path: str,
    form: tuple[bytes, bytes],
    auth: int,
    length: int,
    cuts: list[int],
) -> None:
    content_type, body = form
    headers = [(b"host", HOST), (b"content-type", content_type)]
    headers += _auth(harness, auth) + _length(body, length)
    harness.run("POST", path, headers=headers, chunks=split(body, cuts))


@given(body=st.binary(max_size=300), auth=st.integers(0, 2), cuts=CUTS)
def test_fuzz_urlencoded_bodies(harness: Harness, body: bytes, auth: int, cuts: list[int]) -> None:
    headers = [(b"host", HOST), (b"content-type", b"application/x-www-form-urlencoded")]
    headers += _auth(harness, auth)
    harness.run("POST", "/cart", headers=headers, chunks=split(body, cuts))


def test_the_harness_reaches_the_handlers(harness: Harness) -> None:
    """The fuzz is only worth something if well-formed requests get through (200s)."""
    assert harness.run("GET", "/items/3", query=b"q=a&page=2&full=yes").status == 200
    ok = [(b"host", HOST), (b"content-type", b"application/json"), *_auth(harness, 0)]
    assert harness.run("POST", "/totals", headers=ok, chunks=[b"[1,", b"2]"]).status == 200
    boundary = b"xyz"
    form = (
        b'--xyz\r\nContent-Disposition: form-data; name="title"\r\n\r\nT\r\n'
        b'--xyz\r\nContent-Disposition: form-data; name="doc"; filename="a.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\nhello\r\n--xyz--\r\n"
    )
    upload = [
        (b"host", HOST),
        (b"content-type", b"multipart/form-data; boundary=" + boundary),
        *_auth(harness, 0),
    ]
    answer = harness.run("POST", "/upload", headers=upload, chunks=split(form, [17, 60]))
    assert answer.status == 200, answer.body
    assert b'"size":5' in answer.body
