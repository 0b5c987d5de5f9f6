"""The Metrics battery: what is counted, who may read it, the database pools, and every worker
of a real `transom run --workers 2` counted together (prometheus-client's multiprocess mode)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import MetaData, text

from test_cli import _free_port, serving
from transom import App, Settings
from transom.cache import Cache, CacheConfig
from transom.db import Database, DatabaseConfig, DbSessionDep
from transom.health import Health
from transom.metrics import Metrics, MetricsConfig
from transom.tasks import Tasks, TasksConfig, task

pytestmark = pytest.mark.anyio


def samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _app(**config: object) -> App:
    app = App(Settings(secret_key="k" * 50))
    Health(app)
    Metrics(app, MetricsConfig(**config))  # type: ignore[arg-type]

    @app.get("/items/{item_id:int}")
    def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("boom")

    return app


def test_requests_are_counted_by_route_template_method_and_status(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = _app()
    with app.test_client() as client, caplog.at_level(logging.INFO, "transom.access"):
        for n in range(3):
            client.get(f"/items/{n}")
        client.get("/boom")
        client.get("/nowhere/1")
        client.get("/nowhere/2")
        client.request("BREW", "/items/1")
        client.post("/items/1")
        client.get("/healthz")  # probes are not traffic: not counted
        client.get("/readyz")
        body = client.get("/metrics")
    assert body.status_code == 200
    assert body.headers["content-type"].startswith("text/plain; version=")
    found = samples(body.text)

    def count(method: str, route: str, status: str) -> float:
        labels = (("method", method), ("route", route), ("status", status))
        return found.get(("transom_http_requests_total", labels), 0)

    assert count("GET", "/items/{item_id:int}", "200") == 3
    assert count("GET", "/boom", "500") == 1
    assert count("GET", "<unmatched>", "404") == 2  # never the raw path: bounded labels
    assert count("other", "/items/{item_id:int}", "405") == 1
    assert count("POST", "/items/{item_id:int}", "405") == 1
    bucket = (("le", "+Inf"), ("method", "GET"), ("route", "/items/{item_id:int}"))
    assert found[("transom_http_request_duration_seconds_bucket", bucket)] == 3
    assert found[("transom_http_requests_in_progress", ())] == 0
    # The scrape is neither counted in the access log nor by itself.
    logged = [r.getMessage() for r in caplog.records if r.name == "transom.access"]
    assert not any("/metrics" in line for line in logged)
    assert not any(("route", "/metrics") in labels for _, labels in found)
    total = sum(v for (name, _), v in found.items() if name == "transom_http_requests_total")
    assert total == 8  # the eight requests above the probes


def test_only_loopback_or_a_token_may_read_them() -> None:
    app = _app(token="s3cret-token")
    with app.test_client(client_address=("203.0.113.9", 5000)) as outsider:
        assert outsider.get("/metrics").status_code == 403
        bad = outsider.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 403
        good = outsider.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
        assert good.status_code == 200
        assert "transom_http_requests_in_progress" in good.text
    with app.test_client() as local:
        assert local.get("/metrics").status_code == 200
        # Through a proxy on this machine every visitor would look local: not enough.
        proxied = local.get("/metrics", headers={"X-Forwarded-For": "198.51.100.4"})
        assert proxied.status_code == 403
        assert local.post("/metrics").status_code == 405
    no_token = _app(token=None)
    with no_token.test_client(client_address=("203.0.113.9", 5000)) as outsider:
        assert outsider.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 403


async def test_database_pool_use(pg_url: str) -> None:
    app = App(Settings(secret_key="k" * 50))
    config = DatabaseConfig(url=pg_url, pool_size=3, max_overflow=2)
    app.install(Database(config, metadata=MetaData()))
    metrics = Metrics(app)
    in_use = metrics.db_in_use.labels("primary")

    @app.get("/query")
    async def query(db: DbSessionDep) -> dict[str, float]:
        await db.execute(text("SELECT 1"))
        return {"in_use": in_use._value.get()}

    async with app.async_test_client() as client:
        during = (await client.get("/query")).json()["in_use"]
        both = await asyncio.gather(client.get("/query"), client.get("/query"))
        found = samples((await client.get("/metrics")).text)
    assert during == 1
    assert all(r.status_code == 200 for r in both)
    assert found[("transom_db_connections_in_use", (("database", "primary"),))] == 0
    assert found[("transom_db_pool_capacity", (("database", "primary"),))] == 5


APP = textwrap.dedent(
    """
    from transom import App
    from transom.metrics import Metrics

    app = App()
    Metrics(app)

    @app.get("/")
    def home():
        return "home"

    @app.get("/items/{item_id:int}")
    def item(item_id: int):
        return {"id": item_id}
    """
)


@pytest.mark.parametrize("server", ["granian", "uvicorn"])
def test_every_worker_counts(tmp_path: Path, server: str) -> None:
    (tmp_path / "app.py").write_text(APP)
    folder = tmp_path / "prometheus"
    folder.mkdir()
    (folder / "counter_999999.db").write_bytes(b"left by a previous run")
    port = _free_port()
    command = [sys.executable, "-m", "transom.cli", "run", "--port", str(port)]
    command += ["--workers", "2", "--server", server]
    env = {**os.environ, "TRANSOM_SECRET_KEY": "x" * 50, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    url = f"http://127.0.0.1:{port}"
    with serving(command, tmp_path, port, env=env):
        for n in range(40):
            # A new connection each time, so both workers take some.
            assert httpx.get(f"{url}/items/{n}", timeout=5).status_code == 200
        scrapes = [httpx.get(f"{url}/metrics", timeout=5).text for _ in range(6)]
        pids = {p.name.rsplit("_", 1)[-1] for p in folder.glob("counter_*.db")}
    labels = (("method", "GET"), ("route", "/items/{item_id:int}"), ("status", "200"))
    # Whichever worker answers the scrape reports every worker's requests.
    assert {samples(s)[("transom_http_requests_total", labels)] for s in scrapes} == {40.0}
    assert "999999.db" not in pids  # the stale file was removed at start
    assert len(pids) >= 2, pids  # both workers wrote their own counters


@task()
async def metrics_test_noop() -> None:
    """A task for the counters below."""


async def test_cache_and_task_counters() -> None:
    app = App(Settings(secret_key="k" * 50))
    cache = Cache(app, CacheConfig(url="memory://"))
    Tasks(app, TasksConfig(eager=True))
    Metrics(app)

    @app.get("/work")
    async def work() -> dict[str, bool]:
        await cache.get("missing")
        await cache.set("present", 1)
        await cache.get("present")
        await metrics_test_noop.enqueue()
        return {"ok": True}

    async with app.async_test_client() as client:
        assert (await client.get("/work")).status_code == 200
        found = samples((await client.get("/metrics")).text)
    assert found[("transom_cache_operations", (("result", "hit"),))] == 1
    assert found[("transom_cache_operations", (("result", "miss"),))] == 1
    assert found[("transom_cache_operations", (("result", "error"),))] == 0
    assert found[("transom_tasks", (("event", "enqueued"),))] == 1
    assert found[("transom_tasks", (("event", "succeeded"),))] == 1
