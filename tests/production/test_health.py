"""The Health battery on the real servers: /healthz, /readyz, and outages of each part (a cut
TCP proxy between the app and the shared server)."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from _services import TcpProxy
from transom import App, Settings
from transom.cache import Cache, CacheConfig
from transom.db import Database, DatabaseConfig
from transom.db.migrations import Migrations
from transom.health import Health, HealthConfig, NotReady
from transom.security import Security, limit
from transom.tasks import Tasks, TasksConfig

from .conftest import AMQP_URL, REDIS_URL

pytestmark = pytest.mark.anyio


class Base(DeclarativeBase):
    pass


class Widget(Base):
    __tablename__ = "health_widget"
    id: Mapped[int] = mapped_column(primary_key=True)


def through(url: str, proxy: TcpProxy) -> str:
    parts = urlsplit(url)
    user = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return parts._replace(netloc=f"{user}127.0.0.1:{proxy.port}").geturl()


def _app(**settings: object) -> App:
    return App(Settings(secret_key="k" * 50, **settings))  # type: ignore[arg-type]


def test_healthz_answers_and_is_left_out_of_the_access_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = _app()
    Health(app)

    @app.get("/")
    def home() -> str:
        return "home"

    with app.test_client() as client, caplog.at_level(logging.INFO, "transom.access"):
        live = client.get("/healthz")
        ready = client.get("/readyz")  # nothing to check: ready
        client.get("/")
    assert live.status_code == 200
    assert live.json() == {"status": "ok"}
    assert live.headers["cache-control"] == "no-store"
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {}}
    logged = [r.getMessage() for r in caplog.records if r.name == "transom.access"]
    assert len(logged) == 1
    assert '"GET / HTTP/1.1" 200' in logged[0]


def test_probes_skip_rate_limits_sessions_and_the_host_check() -> None:
    app = _app()
    Security(app)
    Health(app)
    limit("2/minute")(app)  # every route of the app shares this budget

    @app.get("/")
    def home() -> str:
        return "home"

    with app.test_client() as client:
        assert [client.get("/").status_code for _ in range(3)] == [200, 200, 429]
        for _ in range(5):
            response = client.get("/readyz")
            assert response.status_code == 200
            assert "set-cookie" not in response.headers
        # A load balancer probes with the backend's address as Host.
        assert client.get("/healthz", headers={"Host": "10.1.2.3:8000"}).status_code == 200
        assert client.get("/", headers={"Host": "10.1.2.3:8000"}).status_code == 400
        refused = client.post("/healthz")
        assert refused.status_code == 405
        assert refused.headers["allow"] == "GET, HEAD"
        assert client.head("/readyz").status_code == 200


async def test_ready_with_the_real_database_cache_and_broker(
    pg_url: str, redis_required: None, amqp_required: None, prefix: str
) -> None:
    app = _app()
    app.install(Database(DatabaseConfig(url=pg_url), metadata=MetaData()))
    Cache(app, CacheConfig(url=REDIS_URL, key_prefix=prefix))
    Tasks(app, TasksConfig(broker_url=AMQP_URL, prefix=prefix))
    health = Health(app)
    try:
        assert await health.readiness() == {
            "database": "ok",
            "cache": "ok",
            "tasks": "ok",
            "migrations": "ok",
        }
    finally:
        await Database.of(app).dispose()
        await Cache.of(app).close()


async def test_a_database_outage_is_a_503_naming_it(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    target = urlsplit(pg_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await proxy.start()
    app = _app()
    config = DatabaseConfig(url=through(pg_url, proxy), connect_timeout=2)
    app.install(Database(config, metadata=MetaData()))
    Health(app, HealthConfig(retry_after=7))
    caplog.set_level(logging.WARNING, "transom.health")
    async with app.async_test_client() as client:
        assert (await client.get("/readyz")).status_code == 200
        await proxy.cut()
        down = await client.get("/readyz")
        again = await client.get("/readyz")
        live = await client.get("/healthz")
        await proxy.restore()
        back = await client.get("/readyz")
    await proxy.cut()
    assert down.status_code == 503
    assert down.headers["retry-after"] == "7"
    assert down.json() == {
        "status": "unavailable",
        "failing": ["database", "migrations"],
        "checks": {"database": "error", "migrations": "unknown"},
    }
    assert again.status_code == 503
    assert live.status_code == 200  # alive: restarting the process would not help
    assert back.status_code == 200
    messages = [r.getMessage() for r in caplog.records if r.name == "transom.health"]
    # Once per outage, with its cause, and once when it is over.
    assert len([m for m in messages if m.startswith("Not ready: database")]) == 1
    assert any("Ready again: database" in m for m in messages)


async def test_a_cache_outage_and_a_broker_outage(
    redis_required: None, amqp_required: None, prefix: str
) -> None:
    redis_proxy = TcpProxy("127.0.0.1", 6379)
    amqp_proxy = TcpProxy("127.0.0.1", 5672)
    await redis_proxy.start()
    await amqp_proxy.start()
    app = _app()
    Cache(app, CacheConfig(url=through(REDIS_URL, redis_proxy), key_prefix=prefix))
    Tasks(app, TasksConfig(broker_url=through(AMQP_URL, amqp_proxy), prefix=prefix))
    health = Health(app, HealthConfig(timeout=2))
    try:
        assert await health.readiness() == {"cache": "ok", "tasks": "ok"}
        await redis_proxy.cut()
        assert await health.readiness() == {"cache": "error", "tasks": "ok"}
        await amqp_proxy.cut()
        assert await health.readiness() == {"cache": "error", "tasks": "error"}
        await redis_proxy.restore()
        await amqp_proxy.restore()
        assert await health.readiness() == {"cache": "ok", "tasks": "ok"}
    finally:
        await Cache.of(app).close()
        await redis_proxy.cut()
        await amqp_proxy.cut()


async def test_pending_migrations_are_not_ready(pg_url: str, tmp_path: Path) -> None:
    directory = tmp_path / "migrations"
    url = pg_url
    migrations = Migrations(Database(DatabaseConfig(url=url), metadata=Base.metadata), directory)
    assert migrations.make("widget") is not None
    app = _app()
    app.install(Database(DatabaseConfig(url=url, migrations_dir=directory), metadata=Base.metadata))
    Health(app)
    async with app.async_test_client() as client:
        pending = await client.get("/readyz")
        migrations.upgrade()
        ready = await client.get("/readyz")
    assert pending.status_code == 503
    assert pending.json()["failing"] == ["migrations"]
    assert pending.json()["checks"]["migrations"] == "pending"
    assert ready.status_code == 200
    migrations.downgrade("base")


async def test_custom_checks_and_timeouts() -> None:
    app = _app()

    async def search() -> None:
        raise NotReady("reindexing", "the search index is being rebuilt")

    async def slow() -> None:
        import asyncio

        await asyncio.Event().wait()  # never answers

    health = Health(app, HealthConfig(checks={"search": search}, timeout=0.2))
    health.add_check("slow", slow)
    async with app.async_test_client() as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"search": "reindexing", "slow": "timeout"}
    # The cause stays in the log: the body names the part, never the details.
    assert "rebuilt" not in response.text
