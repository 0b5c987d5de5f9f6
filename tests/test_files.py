"""FileResponse: validators, conditional GET, byte ranges, Content-Disposition, HEAD."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from transom import App, FileResponse
from transom._types import Message
from transom.files import parse_range

DATA = b"0123456789abcdefghij"
MTIME = 1_700_000_000
LAST_MODIFIED = "Tue, 14 Nov 2023 22:13:20 GMT"
EARLIER = "Tue, 14 Nov 2023 22:13:19 GMT"
LATER = "Wed, 15 Nov 2023 00:00:00 GMT"


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.txt"
    path.write_bytes(DATA)
    os.utime(path, (MTIME, MTIME))
    return path


def etag_of(path: Path) -> str:
    st = path.stat()
    return f'"{st.st_mtime_ns:x}-{st.st_size:x}"'


def fetch(
    path: Path | str,
    headers: Mapping[str, str] | Mapping[bytes, bytes] | None = None,
    method: str = "GET",
    **kwargs: Any,
) -> httpx.Response:
    app = App()

    @app.get("/")
    async def handler() -> FileResponse:
        return FileResponse(path, **kwargs)

    with app.test_client() as client:
        return client.request(method, "/", headers=headers)


# -- plain GET, validators -------------------------------------------------------------------


def test_full_file_with_validators(data_file: Path) -> None:
    response = fetch(data_file)
    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["content-length"] == "20"
    assert response.headers["etag"] == etag_of(data_file)
    assert response.headers["last-modified"] == LAST_MODIFIED
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-disposition" not in response.headers


@pytest.mark.parametrize(
    ("name", "kwargs", "ctype"),
    [
        ("x.bin", {}, "application/octet-stream"),
        ("x.json", {}, "application/json"),
        ("x.unknownext", {}, "application/octet-stream"),
        ("x.bin", {"media_type": "image/png"}, "image/png"),
        ("x", {"filename": "report.pdf"}, "application/pdf"),
    ],
)
def test_media_type(tmp_path: Path, name: str, kwargs: dict[str, Any], ctype: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"{}")
    assert fetch(path, **kwargs).headers["content-type"] == ctype


def test_head_has_headers_and_no_body(data_file: Path) -> None:
    response = fetch(data_file, method="HEAD")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == "20"
    assert response.headers["etag"] == etag_of(data_file)
    ranged = fetch(data_file, {"Range": "bytes=2-4"}, method="HEAD")
    assert (ranged.status_code, ranged.content) == (206, b"")
    assert ranged.headers["content-length"] == "3"
    assert ranged.headers["content-range"] == "bytes 2-4/20"


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    response = fetch(path)
    assert (response.status_code, response.content) == (200, b"")
    assert response.headers["content-length"] == "0"
    ranged = fetch(path, {"Range": "bytes=0-"})
    assert ranged.status_code == 416
    assert ranged.headers["content-range"] == "bytes */0"


@pytest.mark.parametrize("target", ["missing.txt", "dir", "data.txt/child"])
def test_missing_file_is_404(data_file: Path, target: str) -> None:
    (data_file.parent / "dir").mkdir()
    response = fetch(data_file.parent / target, filename="x.txt")
    assert response.status_code == 404
    assert response.content == b"Not Found"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert "content-disposition" not in response.headers
    assert "etag" not in response.headers


# -- conditional GET -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"If-None-Match": "ETAG"}, 304),
        ({"If-None-Match": "W/ETAG"}, 304),
        ({"If-None-Match": '"other", ETAG'}, 304),
        ({"If-None-Match": '"a",W/ETAG ,"b"'}, 304),
        ({"If-None-Match": "*"}, 304),
        ({"If-None-Match": '"other"'}, 200),
        ({"If-Modified-Since": LAST_MODIFIED}, 304),
        ({"If-Modified-Since": LATER}, 304),
        ({"If-Modified-Since": EARLIER}, 200),
        ({"If-Modified-Since": "not a date"}, 200),
        # If-None-Match wins over If-Modified-Since (RFC 9110 13.1.3).
        ({"If-None-Match": '"other"', "If-Modified-Since": LATER}, 200),
        ({"If-None-Match": "ETAG", "If-Modified-Since": EARLIER}, 304),
    ],
)
def test_conditional_get(data_file: Path, headers: dict[str, str], status: int) -> None:
    etag = etag_of(data_file)
    sent = {k: v.replace("ETAG", etag) for k, v in headers.items()}
    response = fetch(data_file, sent)
    assert response.status_code == status
    if status == 304:
        assert response.content == b""
        assert "content-length" not in response.headers
        assert "content-type" not in response.headers
        assert response.headers["etag"] == etag
        assert response.headers["last-modified"] == LAST_MODIFIED
    else:
        assert response.content == DATA


def test_conditional_head(data_file: Path) -> None:
    response = fetch(data_file, {"If-None-Match": etag_of(data_file)}, method="HEAD")
    assert (response.status_code, response.content) == (304, b"")


def test_custom_etag_is_used_for_conditions(data_file: Path) -> None:
    app = App()

    @app.get("/")
    async def handler() -> FileResponse:
        return FileResponse(data_file, headers={"ETag": '"v1"'})

    with app.test_client() as client:
        plain = client.get("/")
        matched = client.get("/", headers={"If-None-Match": '"v1"'})
        computed = client.get("/", headers={"If-None-Match": etag_of(data_file)})
    assert plain.headers.get_list("etag") == ['"v1"']
    assert matched.status_code == 304
    assert computed.status_code == 200


# -- ranges ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "start", "end"),
    [
        ("bytes=0-4", 0, 4),
        ("bytes=15-", 15, 19),
        ("bytes=-5", 15, 19),
        ("bytes=-50", 0, 19),
        ("bytes=5-100", 5, 19),
        ("bytes=19-19", 19, 19),
        ("BYTES = 3 - 4", 3, 4),
    ],
)
def test_single_range(data_file: Path, spec: str, start: int, end: int) -> None:
    response = fetch(data_file, {"Range": spec}, chunk_size=3)
    assert response.status_code == 206
    assert response.content == DATA[start : end + 1]
    assert response.headers["content-range"] == f"bytes {start}-{end}/20"
    assert response.headers["content-length"] == str(end - start + 1)
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize("spec", ["bytes=20-", "bytes=25-30", "bytes=-0"])
def test_unsatisfiable_range_is_416(data_file: Path, spec: str) -> None:
    response = fetch(data_file, {"Range": spec})
    assert response.status_code == 416
    assert response.headers["content-range"] == "bytes */20"
    assert response.content == b""


@pytest.mark.parametrize(
    "spec",
    [
        "bytes=0-1,5-6",  # several ranges: the whole file is allowed (RFC 9110 14.2)
        "bytes=5-2",
        "items=0-1",
        "bytes=abc",
        "bytes=1",
        "bytes=-",
        "bytes=\u00b2-",  # latin-1 superscripts are str.isdigit() but not digits
        "bytes=1-\u00b9",
    ],
)
def test_ignored_range_sends_whole_file(data_file: Path, spec: str) -> None:
    response = fetch(data_file, {b"Range": spec.encode("latin-1")})
    assert response.status_code == 200
    assert response.content == DATA
    assert "content-range" not in response.headers


@pytest.mark.parametrize(
    ("if_range", "status"),
    [
        ("ETAG", 206),
        ('"stale"', 200),
        ("W/ETAG", 200),  # If-Range uses the strong comparison
        (LAST_MODIFIED, 206),
        (EARLIER, 200),
        (LATER, 200),
        ("garbage", 200),
    ],
)
def test_if_range(data_file: Path, if_range: str, status: int) -> None:
    value = if_range.replace("ETAG", etag_of(data_file))
    response = fetch(data_file, {"Range": "bytes=0-1", "If-Range": value})
    assert response.status_code == status
    assert response.content == (b"01" if status == 206 else DATA)


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("bytes=0-0", 1, (0, 0)),
        ("bytes=0-", 0, False),
        ("bytes=-1", 0, False),
        ("bytes=-3", 10, (7, 9)),
        ("bytes=, 0-1", 10, None),
        ("bytes=2-1", 10, None),
        ("bits=0-1", 10, None),
    ],
)
def test_parse_range(header: str, size: int, expected: tuple[int, int] | bool | None) -> None:
    assert parse_range(header, size) == expected


# -- Content-Disposition ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "kind", "expected"),
    [
        ("report.pdf", "attachment", 'attachment; filename="report.pdf"'),
        ("report.pdf", "inline", 'inline; filename="report.pdf"'),
        (
            "résumé 2024.pdf",
            "attachment",
            "attachment; filename=\"rsum 2024.pdf\"; filename*=utf-8''r%C3%A9sum%C3%A9%202024.pdf",
        ),
        (
            'say "hi".txt',
            "attachment",
            "attachment; filename=\"say hi.txt\"; filename*=utf-8''say%20%22hi%22.txt",
        ),
        (
            "a\\b.txt",
            "attachment",
            "attachment; filename=\"ab.txt\"; filename*=utf-8''a%5Cb.txt",
        ),
        (
            "a/b€.txt",
            "attachment",
            "attachment; filename=\"a/b.txt\"; filename*=utf-8''a%2Fb%E2%82%AC.txt",
        ),
    ],
)
def test_content_disposition(data_file: Path, filename: str, kind: str, expected: str) -> None:
    response = fetch(data_file, filename=filename, content_disposition_type=kind)
    assert response.status_code == 200
    assert response.headers["content-disposition"] == expected


def test_filename_control_characters_cannot_inject_headers(data_file: Path) -> None:
    response = FileResponse(data_file, filename="a\r\nSet-Cookie: x=1.txt")
    assert response.headers["content-disposition"] == (
        'attachment; filename="aSet-Cookie: x=1.txt"; '
        "filename*=utf-8''a%0D%0ASet-Cookie%3A%20x%3D1.txt"
    )


# -- ASGI level ------------------------------------------------------------------------------


def run(response: FileResponse, headers: list[tuple[bytes, bytes]]) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    scope = {"type": "http", "method": "GET", "headers": headers}
    asyncio.run(response(scope, receive, send))
    return sent


def test_file_is_sent_in_chunks(data_file: Path) -> None:
    sent = run(FileResponse(data_file, chunk_size=8), [])
    assert [m.get("body") for m in sent[1:]] == [b"01234567", b"89abcdef", b"ghij"]
    assert [m.get("more_body", False) for m in sent[1:]] == [True, True, False]


def test_response_object_can_be_reused(data_file: Path) -> None:
    response = FileResponse(data_file)
    ranged = run(response, [(b"range", b"bytes=0-1")])
    plain = run(response, [])
    not_modified = run(response, [(b"if-none-match", etag_of(data_file).encode())])
    again = run(response, [])
    assert ranged[0]["status"] == 206
    assert plain[0]["status"] == 200
    assert b"".join(m.get("body", b"") for m in plain[1:]) == DATA
    assert (b"content-range", b"bytes 0-1/20") not in plain[0]["headers"]
    assert not_modified[0]["status"] == 304
    assert again[0]["status"] == 200
    assert [k for k, _ in again[0]["headers"]].count(b"etag") == 1


def test_given_stat_result_is_used(data_file: Path) -> None:
    st = os.stat(data_file)
    sent = run(FileResponse(data_file, stat_result=st), [])
    assert (b"etag", etag_of(data_file).encode()) in sent[0]["headers"]
