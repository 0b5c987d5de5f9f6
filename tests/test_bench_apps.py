"""The bench apps do equal work: every framework answers every endpoint with the same bytes.

``bench/run.py`` measures these apps against each other; a framework that answered with an
error, a different body or skipped validation would look faster for the wrong reason. Peer
frameworks that are not installed are skipped (``pip install -e '.[bench]'`` installs them).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # bench/ is not an installed package
    sys.path.insert(0, str(ROOT))


class Case(NamedTuple):
    module: str
    requires: str | None
    wsgi: bool


CASES = {
    "raw": Case("bench.apps.raw_asgi", None, wsgi=False),
    "transom": Case("bench.apps.transom_app", "transom", wsgi=False),
    "transom-secure": Case("bench.apps.transom_secure_app", "transom", wsgi=False),
    "starlette": Case("bench.apps.starlette_app", "starlette", wsgi=False),
    "fastapi": Case("bench.apps.fastapi_app", "fastapi", wsgi=False),
    "litestar": Case("bench.apps.litestar_app", "litestar", wsgi=False),
    "flask": Case("bench.apps.flask_app", "flask", wsgi=True),
    "django": Case("bench.apps.django_app", "django", wsgi=True),
}

BASE_URL = "http://127.0.0.1"
TYPED_URL = "/typed/42?q=hello&limit=3"
TYPED_BODY = b'{"name":"Widget","price":9.5,"tags":["a","b"]}'
JSON_HEADERS = {"content-type": "application/json"}

Answer = tuple[int, str, bytes]


def load(name: str) -> Any:
    case = CASES[name]
    if case.requires is not None:
        pytest.importorskip(case.requires)
    return importlib.import_module(case.module)


@contextlib.asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """Run the ASGI lifespan protocol around the requests, as a server would."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def receive() -> dict[str, Any]:
        return await inbox.get()

    async def send(message: dict[str, Any]) -> None:
        await outbox.put(message)

    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
    task = asyncio.ensure_future(app(scope, receive, send))
    await inbox.put({"type": "lifespan.startup"})
    started = await asyncio.wait_for(outbox.get(), 10)
    assert started["type"] == "lifespan.startup.complete", started
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        stopped = await asyncio.wait_for(outbox.get(), 10)
        assert stopped["type"] == "lifespan.shutdown.complete", stopped
        await asyncio.wait_for(task, 10)


def call(app: Any, wsgi: bool, requests: list[tuple[str, str, bytes | None]]) -> list[Answer]:
    """Send ``(method, url, body)`` requests in order; answer ``(status, content-type, body)``."""

    def answer(response: httpx.Response) -> Answer:
        # Flask ends its JSON with a newline; the bytes are otherwise identical.
        body = response.content.rstrip(b"\n")
        return response.status_code, response.headers.get("content-type", ""), body

    if wsgi:
        with httpx.Client(transport=httpx.WSGITransport(app=app), base_url=BASE_URL) as client:
            return [
                answer(client.request(m, u, content=b, headers=JSON_HEADERS if b else None))
                for m, u, b in requests
            ]

    async def run() -> list[Answer]:
        transport = httpx.ASGITransport(app=app)
        async with lifespan(app), httpx.AsyncClient(transport=transport, base_url=BASE_URL) as c:
            return [
                answer(await c.request(m, u, content=b, headers=JSON_HEADERS if b else None))
                for m, u, b in requests
            ]

    return asyncio.run(run())


@pytest.mark.parametrize("name", list(CASES))
def test_main_app(name: str) -> None:
    module = load(name)
    plaintext, json_, typed, bad_body, no_limit = call(
        module.app,
        CASES[name].wsgi,
        [
            ("GET", "/plaintext", None),
            ("GET", "/json", None),
            ("POST", TYPED_URL, TYPED_BODY),
            ("POST", TYPED_URL, b'{"name":"Widget","price":"lots"}'),
            ("POST", "/typed/42?q=hello", TYPED_BODY),
        ],
    )
    assert plaintext[0] == 200
    assert plaintext[1].startswith("text/plain")
    assert plaintext[2] == b"Hello, World!"
    assert json_[0] == 200
    assert json_[1].startswith("application/json")
    assert json_[2] == b'{"message":"Hello, World!"}'
    assert typed[0] == 200
    assert typed[1].startswith("application/json")
    assert typed[2] == b'{"item_id":42,"q":"hello","limit":3,"name":"Widget","total":28.5}'
    # The body and the query are really validated (Litestar answers 400, the others 422).
    assert bad_body[0] in (400, 422)
    assert no_limit[0] in (400, 422)


@pytest.mark.parametrize("name", ["raw", "transom", "transom-secure", "starlette"])
def test_html(name: str) -> None:
    (page,) = call(load(name).app, CASES[name].wsgi, [("GET", "/html", None)])
    assert page == (200, page[1], b"<!doctype html><title>Hello</title><p>Hello, World!</p>")
    assert page[1].startswith("text/html")


@pytest.mark.parametrize("count", [10, 1000])
@pytest.mark.parametrize("name", list(CASES))
def test_routes_app(name: str, count: int) -> None:
    module = load(name)
    last = count - 1
    first_answer, last_answer, missing = call(
        getattr(module, f"routes_{count}"),
        CASES[name].wsgi,
        [("GET", "/r0/7", None), (("GET", f"/r{last}/42", None)), ("GET", f"/r{count}/42", None)],
    )
    assert first_answer == (200, first_answer[1], b'{"route":0,"id":7}')
    assert first_answer[1].startswith("application/json")
    assert last_answer[0] == 200
    assert last_answer[2] == f'{{"route":{last},"id":42}}'.encode()
    assert missing[0] == 404


# -- TechEmpower database apps (need bench/tfb/setup_postgres.sh on the local PostgreSQL) ------
TFB = {
    "raw": Case("bench.apps.tfb_raw", "asyncpg", wsgi=False),
    "transom": Case("bench.apps.tfb_transom", "sqlalchemy", wsgi=False),
    "fastapi": Case("bench.apps.tfb_fastapi", "fastapi", wsgi=False),
    "django": Case("bench.apps.tfb_django", "django", wsgi=True),
}
FORTUNE_IDS = [11, 4, 5, 2, 8, 0, 3, 7, 10, 6, 9, 1, 12]


def tfb_database() -> Any:
    """The ``bench.apps.tfb_common`` module once the TechEmpower database answers, else skip."""
    asyncpg = pytest.importorskip("asyncpg")
    pytest.importorskip("jinja2")
    common = importlib.import_module("bench.apps.tfb_common")

    async def probe() -> None:
        conn = await asyncpg.connect(common.DATABASE_URL, timeout=2)
        await conn.close()

    try:
        asyncio.run(probe())
    except (OSError, asyncpg.PostgresError) as exc:  # TimeoutError is an OSError
        pytest.skip(f"TechEmpower database not reachable ({exc}): run bench/tfb/setup_postgres.sh")
    return common


def db_rows(url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    asyncpg = importlib.import_module("asyncpg")

    async def fetch() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(url, timeout=5)
        try:
            return [tuple(r) for r in await conn.fetch(sql, *args)]
        finally:
            await conn.close()

    return asyncio.run(fetch())


@pytest.mark.parametrize("name", list(TFB))
def test_tfb_app(name: str) -> None:
    common = tfb_database()
    case = TFB[name]
    pytest.importorskip(case.requires or "asyncpg")
    module = importlib.import_module(case.module)
    one, three, junk, zero, many, fortunes, updates = call(
        module.app,
        case.wsgi,
        [
            ("GET", "/db", None),
            ("GET", "/queries?queries=3", None),
            ("GET", "/queries?queries=abc", None),
            ("GET", "/queries?queries=0", None),
            ("GET", "/queries?queries=501", None),
            ("GET", "/fortunes", None),
            ("GET", "/updates?queries=5", None),
        ],
    )
    loads = json.loads
    row = loads(one[2])
    assert one[0] == 200
    assert one[1].startswith("application/json")
    assert set(row) == {"id", "randomNumber"}
    assert 1 <= row["id"] <= 10000
    assert [len(loads(a[2])) for a in (three, junk, zero, many)] == [3, 1, 1, 500]
    # The fortunes page is byte-for-byte what the shared template makes from the table.
    expected = common.render_fortunes(
        db_rows(common.DATABASE_URL, "SELECT id, message FROM fortune")
    )
    assert fortunes[1] == "text/html; charset=utf-8"
    assert fortunes[2].decode() == expected
    assert [int(i) for i in re.findall(r"<tr><td>(\d+)</td>", expected)] == FORTUNE_IDS
    # Updates are committed before the response: the database holds the numbers returned.
    changed = {r["id"]: r["randomNumber"] for r in loads(updates[2])}
    assert updates[0] == 200
    assert len(loads(updates[2])) == 5
    stored = db_rows(
        common.DATABASE_URL, "SELECT id, randomnumber FROM world WHERE id = ANY($1)", list(changed)
    )
    assert dict(stored) == changed


def bench_table(script: str, *args: str) -> list[list[str]]:
    """Run ``bench/<script>`` with ``args`` (it must succeed) and return the data rows of the
    Markdown table it prints, each as its cells (stripped of spaces and backquotes)."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert lines, result.stdout[-2000:]
    return [[cell.strip(" `") for cell in line.split("|")[1:-1]] for line in lines[1:]]


def test_db_layers_script() -> None:
    """``bench/db_layers.py``: every layer variant answers a World row, and the table lists them."""
    tfb_database()
    # Each variant's first request is checked like the /db endpoint's (a JSON World row):
    # a variant that answered anything else would stop the script.
    rows = bench_table("db_layers.py", "--requests", "64", "--rounds", "1", "--concurrency", "8")
    assert [row[0] for row in rows] == [
        "raw asyncpg (floor)",
        "/layer/driver",
        "/layer/core",
        "/layer/orm",
        "/layer/dependency",
        "/db",
    ]
    assert all(float(row[2]) > 0 for row in rows)


def test_tfb_layers_script() -> None:
    """``bench/tfb_layers.py``: every variant answers what its endpoint must, and is listed."""
    tfb_database()
    # Each variant's first request is checked like its endpoint's (the fortunes page, 20
    # World rows): a variant that answered anything else would stop the script.
    rows = bench_table("tfb_layers.py", "--requests", "16", "--rounds", "1", "--concurrency", "4")
    names = [row[0] for row in rows]
    assert names[0] == "raw fortunes"
    assert {"/fortunes", "/queries", "/updates", "/layer/updates/orm-bulk"} <= set(names)
    assert all(float(row[2]) > 0 for row in rows)


def test_tasks_enqueue_script() -> None:
    """``bench/tasks_enqueue.py``: every candidate publishes for real, and the table lists them."""
    from _services import require_service

    require_service("RabbitMQ", "127.0.0.1", 5672)
    require_service("Redis", "127.0.0.1", 6379)
    rows = bench_table("tasks_enqueue.py", "--enqueues", "100", "--rounds", "1")
    assert [row[0] for row in rows] == [
        "RabbitMQ: transom",
        "RabbitMQ: raw aio-pika, confirmed",
        "RabbitMQ: raw aio-pika, no confirm",
        "Redis: transom",
        "Redis: raw redis-py XADD",
    ]
    assert all(float(row[1]) > 0 and float(row[2]) > 0 for row in rows)
