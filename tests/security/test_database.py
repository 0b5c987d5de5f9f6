"""Sessions in a SQL database through transom.db: SQLite, PostgreSQL and MariaDB (live servers).

Each server test creates its own throw-away database and drops it afterwards.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from _services import require_service
from transom.db import Database, DatabaseConfig
from transom.db.config import sync_url
from transom.security import SessionConfig
from transom.security.backends.database import DatabaseSessionBackend, session_table

from .conftest import AppFactory, fetch_token

SERVERS = {
    "postgresql": os.environ.get(
        "TRANSOM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
    ),
    "mariadb": os.environ.get("TRANSOM_TEST_MARIADB_URL", "mysql://root@127.0.0.1:3306/test"),
}


def _quote(backend: str, name: str) -> str:
    return f"`{name}`" if backend == "mariadb" else f'"{name}"'


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    backend = str(request.param)
    if backend == "sqlite":
        db = Database(DatabaseConfig(url=f"sqlite+aiosqlite:///{tmp_path / 'sessions.db'}"))
        yield db
        asyncio.run(db.dispose())
        return
    server = make_url(SERVERS[backend])
    require_service(backend, server.host or "127.0.0.1", server.port or 0)
    name = f"transom_sec_{uuid.uuid4().hex[:10]}"
    admin = create_engine(sync_url(SERVERS[backend]), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {_quote(backend, name)}"))
    db = Database(
        DatabaseConfig(url=server.set(database=name).render_as_string(hide_password=False))
    )
    try:
        yield db
    finally:
        asyncio.run(db.dispose())
        force = " WITH (FORCE)" if backend == "postgresql" else ""
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {_quote(backend, name)}{force}"))
        admin.dispose()


def test_database_session_round_trip(make_app: AppFactory, database: Database) -> None:
    config = SessionConfig(backend=DatabaseSessionBackend(database))
    app = make_app(sessions=config)
    app.on_shutdown(database.dispose)  # its pool lives on the test client's event loop
    with app.test_client() as client:
        key = client.get("/set?key=cart&value=3").json()["key"]
        client.get("/set?key=more&value=4")
        assert client.get("/session").json() == {"cart": "3", "more": "4"}
        assert "cart" not in str(client.cookies["session"])
        # The engine's pool lives on the client's event loop: query on that loop.
        assert client._loop.run(_keys(database)) == [key]


async def _keys(database: Database) -> list[str]:
    async with database.engine.connect() as conn:
        return [str(k) for k in (await conn.execute(select(session_table.c.key))).scalars()]


def test_database_login_cycles_key_and_logout_deletes(
    make_app: AppFactory, database: Database
) -> None:
    config = SessionConfig(backend=DatabaseSessionBackend(database))
    app = make_app(sessions=config)
    app.on_shutdown(database.dispose)  # its pool lives on the test client's event loop
    with app.test_client() as client:
        token = fetch_token(client)
        before = client.get("/key").json()["key"]
        after = client.post("/login", headers={"X-CSRF-Token": token}).json()["key"]
        assert after != before
        run = client._loop.run
        assert run(_keys(database)) == [after]
        client.post("/logout", headers={"X-CSRF-Token": fetch_token(client)})
        assert run(_keys(database)) == []


def test_database_unknown_and_expired_keys_are_not_adopted(
    make_app: AppFactory, database: Database
) -> None:
    from .test_sessions import sign

    # No opportunistic purge: this test counts what clear_expired() removes.
    backend = DatabaseSessionBackend(database, purge_every=0)
    app = make_app(sessions=SessionConfig(backend=backend))
    app.on_shutdown(database.dispose)
    with app.test_client() as client:
        planted = "Q" * 43
        client._loop.run(backend.save(planted, {"c": time.time(), "a": time.time(), "d": {}}, -1))
        cookie = sign(planted, kind="key")
        response = client.get("/set?key=a&value=1", headers={"Cookie": f"session={cookie}"})
        assert response.json()["key"] != planted
        assert client._loop.run(backend.clear_expired()) == 1

        async def count() -> int:
            async with database.engine.connect() as conn:
                return int(
                    (
                        await conn.execute(select(func.count()).select_from(session_table))
                    ).scalar_one()
                )

        assert client._loop.run(count()) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_database_outage_gives_503_and_recovers(
    database: Database, caplog: pytest.LogCaptureFixture, anyio_backend: str
) -> None:
    # The same promise as Redis sessions: a store that is down answers 503 + Retry-After with
    # one warning line, never a 500 with a traceback, and works again when it is back.
    import logging

    from _services import TcpProxy

    from .conftest import build_app

    url = make_url(database.config.url)
    if url.get_backend_name() == "sqlite":
        pytest.skip("an embedded database has no server to lose")
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    behind = Database(
        DatabaseConfig(
            url=url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
            retry_after=7,
        )
    )
    app = build_app(sessions=SessionConfig(backend=DatabaseSessionBackend(behind)))
    try:
        async with app.async_test_client() as client:
            assert (await client.get("/set?key=cart&value=3")).status_code == 200
            cookie = client.cookies["session"]
            await proxy.cut()
            caplog.clear()
            for path in ("/session", "/set?key=cart&value=4"):
                response = await client.get(path)
                assert response.status_code == 503, (path, response.text)
                assert response.headers["retry-after"] == "7"
                warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
                caplog.clear()
                assert [(r.name, r.exc_info) for r in warnings] == [("transom.security", None)]
                assert "session database unavailable" in warnings[0].getMessage()
            await proxy.restore()
            client.cookies.set("session", cookie)
            response = await client.get("/session")
            assert response.status_code == 200, response.text
            assert response.json() == {"cart": "3"}
    finally:
        await proxy.cut()
        await behind.dispose()
