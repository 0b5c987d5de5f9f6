"""Headers, MutableHeaders, MultiDict, QueryParams, URL, State, UploadFile and FormData."""

from __future__ import annotations

import asyncio

import pytest

from transom.datastructures import (
    URL,
    FormData,
    Headers,
    MultiDict,
    MutableHeaders,
    QueryParams,
    State,
    UploadFile,
)

RAW = [(b"accept", b"text/html"), (b"x-multi", b"a"), (b"x-multi", b"b"), (b"latin", b"caf\xe9")]


# -- Headers ---------------------------------------------------------------------------------


def test_headers_read_access() -> None:
    headers = Headers(RAW)
    assert headers["Accept"] == "text/html"
    assert headers["X-MULTI"] == "a"
    assert headers.getlist("x-multi") == ["a", "b"]
    assert headers.getlist("nope") == []
    assert headers.get("nope") is None
    assert headers.get("nope", "d") == "d"
    assert headers["latin"] == "café"
    assert "ACCEPT" in headers
    assert "nope" not in headers
    assert object() not in headers
    assert list(headers) == ["accept", "x-multi", "latin"]
    assert len(headers) == 3
    assert dict(headers) == {"accept": "text/html", "x-multi": "a", "latin": "café"}
    assert headers.multi_items() == [
        ("accept", "text/html"),
        ("x-multi", "a"),
        ("x-multi", "b"),
        ("latin", "café"),
    ]
    assert repr(Headers([(b"a", b"1")])) == "Headers([('a', '1')])"
    with pytest.raises(KeyError):
        headers["nope"]


def test_headers_from_mapping_and_empty() -> None:
    headers = Headers({"Content-Type": "text/plain", "X-A": "1"})
    assert headers.raw == [(b"content-type", b"text/plain"), (b"x-a", b"1")]
    assert len(Headers()) == 0
    assert Headers(h for h in RAW).getlist("x-multi") == ["a", "b"]


def test_mutable_headers_set_append_delete() -> None:
    raw: list[tuple[bytes, bytes]] = [(b"vary", b"a"), (b"x", b"1"), (b"vary", b"b")]
    headers = MutableHeaders(raw)
    headers["Vary"] = "Cookie"
    assert raw == [(b"x", b"1"), (b"vary", b"Cookie")]  # shares the list it wraps
    headers.append("Vary", "Accept")
    assert headers.getlist("vary") == ["Cookie", "Accept"]
    assert headers.setdefault("x", "2") == "1"
    assert headers.setdefault("y", "2") == "2"
    assert headers["y"] == "2"
    del headers["VARY"]
    assert headers.getlist("vary") == []
    with pytest.raises(KeyError):
        del headers["vary"]
    headers.update({"Z": "3"})
    assert headers.multi_items() == [("x", "1"), ("y", "2"), ("z", "3")]
    assert headers.pop("z") == "3"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("X-A", "a\r\nSet-Cookie: x=1"),
        ("X-A", "a\rb"),
        ("X-A", "a\nb"),
        ("X-A", "a\x00b"),
        ("X-A\r\nSet-Cookie", "x"),
        ("X-A:", "x"),
        ("X A", "x"),
        ("", "x"),
        ("Ключ", "x"),
    ],
)
def test_mutable_headers_refuse_injection(key: str, value: str) -> None:
    headers = MutableHeaders()
    with pytest.raises(ValueError, match="header"):
        headers[key] = value
    with pytest.raises(ValueError, match="header"):
        headers.append(key, value)
    with pytest.raises(ValueError, match="header"):
        MutableHeaders({key: value})
    assert headers.raw == []


def test_mutable_headers_accept_token_names() -> None:
    headers = MutableHeaders({"X-Weird_Name.1~!#$%&'*+^`|": "tab\tand spaces ok"})
    assert headers["x-weird_name.1~!#$%&'*+^`|"] == "tab\tand spaces ok"


# -- MultiDict / QueryParams -----------------------------------------------------------------


def test_multidict() -> None:
    md = MultiDict([("a", 1), ("b", 2), ("a", 3)])
    assert md["a"] == 1
    assert md.getlist("a") == [1, 3]
    assert md.getlist("zz") == []
    assert list(md) == ["a", "b"]
    assert len(md) == 2
    assert "b" in md
    assert md.get("zz", 0) == 0
    assert md.multi_items() == [("a", 1), ("b", 2), ("a", 3)]
    assert md.multi_items() is not md.multi_items()
    assert repr(md) == "MultiDict([('a', 1), ('b', 2), ('a', 3)])"
    with pytest.raises(KeyError):
        md["zz"]


@pytest.mark.parametrize(
    ("query", "items"),
    [
        (b"a=1&a=2&b=", [("a", "1"), ("a", "2"), ("b", "")]),
        ("x=%C3%A9&y=a+b", [("x", "é"), ("y", "a b")]),
        (b"flag&k=v", [("flag", ""), ("k", "v")]),
        (b"a=1;b=2", [("a", "1;b=2")]),
        ("q=caf\u00e9".encode(), [("q", "café")]),  # raw UTF-8 bytes, as some clients send
        (b"q=%C3%A9&bad=%FF", [("q", "é"), ("bad", "\ufffd")]),
        (b"", []),
        ([("k", "v"), ("k", "w")], [("k", "v"), ("k", "w")]),
    ],
)
def test_query_params(
    query: bytes | str | list[tuple[str, str]], items: list[tuple[str, str]]
) -> None:
    params = QueryParams(query)
    assert params.multi_items() == items


def test_query_params_str_reencodes() -> None:
    assert str(QueryParams(b"q=a+b&q=%C3%A9&e=")) == "q=a+b&q=%C3%A9&e="
    assert str(QueryParams([("a&b", "c=d")])) == "a%26b=c%3Dd"


# -- URL -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("netloc", "hostname"),
    [
        ("example.com", "example.com"),
        ("example.com:8080", "example.com"),
        ("[::1]:8000", "[::1]"),
        ("[::1]", "[::1]"),
    ],
)
def test_url_hostname(netloc: str, hostname: str) -> None:
    assert URL("http", netloc, "/").hostname == hostname


def test_url_str_eq_replace() -> None:
    url = URL("https", "example.com", "/a/b", "x=1")
    assert str(url) == "https://example.com/a/b?x=1"
    assert repr(url) == "URL('https://example.com/a/b?x=1')"
    assert str(URL("http", "h", "/")) == "http://h/"
    assert url == "https://example.com/a/b?x=1"
    assert url == URL("https", "example.com", "/a/b", "x=1")
    assert url != URL("https", "example.com", "/a/b")
    assert hash(url) == hash("https://example.com/a/b?x=1")
    other = url.replace(path="/c", query="")
    assert str(other) == "https://example.com/c"
    assert str(url) == "https://example.com/a/b?x=1"  # replace returns a copy
    assert {url, URL("https", "example.com", "/a/b", "x=1")} == {url}


# -- State -----------------------------------------------------------------------------------


def test_state() -> None:
    state = State(db="conn")
    state.user = "ann"
    assert (state.db, state.user) == ("conn", "ann")
    assert repr(state) == "State({'db': 'conn', 'user': 'ann'})"
    with pytest.raises(AttributeError, match="state has no attribute 'missing'"):
        _ = state.missing
    assert getattr(state, "missing", None) is None
    del state.user
    assert not hasattr(state, "user")


# -- UploadFile / FormData -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("a.txt", "a.txt"),
        ("/etc/passwd", "passwd"),
        ("../../x.sh", "x.sh"),
        ("C:\\Users\\me\\doc.pdf", "doc.pdf"),
        ("..\\evil.bat", "evil.bat"),
        ("", ""),
        (None, None),
    ],
)
def test_upload_filename_is_a_base_name(given: str | None, kept: str | None) -> None:
    assert UploadFile(given).filename == kept


def test_upload_file_memory_then_disk() -> None:
    async def scenario() -> list[object]:
        upload = UploadFile("f.bin", "application/x-test", max_memory=4)
        seen: list[object] = [upload.in_memory, upload.content_type, len(upload.headers)]
        await upload.write(b"abcd")
        seen.append(upload.in_memory)
        await upload.write(b"ef")
        seen += [upload.in_memory, upload.size]
        await upload.write(b"gh")  # written through the thread pool now
        await upload.seek(0)
        seen.append(await upload.read(3))
        seen.append(await upload.read())
        seen.append(repr(upload))
        await upload.close()
        seen.append(upload.file.closed)
        return seen

    assert asyncio.run(scenario()) == [
        True,
        "application/x-test",
        0,
        True,
        False,
        6,
        b"abc",
        b"defgh",
        "UploadFile(filename='f.bin', size=8, type='application/x-test')",
        True,
    ]


def test_upload_file_in_memory_read() -> None:
    async def scenario() -> tuple[bytes, bool]:
        upload = UploadFile("f", headers=Headers({"X-A": "1"}))
        await upload.write(b"small")
        await upload.seek(1)
        return await upload.read(), upload.in_memory

    assert asyncio.run(scenario()) == (b"mall", True)


def test_form_data() -> None:
    upload = UploadFile("f.txt")
    form = FormData([("name", "ann"), ("file", upload), ("name", "bob")])
    assert form["name"] == "ann"
    assert form.getlist("name") == ["ann", "bob"]
    assert form["file"] is upload
    assert form.get_str("name") == "ann"
    assert form.get_str("file") is None
    assert form.get_str("file", "dflt") == "dflt"
    assert form.get_str("missing", "dflt") == "dflt"
    asyncio.run(form.close())
    assert upload.file.closed


def test_first_values_is_the_first_value_of_each_key() -> None:
    from transom.datastructures import QueryParams

    for query in (b"a=1&b=2&a=3", b"a=%31&b=2&a=3"):  # the fast and the unescaping parser
        params = QueryParams(query)
        assert dict(params.first_values()) == {"a": "1", "b": "2"}
        assert params.first_values().get("a") == params["a"] == "1"
        assert params.getlist("a") == ["1", "3"]
