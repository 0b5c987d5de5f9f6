"""Request ids and structured logs: the id on every line of a request (access, errors, the
app's own), taken from trusted proxies only, returned in the response; JSON and text lines."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator

import pytest

from transom import App, Settings
from transom.logs import (
    JSONFormatter,
    RequestIdFilter,
    TextFormatter,
    configure_logging,
    current_request_id,
)
from transom.security import Security, SecurityConfig

log = logging.getLogger("tests.logs")


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.addFilter(RequestIdFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def collected() -> Iterator[Collect]:
    handler = Collect()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def _app(**options: object) -> App:
    app = App(Settings(secret_key="k" * 50, **options))  # type: ignore[arg-type]

    @app.get("/hello")
    async def hello() -> dict[str, str | None]:
        log.info("saying hello")
        return {"id": current_request_id()}

    @app.get("/sync")
    def sync() -> str:
        log.info("in a thread")  # the thread pool carries the context over
        return "ok"

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom")

    return app


def test_each_request_gets_an_id_returned_in_the_response() -> None:
    with _app().test_client() as client:
        first = client.get("/hello")
        second = client.get("/hello")
        forged = client.get("/hello", headers={"X-Request-ID": "chosen-by-client"})
    ids = [r.headers["x-request-id"] for r in (first, second, forged)]
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert len(set(ids)) == 3
    assert first.json() == {"id": ids[0]}  # the handler sees the same id
    assert ids[2] != "chosen-by-client"  # not from an untrusted client


def test_the_id_of_a_trusted_proxy_is_kept() -> None:
    app = _app()
    app.install(Security(SecurityConfig(trusted_proxies=["127.0.0.1"])))
    with app.test_client() as client:
        kept = client.get("/hello", headers={"X-Request-ID": "lb-4f2a.9"})
        insane = client.get("/hello", headers={"X-Request-ID": 'a b"<script>'})
    with app.test_client(client_address=("203.0.113.7", 4000)) as client:
        outsider = client.get("/hello", headers={"X-Request-ID": "lb-4f2a.9"})
    assert kept.headers["x-request-id"] == "lb-4f2a.9"
    assert kept.json() == {"id": "lb-4f2a.9"}
    assert len(insane.headers["x-request-id"]) == 32
    assert outsider.headers["x-request-id"] != "lb-4f2a.9"


def test_every_line_of_a_request_carries_its_id(collected: Collect) -> None:
    with _app().test_client() as client:
        hello = client.get("/hello")
        sync = client.get("/sync")
        boom = client.get("/boom")
    by_id: dict[str, list[str]] = {}
    for record in collected.records:
        by_id.setdefault(record.request_id, []).append(record.name)  # type: ignore[attr-defined]
    assert sorted(by_id[hello.headers["x-request-id"]]) == ["tests.logs", "transom.access"]
    assert sorted(by_id[sync.headers["x-request-id"]]) == ["tests.logs", "transom.access"]
    assert sorted(by_id[boom.headers["x-request-id"]]) == ["transom.access", "transom.error"]
    # The 500 page and its log line name the same id as the response header.
    assert boom.status_code == 500
    assert boom.json()["request_id"] == boom.headers["x-request-id"]
    assert len(boom.headers.get_list("x-request-id")) == 1


def test_json_lines(collected: Collect) -> None:
    with _app().test_client() as client:
        hello = client.get("/hello?x=1")
        client.get("/boom")
    formatter = JSONFormatter()
    lines = [json.loads(formatter.format(r)) for r in collected.records]
    access = next(line for line in lines if line["logger"] == "transom.access")
    assert access["request_id"] == hello.headers["x-request-id"]
    assert access["level"] == "INFO"
    assert access["method"] == "GET"
    assert access["path"] == "/hello"
    assert access["status"] == 200
    assert access["duration_ms"] >= 0
    assert access["time"].endswith("Z")
    error = next(line for line in lines if line["logger"] == "transom.error")
    assert error["level"] == "ERROR"
    assert "RuntimeError: kaboom" in error["exception"]
    # extra= fields become keys; a record's own request_id (a task's) is kept.
    record = logging.makeLogRecord({"msg": "x", "task_id": "t1", "request_id": "r1"})
    assert json.loads(formatter.format(record))["task_id"] == "t1"
    assert json.loads(formatter.format(record))["request_id"] == "r1"


def test_text_lines() -> None:
    record = logging.makeLogRecord({"msg": "hello %s", "args": ("you",), "name": "app"})
    RequestIdFilter().filter(record)
    assert TextFormatter().format(record).endswith(" app: hello you [-]")


def test_configure_logging_leaves_a_configured_project_alone(collected: Collect) -> None:
    # The root logger has a handler (the fixture's): nothing is added.
    assert configure_logging(Settings(log_format="json")) is False
    assert logging.getLogger().handlers.count(collected) == 1


def test_request_ids_can_be_turned_off() -> None:
    with _app(request_id_header="").test_client() as client:
        response = client.get("/hello")
    assert "x-request-id" not in response.headers
    assert response.json() == {"id": None}


# -- the app's own request path (no middleware, no access log): ids without a middleware -----


def test_ids_on_the_direct_path_are_fresh_and_returned_once(collected: Collect) -> None:
    app = _app(access_log=False)
    sub = App(Settings(access_log=False, allowed_hosts=["testserver"]))

    @sub.get("/inner")
    async def inner() -> dict[str, str | None]:
        return {"id": current_request_id()}

    app.mount("/sub", sub)
    with app.test_client() as client:
        hello = [client.get("/hello") for _ in range(3)]
        boom = client.get("/boom")
        missing = client.get("/nope")
        mounted = client.get("/sub/inner")
    ids = [r.headers["x-request-id"] for r in hello]
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert len(set(ids)) == 3
    assert [r.json() for r in hello] == [{"id": i} for i in ids]
    # The 500 page names its id itself: the header is sent once, with the same id.
    assert boom.json()["request_id"] == boom.headers["x-request-id"]
    assert len(boom.headers.get_list("x-request-id")) == 1
    error = next(r for r in collected.records if r.name == "transom.error")
    assert error.request_id == boom.headers["x-request-id"]  # type: ignore[attr-defined]
    assert missing.status_code == 404
    assert len(missing.headers["x-request-id"]) == 32
    # A mounted app answers for itself; it gets the mounting app's id, in its header once.
    assert mounted.json() == {"id": mounted.headers["x-request-id"]}
    assert len(mounted.headers.get_list("x-request-id")) == 1
    assert current_request_id() is None  # nothing left behind after the requests


def test_the_direct_path_keeps_a_trusted_proxys_id_only() -> None:
    app = _app(access_log=False, request_id_header="X-Correlation-ID")
    app.install(Security(SecurityConfig(trusted_proxies=["127.0.0.0/8"])))
    with app.test_client() as client:
        kept = client.get("/hello", headers={"X-Correlation-ID": "lb-4f2a.9"})
        insane = client.get("/hello", headers={"X-Correlation-ID": "a" * 129})
        again = client.get("/hello", headers={"X-Correlation-ID": "lb-77"})
    with app.test_client(client_address=("203.0.113.7", 4000)) as client:
        outsider = client.get("/hello", headers={"X-Correlation-ID": "lb-4f2a.9"})
    assert kept.headers["x-correlation-id"] == "lb-4f2a.9" == kept.json()["id"]
    assert again.headers["x-correlation-id"] == "lb-77"
    assert len(insane.headers["x-correlation-id"]) == 32
    assert outsider.headers["x-correlation-id"] != "lb-4f2a.9"
    assert "x-request-id" not in kept.headers


def test_a_middleware_sees_the_id_and_its_own_answers_carry_it() -> None:
    from transom._types import Receive, Scope, Send

    seen: list[object] = []

    class Teapot:
        def __init__(self, app: object) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            seen.append(scope.get("transom.request_id"))
            if scope["path"] == "/teapot":
                await send({"type": "http.response.start", "status": 418, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
            await self.app(scope, receive, send)  # type: ignore[operator]

    app = _app(access_log=False)
    app.add_middleware(Teapot)
    with app.test_client() as client:
        teapot = client.get("/teapot")
        hello = client.get("/hello")
    assert seen == [teapot.headers["x-request-id"], hello.headers["x-request-id"]]
    assert hello.json() == {"id": hello.headers["x-request-id"]}
    assert len(hello.headers.get_list("x-request-id")) == 1


def test_a_forked_worker_never_hands_out_its_parents_ids() -> None:
    from transom.logs import new_request_id

    new_request_id()  # the parent's pool is filled
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, then exit without running pytest's teardown
        os.close(read)
        os.write(write, " ".join(new_request_id() for _ in range(600)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split())
    os.waitpid(pid, 0)
    parent = {new_request_id() for _ in range(600)}
    assert len(child) == 600  # past a refill of the pool, too
    assert len(parent) == 600
    assert not child & parent
