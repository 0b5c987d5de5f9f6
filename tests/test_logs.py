"""Request ids and structured logs: the id on every line of a request (access, errors, the
app's own), taken from trusted proxies only, returned in the response; JSON and text lines."""

from __future__ import annotations

import json
import logging
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
