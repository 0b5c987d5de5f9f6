"""Form bodies: urlencoded and multipart parsing, limits, uploads and FormParam()/File() params."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import pytest
from pydantic import BaseModel

from transom import App, File, FormParam, Request, UploadFile, _multipart
from transom._types import Message
from transom.settings import Settings

BOUNDARY = "xYzZY"
MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
URLENCODED = {"Content-Type": "application/x-www-form-urlencoded"}


def part(name: str, value: bytes, filename: str | None = None, ctype: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
    if ctype:
        head += f"Content-Type: {ctype}\r\n"
    return head.encode() + b"\r\n" + value + b"\r\n"


def multipart(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


async def describe(value: str | UploadFile) -> Any:
    if isinstance(value, str):
        return value
    data = await value.read()
    return {
        "filename": value.filename,
        "type": value.content_type,
        "size": value.size,
        "data": data.decode("utf-8", "replace"),
        "in_memory": value.in_memory,
    }


def form_app(settings: Settings | None = None) -> App:
    app = App(settings)

    @app.post("/form")
    async def form(request: Request) -> list[Any]:
        data = await request.form()
        return [[key, await describe(value)] for key, value in data.multi_items()]

    return app


# -- urlencoded ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"a=1&b=two+words&a=3", [["a", "1"], ["b", "two words"], ["a", "3"]]),
        (b"empty=&flag", [["empty", ""], ["flag", ""]]),
        (b"n%C3%A4me=%C3%A9t%C3%A9", [["näme", "été"]]),
        ("raw=caf\u00e9".encode(), [["raw", "café"]]),
        (b"bad=%FF", [["bad", "\ufffd"]]),
        (b"", []),
    ],
)
def test_urlencoded(body: bytes, expected: list[Any]) -> None:
    with form_app().test_client() as client:
        response = client.post("/form", content=body, headers=URLENCODED)
    assert response.status_code == 200
    assert response.json() == expected


def test_urlencoded_limits() -> None:
    app = form_app(Settings(max_form_fields=2, max_body_size=20))
    with app.test_client() as client:
        ok = client.post("/form", content=b"a=1&b=2", headers=URLENCODED)
        many = client.post("/form", content=b"a=1&b=2&c=3", headers=URLENCODED)
        big = client.post("/form", content=b"a=" + b"x" * 19, headers=URLENCODED)
    assert ok.json() == [["a", "1"], ["b", "2"]]
    assert (many.status_code, many.json()) == (400, {"detail": "Too many form fields (limit 2)"})
    assert big.status_code == 413


# -- multipart -------------------------------------------------------------------------------


def test_multipart_fields_and_files() -> None:
    body = multipart(
        part("title", b"hello"),
        part("doc", b"file body", "notes.txt", "text/plain"),
        part("title", "zwei \u00fc".encode()),
        part("blob", b"\x00\x01", "b.bin"),
    )
    with form_app().test_client() as client:
        response = client.post("/form", content=body, headers=MULTIPART)
    assert response.status_code == 200
    assert response.json() == [
        ["title", "hello"],
        [
            "doc",
            {
                "filename": "notes.txt",
                "type": "text/plain",
                "size": 9,
                "data": "file body",
                "in_memory": True,
            },
        ],
        ["title", "zwei ü"],
        [
            "blob",
            {
                "filename": "b.bin",
                "type": "application/octet-stream",
                "size": 2,
                "data": "\x00\x01",
                "in_memory": True,
            },
        ],
    ]


def test_multipart_utf8_names_and_filenames() -> None:
    body = multipart(
        part("пароль", "значение".encode()),
        part("ファイル", b"x", "résumé €.pdf", "application/pdf"),
    )
    with form_app().test_client() as client:
        response = client.post("/form", content=body, headers=MULTIPART)
    assert response.json()[0] == ["пароль", "значение"]
    assert response.json()[1][0] == "ファイル"
    assert response.json()[1][1]["filename"] == "résumé €.pdf"


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\report.doc", "report.doc"),
        ("..\\..\\evil.sh", "evil.sh"),
        ("dir/sub/ok.txt", "ok.txt"),
    ],
)
def test_upload_filename_drops_directories(sent: str, kept: str) -> None:
    body = multipart(part("f", b"x", sent))
    with form_app().test_client() as client:
        response = client.post("/form", content=body, headers=MULTIPART)
    assert response.json()[0][1]["filename"] == kept


def test_httpx_encoded_multipart() -> None:
    with form_app().test_client() as client:
        response = client.post(
            "/form", data={"k": "v"}, files={"up": ("a.csv", b"1,2\n", "text/csv")}
        )
    assert response.json() == [
        ["k", "v"],
        [
            "up",
            {
                "filename": "a.csv",
                "type": "text/csv",
                "size": 4,
                "data": "1,2\n",
                "in_memory": True,
            },
        ],
    ]


@pytest.mark.parametrize(("size", "in_memory"), [(10, True), (11, False), (5000, False)])
def test_uploads_spool_to_disk_past_spool_size(size: int, in_memory: bool) -> None:
    app = form_app(Settings(upload_spool_size=10))
    body = multipart(part("f", b"d" * size, "f.bin"))
    with app.test_client() as client:
        response = client.post("/form", content=body, headers=MULTIPART)
    upload = response.json()[0][1]
    assert (upload["size"], upload["in_memory"]) == (size, in_memory)
    assert upload["data"] == "d" * size


def test_uploads_are_closed_after_the_response() -> None:
    app = App()
    kept: list[UploadFile] = []

    @app.post("/")
    async def handler(doc: UploadFile) -> int:
        kept.append(doc)
        return doc.size

    with app.test_client() as client:
        response = client.post("/", content=multipart(part("doc", b"abc", "a")), headers=MULTIPART)
    assert response.json() == 3
    assert kept[0].file.closed


@pytest.mark.parametrize(
    ("settings", "parts", "status", "detail"),
    [
        (
            Settings(max_form_fields=2),
            [part("a", b"1"), part("b", b"2"), part("c", b"3")],
            400,
            "Too many form fields (limit 2)",
        ),
        (
            Settings(max_form_files=1),
            [part("a", b"1", "a"), part("b", b"2", "b")],
            413,
            "Too many files in the form (limit 1)",
        ),
        (
            Settings(max_upload_size=200),
            [part("a", b"x" * 300, "a")],
            413,
            "Request body exceeds the limit of 200 bytes",
        ),
    ],
)
def test_multipart_limits(settings: Settings, parts: list[bytes], status: int, detail: str) -> None:
    with form_app(settings).test_client() as client:
        response = client.post("/form", content=multipart(*parts), headers=MULTIPART)
    assert (response.status_code, response.json()) == (status, {"detail": detail})


def test_fields_and_files_are_counted_separately() -> None:
    app = form_app(Settings(max_form_fields=1, max_form_files=1))
    body = multipart(part("a", b"1"), part("f", b"2", "f"))
    with app.test_client() as client:
        response = client.post("/form", content=body, headers=MULTIPART)
    assert response.status_code == 200


def test_oversized_text_field_is_413(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_multipart, "MAX_FIELD_SIZE", 8)
    with form_app().test_client() as client:
        ok = client.post("/form", content=multipart(part("a", b"x" * 8)), headers=MULTIPART)
        big = client.post("/form", content=multipart(part("a", b"x" * 9)), headers=MULTIPART)
        file = client.post("/form", content=multipart(part("a", b"x" * 9, "f")), headers=MULTIPART)
    assert ok.json() == [["a", "x" * 8]]
    assert (big.status_code, big.json()) == (413, {"detail": "Form field 'a' is larger than 8"})
    assert file.status_code == 200


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"this is not multipart", "Malformed multipart body: "),
        (
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=a\r\n\r\ncut".encode(),
            "Malformed multipart body: the body ended before the closing boundary",
        ),
        (
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n"
            f"--{BOUNDARY}\r\n".encode(),
            "Malformed multipart body: the body ended before the closing boundary",
        ),
        (
            f"--{BOUNDARY}\r\nContent-Type: text/plain\r\n\r\nv\r\n--{BOUNDARY}--\r\n".encode(),
            "Multipart part without a form-data name",
        ),
        (
            f'--{BOUNDARY}\r\nContent-Disposition: attachment; name="a"\r\n\r\nv\r\n'
            f"--{BOUNDARY}--\r\n".encode(),
            "Multipart part without a form-data name",
        ),
        (
            f"--{BOUNDARY}\r\n".encode()
            + b"".join(b"X-H%d: v\r\n" % i for i in range(40))
            + f"\r\nv\r\n--{BOUNDARY}--\r\n".encode(),
            "Malformed multipart body: ",
        ),
    ],
)
def test_malformed_multipart_is_400(body: bytes, detail: str) -> None:
    with form_app().test_client() as client:
        response = client.post("/form", content=body, headers=MULTIPART)
    assert response.status_code == 400
    assert response.json()["detail"].startswith(detail)


def test_empty_multipart_bodies_are_empty_forms() -> None:
    with form_app().test_client() as client:
        empty = client.post("/form", content=b"", headers=MULTIPART)
        closing = client.post("/form", content=f"--{BOUNDARY}--\r\n", headers=MULTIPART)
    assert (empty.status_code, empty.json()) == (200, [])
    assert (closing.status_code, closing.json()) == (200, [])


@pytest.mark.parametrize(
    ("ctype", "status", "detail"),
    [
        ("multipart/form-data", 400, "Multipart body without a boundary"),
        ('multipart/form-data; boundary=""', 400, "Multipart body without a boundary"),
        (
            "application/json",
            415,
            "Expected a form body (application/x-www-form-urlencoded or multipart/form-data)",
        ),
        (
            "",
            415,
            "Expected a form body (application/x-www-form-urlencoded or multipart/form-data)",
        ),
    ],
)
def test_form_content_type_errors(ctype: str, status: int, detail: str) -> None:
    headers = {"Content-Type": ctype} if ctype else {}
    with form_app().test_client() as client:
        response = client.post("/form", content=b"a=1", headers=headers)
    assert (response.status_code, response.json()) == (status, {"detail": detail})


def test_form_content_type_is_case_insensitive() -> None:
    headers = {"Content-Type": f"Multipart/Form-Data; boundary={BOUNDARY}"}
    with form_app().test_client() as client:
        response = client.post("/form", content=multipart(part("a", b"1")), headers=headers)
    assert response.json() == [["a", "1"]]


# -- FormParam() / File() handler parameters --------------------------------------------------


class Signup(BaseModel):
    email: str
    age: int
    tags: list[str] = []


def params_app() -> App:
    app = App()

    @app.post("/fields")
    async def fields(
        name: Annotated[str, FormParam(min_length=2)],
        tags: Annotated[list[str], FormParam()],
        note: Annotated[str | None, FormParam()] = None,
    ) -> dict[str, Any]:
        return {"name": name, "tags": tags, "note": note}

    @app.post("/model")
    async def model(data: Annotated[Signup, FormParam()]) -> Signup:
        return data

    @app.post("/files")
    async def files(
        doc: Annotated[UploadFile, File()],
        raw: Annotated[bytes, File()],
        many: Annotated[list[UploadFile], File()],
        implicit: UploadFile,
        maybe: Annotated[UploadFile | None, File()] = None,
    ) -> dict[str, Any]:
        return {
            "doc": [doc.filename, (await doc.read()).decode()],
            "raw": raw.decode(),
            "many": [m.filename for m in many],
            "implicit": implicit.filename,
            "maybe": maybe,
        }

    return app


def test_form_params_urlencoded_and_multipart() -> None:
    with params_app().test_client() as client:
        encoded = client.post("/fields", content=b"name=Ann&tags=a&tags=b", headers=URLENCODED)
        multi = client.post(
            "/fields",
            content=multipart(part("name", b"Bob"), part("tags", b"x"), part("note", b"n")),
            headers=MULTIPART,
        )
    assert encoded.json() == {"name": "Ann", "tags": ["a", "b"], "note": None}
    assert multi.json() == {"name": "Bob", "tags": ["x"], "note": "n"}


def test_form_params_validation_and_media_type() -> None:
    with params_app().test_client() as client:
        short = client.post("/fields", content=b"name=A&tags=a", headers=URLENCODED)
        missing = client.post("/fields", content=b"name=Ann", headers=URLENCODED)
        as_json = client.post("/fields", json={"name": "Ann", "tags": ["a"]})
    assert short.status_code == 422
    assert [e["loc"] for e in short.json()["detail"]] == [["body", "name"]]
    assert missing.status_code == 422
    assert missing.json()["detail"] == [
        {"type": "missing", "loc": ["body", "tags"], "msg": "Field required", "input": None}
    ]
    assert (as_json.status_code, as_json.json()) == (
        415,
        {"detail": "Unsupported media type: send the body as a form"},
    )


def test_pydantic_model_takes_the_whole_form() -> None:
    with params_app().test_client() as client:
        ok = client.post(
            "/model", content=b"email=a%40b.c&age=30&tags=x&tags=y&extra=1", headers=URLENCODED
        )
        bad = client.post("/model", content=b"email=a%40b.c&age=old", headers=URLENCODED)
    assert ok.json() == {"email": "a@b.c", "age": 30, "tags": ["x", "y"]}
    assert bad.status_code == 422
    assert [e["loc"] for e in bad.json()["detail"]] == [["body", "age"]]


def test_file_params() -> None:
    body = multipart(
        part("doc", b"hello", "d.txt", "text/plain"),
        part("raw", b"bytes!", "r.bin"),
        part("many", b"1", "m1"),
        part("many", b"2", "m2"),
        part("implicit", b"", "i.txt"),
    )
    with params_app().test_client() as client:
        response = client.post("/files", content=body, headers=MULTIPART)
        missing = client.post(
            "/files", content=multipart(part("doc", b"x", "d")), headers=MULTIPART
        )
    assert response.status_code == 200
    assert response.json() == {
        "doc": ["d.txt", "hello"],
        "raw": "bytes!",
        "many": ["m1", "m2"],
        "implicit": "i.txt",
        "maybe": None,
    }
    assert missing.status_code == 422
    assert [e["loc"] for e in missing.json()["detail"]] == [
        ["body", "raw"],
        ["body", "many"],
        ["body", "implicit"],
    ]


def test_form_data_get_str_skips_files() -> None:
    app = App()

    @app.post("/")
    async def handler(request: Request) -> list[Any]:
        form = await request.form()
        return [form.get_str("f"), form.get_str("t"), form.get_str("nope", "dflt"), len(form)]

    body = multipart(part("f", b"x", "f.txt"), part("t", b"text"))
    with app.test_client() as client:
        response = client.post("/", content=body, headers=MULTIPART)
    assert response.json() == [None, "text", "dflt", 2]


def test_empty_file_input_counts_as_no_file() -> None:
    # What a browser sends for <input type=file> left empty.
    body = multipart(part("doc", b"", "", "application/octet-stream"), part("t", b"x"))
    app = App()

    @app.post("/optional")
    async def optional(
        t: Annotated[str, FormParam()], doc: Annotated[UploadFile | None, File()] = None
    ) -> dict[str, Any]:
        return {"t": t, "doc": doc}

    @app.post("/required")
    async def required(doc: UploadFile) -> str:
        return "unreachable"

    with app.test_client() as client:
        ok = client.post("/optional", content=body, headers=MULTIPART)
        missing = client.post("/required", content=body, headers=MULTIPART)
    with form_app().test_client() as client:
        raw = client.post("/form", content=body, headers=MULTIPART)
    assert ok.json() == {"t": "x", "doc": None}
    assert missing.status_code == 422
    assert [e["loc"] for e in missing.json()["detail"]] == [["body", "doc"]]
    assert raw.json() == [["doc", ""], ["t", "x"]]
    # A file with a name but no content is still a file.
    named = multipart(part("doc", b"", "empty.txt"))
    with form_app().test_client() as client:
        response = client.post("/form", content=named, headers=MULTIPART)
    assert response.json()[0][1]["filename"] == "empty.txt"


def test_uploads_are_closed_when_sending_fails() -> None:
    app = App()
    kept: list[UploadFile] = []

    @app.post("/")
    async def handler(doc: UploadFile) -> str:
        kept.append(doc)
        return "ok"

    body = multipart(part("doc", b"abc", "a"))
    scope = {
        "type": "http",
        "method": "POST",
        "scheme": "http",
        "path": "/",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"localhost"),
            (b"content-type", MULTIPART["Content-Type"].encode()),
        ],
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        raise OSError("connection reset")

    with pytest.raises(OSError, match="connection reset"):
        asyncio.run(app(scope, receive, send))
    assert kept[0].file.closed


@pytest.mark.parametrize("length", [257, 300, 5000])
def test_overlong_boundary_is_a_client_error(length: int) -> None:
    boundary = "b" * length
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    body = f"--{boundary}\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--{boundary}--\r\n"
    with form_app().test_client() as client:
        response = client.post("/form", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Malformed multipart body: Boundary length")


def test_overlong_boundary_behind_the_csrf_check() -> None:
    # The CSRF check reads the form to find the token: a session-carrying POST reaches the
    # parser before any handler does (the attack hit /auth/login this way).
    from transom.security import CSRFToken, Security

    app = App(Settings(secret_key="multipart-tests-secret"))
    Security(app)

    @app.get("/token")
    async def token(value: CSRFToken) -> dict[str, str]:
        return {"token": value}

    @app.post("/login")
    async def login() -> dict[str, bool]:
        return {"ok": True}

    boundary = "b" * 300
    with app.test_client() as client:
        csrf = client.get("/token").json()["token"]
        body = (
            f"--{boundary}\r\nContent-Disposition: form-data; name=csrf_token\r\n\r\n{csrf}\r\n"
            f"--{boundary}--\r\n"
        )
        response = client.post(
            "/login",
            content=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
    assert response.status_code == 400
