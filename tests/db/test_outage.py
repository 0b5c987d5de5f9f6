"""A database that goes away answers 503 + Retry-After, and the pool heals when it returns.

The outage is real at the network level: the app talks to PostgreSQL/MariaDB through a local
TCP proxy that the test cuts (closing the listener and every open connection) and restores.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import anyio
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from _services import TcpProxy
from transom import App, Settings
from transom.db import Database, DatabaseConfig, DbSessionDep

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
    database = app.install(Database(config))

    @app.get("/ping")
    async def ping(db: DbSessionDep) -> dict[str, Any]:
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
    app.install(Database(DatabaseConfig(url=url, **{"connect_timeout": 2, **config})))

    @app.get("/ping")
    async def ping(db: DbSessionDep) -> dict[str, Any]:
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


# Generous: a hang fails the test instead of stalling the run. Not a timing assertion: the
# configured timeouts are far below it.
HANG_GUARD = 60


async def test_a_frozen_database_answers_503_instead_of_hanging(
    servers: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A server that accepts but never answers: the statement timeout ends the wait."""
    # aiomysql has no read timeout (MariaDB's server-side max_statement_time can't help a
    # server that doesn't answer), so this is PostgreSQL's.
    proxy, app = await ping_app_behind_proxy(
        servers.url("postgresql"), command_timeout=0.5, connect_timeout=0.5, retry_after=3
    )
    with anyio.fail_after(HANG_GUARD):
        async with app.async_test_client() as client:
            assert (await client.get("/ping")).status_code == 200  # a pooled connection
            proxy.freeze()
            for _ in range(2):  # the pooled connection, then a new one that never answers
                caplog.clear()
                with caplog.at_level(logging.WARNING, logger="transom.db"):
                    r = await client.get("/ping")
                assert r.status_code == 503, r.text
                assert r.headers["retry-after"] == "3"
                # One line saying why, per request.
                [record] = [r for r in caplog.records if r.name == "transom.db"]
                assert record.levelno == logging.WARNING
                assert "unavailable" in record.getMessage()
                assert record.exc_info is None
            await proxy.cut()


async def test_a_slow_statement_answers_503_and_the_pool_stays_usable(server_url: str) -> None:
    """Past ``command_timeout`` a request answers 503; the next one is served normally."""
    proxy, app = await ping_app_behind_proxy(server_url, command_timeout=0.5)
    sleep = "SELECT pg_sleep(5)" if server_url.startswith("postgresql") else "SELECT SLEEP(5)"

    @app.get("/slow")
    async def slow(db: DbSessionDep) -> None:
        await db.execute(text(sleep))

    with anyio.fail_after(HANG_GUARD):
        async with app.async_test_client() as client:
            r = await client.get("/slow")
            assert r.status_code == 503, r.text
            assert "retry-after" in r.headers
            r = await client.get("/ping")
            assert r.status_code == 200, r.text
    await proxy.cut()


async def test_every_outage_503_is_logged_with_its_cause(
    server_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    proxy, app = await ping_app_behind_proxy(server_url)
    async with app.async_test_client() as client:
        assert (await client.get("/ping")).status_code == 200
        await proxy.cut()
        for _ in range(2):
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="transom.db"):
                assert (await client.get("/ping")).status_code == 503
            [record] = [r for r in caplog.records if r.name == "transom.db"]
            assert record.levelno == logging.WARNING
            assert record.exc_info is None
            assert ":" in record.getMessage().partition("503:")[2]  # "<Error>: <reason>"


def test_command_timeout_reaches_the_drivers() -> None:
    """Requests' engines get the statement timeout; migrations' (pooled=False) don't."""
    from transom.db.config import engine_kwargs

    config = DatabaseConfig(url="postgresql://x@h/db", command_timeout=7)
    for backend, url in {
        "postgresql": "postgresql+asyncpg://x@h/db",
        "mariadb": "mysql+aiomysql://x@h/db",
    }.items():
        pooled = engine_kwargs(config, make_url(url), is_async=True)["connect_args"]
        one_off = engine_kwargs(config, make_url(url), is_async=True, pooled=False)
        if backend == "postgresql":
            assert pooled["command_timeout"] == 7
        assert "command_timeout" not in one_off["connect_args"]
    sync_pg = engine_kwargs(config, make_url("postgresql+psycopg://x@h/db"), is_async=False)
    assert sync_pg["connect_args"]["options"] == "-c statement_timeout=7000"
    sync_my = engine_kwargs(config, make_url("mysql+pymysql://x@h/db"), is_async=False)
    assert sync_my["connect_args"]["read_timeout"] == 7
    off = DatabaseConfig(url="postgresql://x@h/db", command_timeout=0)
    kwargs = engine_kwargs(off, make_url("postgresql+asyncpg://x@h/db"), is_async=True)
    assert "command_timeout" not in kwargs["connect_args"]


def test_command_timeout_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSOM_DATABASE_COMMAND_TIMEOUT", "2.5")
    assert DatabaseConfig().command_timeout == 2.5
    assert DatabaseConfig(url="sqlite://").command_timeout == 2.5
