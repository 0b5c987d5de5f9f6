"""A database that goes away answers 503 + Retry-After, and the pool heals when it returns.

The outage is real at the network level: the app talks to PostgreSQL/MariaDB through a local
TCP proxy that the test cuts (closing the listener and every open connection) and restores.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from _services import TcpProxy
from transom import App, Settings
from transom.db import DatabaseConfig, Session, setup

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["postgresql", "mariadb"])
def server_url(request: pytest.FixtureRequest, servers: Any) -> str:
    url: str = servers.url(request.param)
    return url


async def test_outage_gives_503_and_pool_recovers(server_url: str) -> None:
    proxy, app = await ping_app_behind_proxy(server_url, retry_after=7)

    async with app.async_test_client() as client:
        assert (await client.get("/ping")).json() == {"one": 1}  # a pooled connection exists

        await proxy.cut()
        for _ in range(2):  # the stale pooled connection, then a refused new one
            started = time.monotonic()
            r = await client.get("/ping")
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"] == "7"
            assert time.monotonic() - started < 5

        await proxy.restore()
        r = await client.get("/ping")
        assert r.status_code == 200, r.text
        assert r.json() == {"one": 1}
    await proxy.cut()


async def test_exhausted_pool_gives_503(server_url: str) -> None:
    app = App(Settings(secret_key="test-secret"))
    config = DatabaseConfig(url=server_url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    database = setup(app, config)

    @app.get("/ping")
    async def ping(db: Session) -> dict[str, Any]:
        return {"one": (await db.execute(select(1))).scalar_one()}

    async with app.async_test_client() as client:
        async with database.engine.connect() as held:  # takes the only connection
            await held.execute(select(1))
            r = await client.get("/ping")
            assert r.status_code == 503
            assert "retry-after" in r.headers
        assert (await client.get("/ping")).status_code == 200


async def ping_app_behind_proxy(server_url: str, **config: Any) -> tuple[TcpProxy, App]:
    """An app with ``GET /ping`` whose database connections go through a cuttable proxy."""
    real = make_url(server_url)
    proxy = TcpProxy(real.host or "127.0.0.1", real.port or 0)
    await proxy.start()
    url = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    app = App(Settings(secret_key="test-secret"))
    setup(app, DatabaseConfig(url=url, connect_timeout=2, **config))

    @app.get("/ping")
    async def ping(db: Session) -> dict[str, Any]:
        return {"one": (await db.execute(select(1))).scalar_one()}

    return proxy, app


async def test_a_restart_while_idle_costs_no_request(server_url: str) -> None:
    """A pooled connection that sat idle through a restart is tested and replaced first."""
    proxy, app = await ping_app_behind_proxy(server_url, pool_ping_idle=0.2)
    async with app.async_test_client() as client:
        assert (await client.get("/ping")).status_code == 200  # a pooled connection exists
        await proxy.cut()  # the server "restarts": the pooled connection is dead
        await proxy.restore()
        await asyncio.sleep(0.3)  # idle for longer than pool_ping_idle
        r = await client.get("/ping")
        assert r.status_code == 200, r.text
    await proxy.cut()


async def test_a_busy_pool_is_not_pinged(server_url: str) -> None:
    """Connections reused within pool_ping_idle are not tested: the dead one fails once."""
    proxy, app = await ping_app_behind_proxy(server_url, pool_ping_idle=60)
    async with app.async_test_client() as client:
        assert (await client.get("/ping")).status_code == 200
        await proxy.cut()
        await proxy.restore()
        assert (await client.get("/ping")).status_code == 503  # no ping: the request sees it
        r = await client.get("/ping")  # ...and the pool replaced its connections
        assert r.status_code == 200, r.text
    await proxy.cut()
