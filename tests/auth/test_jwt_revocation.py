"""The access-token revocation check, cached: fewer queries, revocations still refused at once.

In this process (no cache battery), through the cache battery on the shared Redis across two
app instances, and with the cache's Redis gone (a private server, stopped in the test).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import event

from _services import require_service
from transom import App
from transom.auth import JWTConfig, get_auth
from transom.auth.revocation import LocalRevocations, SharedRevocations
from transom.cache import Cache, CacheConfig
from transom.db import get_database

from .conftest import AppFactory, add_user

pytestmark = pytest.mark.anyio

REDIS_URL = "redis://127.0.0.1:6379/0"


class RevocationQueries:
    """Counts the statements reading the revocation table while active."""

    def __init__(self, app: App) -> None:
        self.engine = get_database(app).engine.sync_engine
        self.count = 0

    def _seen(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "transom_auth_revoked_token" in statement and statement.lstrip().startswith("SELECT"):
            self.count += 1

    def __enter__(self) -> RevocationQueries:
        self.count = 0
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


def bearer(app: App, user_id: int) -> dict[str, str]:
    return {"authorization": f"Bearer {get_auth(app).jwt.access_token(str(user_id))}"}


async def revoke(app: App, headers: dict[str, str]) -> None:
    """What a logout endpoint does: revoke the access token (through ``app``'s manager)."""
    manager = get_auth(app).jwt
    claims = manager.decode(headers["authorization"].removeprefix("Bearer "))
    async with get_database(app).session() as db:
        await manager.revoke_access(db, claims)
        await db.commit()


async def test_authenticated_requests_stop_querying_the_revocations(make_app: AppFactory) -> None:
    cached, uncached = make_app(), make_app(jwt=JWTConfig(revocation_cache_ttl=0))
    user = await add_user(cached)
    for app, expected in ((cached, [1, 0, 0]), (uncached, [1, 1, 1])):
        headers = bearer(app, user.id)
        async with app.async_test_client() as client:
            counts = []
            for _ in range(3):
                with RevocationQueries(app) as queries:
                    me = await client.get("/me", headers=headers)
                assert me.status_code == 200, me.text
                counts.append(queries.count)
        assert counts == expected
    assert isinstance(get_auth(cached).jwt.revocations, LocalRevocations)


async def test_a_revoked_token_is_refused_at_once_by_this_process(make_app: AppFactory) -> None:
    app = make_app(jwt=JWTConfig(revocation_cache_ttl=3600))
    user = await add_user(app)
    headers, other = bearer(app, user.id), bearer(app, user.id)
    async with app.async_test_client() as client:
        assert (await client.get("/me", headers=headers)).status_code == 200  # "not revoked"
        await revoke(app, headers)
        with RevocationQueries(app) as queries:
            refused = await client.get("/me", headers=headers)
        assert refused.status_code == 401
        assert queries.count == 0  # the revocation was written through to the cache
        assert (await client.get("/me", headers=other)).status_code == 200


async def test_without_a_shared_cache_other_processes_see_it_within_the_ttl(
    make_app: AppFactory,
) -> None:
    # The documented trade-off of the in-process cache: an instance that cached "not
    # revoked" keeps accepting the token until that answer expires (an hour here).
    first, second = make_app(jwt=JWTConfig(revocation_cache_ttl=3600)), make_app()
    user = await add_user(first)
    headers = bearer(first, user.id)
    async with first.async_test_client() as one, second.async_test_client() as two:
        assert (await one.get("/me", headers=headers)).status_code == 200
        await revoke(second, headers)
        assert (await two.get("/me", headers=headers)).status_code == 401
        assert (await one.get("/me", headers=headers)).status_code == 200


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    require_service("Redis", "127.0.0.1", 6379)
    prefix = f"transom-test-auth-{uuid.uuid4().hex[:10]}"
    yield prefix

    async def remove() -> None:
        client = Redis.from_url(REDIS_URL)
        try:
            keys = [k async for k in client.scan_iter(match=prefix + "*")]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()

    import asyncio

    asyncio.run(remove())


async def test_on_redis_a_revocation_reaches_every_instance_at_once(
    make_app: AppFactory, redis_prefix: str
) -> None:
    apps = []
    for _ in range(2):
        app = make_app(jwt=JWTConfig(revocation_cache_ttl=3600))
        app.install(Cache(CacheConfig(url=REDIS_URL, key_prefix=redis_prefix)))
        apps.append(app)
    first, second = apps
    user = await add_user(first)
    headers = bearer(first, user.id)
    async with first.async_test_client() as one, second.async_test_client() as two:
        assert isinstance(get_auth(first).jwt.revocations, SharedRevocations)
        assert (await one.get("/me", headers=headers)).status_code == 200
        with RevocationQueries(second) as queries:
            # The first instance's answer, from Redis: no query here.
            assert (await two.get("/me", headers=headers)).status_code == 200
        assert queries.count == 0
        await revoke(second, headers)
        with RevocationQueries(first) as queries:
            refused = await one.get("/me", headers=headers)
        assert refused.status_code == 401
        assert queries.count == 0  # told by the shared cache, not by the database


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """A redis-server of this test's own (the shared one is never stopped)."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    port = _free_port()
    log = (tmp_path / "redis.log").open("wb")
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=log,
        stderr=log,
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("the private redis-server did not start") from None
                time.sleep(0.05)
        yield port, process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)
        log.close()


async def test_a_cache_outage_falls_back_to_the_database(
    make_app: AppFactory, private_redis: tuple[int, subprocess.Popen[bytes]]
) -> None:
    port, process = private_redis
    app = make_app(jwt=JWTConfig(revocation_cache_ttl=3600))
    app.install(Cache(CacheConfig(url=f"redis://127.0.0.1:{port}/0", key_prefix="outage")))
    user = await add_user(app)
    headers, revoked = bearer(app, user.id), bearer(app, user.id)
    async with app.async_test_client() as client:
        assert (await client.get("/me", headers=headers)).status_code == 200
        with RevocationQueries(app) as queries:
            assert (await client.get("/me", headers=headers)).status_code == 200
        assert queries.count == 0  # cached on the private Redis

        process.terminate()
        process.wait(timeout=10)
        with RevocationQueries(app) as queries:
            down = await client.get("/me", headers=headers)
        assert down.status_code == 200, down.text
        assert queries.count == 1  # the database answered
        await revoke(app, revoked)  # the cache write is skipped; the database has it
        refused = await client.get("/me", headers=revoked)
        assert refused.status_code == 401, refused.text


async def test_the_in_process_cache_is_bounded_and_a_revocation_wins() -> None:
    cache = LocalRevocations(max_entries=2)
    await cache.not_revoked("a", 60)
    await cache.revoked("b", 60)
    await cache.not_revoked("b", 60)  # a check racing with the revocation: ignored
    assert await cache.get("b") is True
    await cache.not_revoked("c", 60)
    assert len(cache) == 2
    assert await cache.get("a") is None  # the oldest went first
    assert (await cache.get("b"), await cache.get("c")) == (True, False)
    with pytest.raises(ValueError, match="revocation_cache_ttl"):
        JWTConfig(revocation_cache_ttl=-1)
