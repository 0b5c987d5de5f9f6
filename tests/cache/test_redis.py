"""Redis faults (down, hanging, back) and single-flight across two processes."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from _services import TcpProxy
from _services import remove_redis_keys as remove_keys
from transom.cache import Cache, CacheConfig

from .conftest import REDIS_HOST, REDIS_PORT, REDIS_URL

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _redis() -> None:
    from _services import require_service

    require_service("Redis", REDIS_HOST, REDIS_PORT)


async def test_redis_down_reads_miss_writes_skip_then_recover(
    prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = TcpProxy(REDIS_HOST, REDIS_PORT)
    await proxy.start()
    cache = Cache(
        CacheConfig(url=f"redis://127.0.0.1:{proxy.port}/0", key_prefix=prefix, retry_interval=0)
    )
    try:
        await cache.set("k", "before")
        assert await cache.get("k") == "before"
        await proxy.cut()
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="transom.cache"):
            for _ in range(20):
                assert await cache.get("k", "fallback") == "fallback"
                assert await cache.set("k", "during") is False
                assert await cache.incr("n") is None
                assert await cache.delete_tags("t") is False
            assert await cache.get_or_set("k", lambda: "computed") == "computed"
            assert cache.available is False
            unavailable = [r for r in caplog.records if "unavailable" in r.getMessage()]
            assert len(unavailable) == 1  # one line for the outage, not one per call
            await proxy.restore()
            assert await cache.get("k") == "before"  # the write during the outage was skipped
            assert cache.available is True
            assert any("available again" in r.getMessage() for r in caplog.records)
        assert cache.stats.errors >= 80
    finally:
        await cache.close()
        await proxy.cut()
        await remove_keys(prefix)


async def test_hanging_redis_is_a_bounded_miss(prefix: str) -> None:
    proxy = TcpProxy(REDIS_HOST, REDIS_PORT)
    await proxy.start()
    cache = Cache(
        CacheConfig(url=f"redis://127.0.0.1:{proxy.port}/0", key_prefix=prefix, socket_timeout=0.2)
    )
    try:
        await cache.set("k", 1)
        proxy.freeze()
        # socket_timeout bounds it: without it this would wait forever (the test would hang).
        assert await asyncio.wait_for(cache.get("k", "miss"), 10) == "miss"
        # Within retry_interval the server is not asked again: the next miss is immediate.
        assert await cache.get("k", "miss") == "miss"
        assert cache.available is False
    finally:
        await proxy.cut()
        await cache.close()
        await remove_keys(prefix)


async def test_retry_interval_spares_a_down_server(prefix: str) -> None:
    proxy = TcpProxy(REDIS_HOST, REDIS_PORT)
    await proxy.start()
    cache = Cache(
        CacheConfig(url=f"redis://127.0.0.1:{proxy.port}/0", key_prefix=prefix, retry_interval=60)
    )
    try:
        await proxy.cut()
        assert await cache.get("k") is None
        await proxy.restore()
        # Back, but still within the retry interval: the cache does not try it yet.
        await cache.backend.set(cache.make_key("k"), b"1", 60)
        assert await cache.get("k") is None
    finally:
        await proxy.cut()
        await cache.close()
        await remove_keys(prefix)


_WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from redis.asyncio import Redis
    from transom.cache import Cache, CacheConfig

    async def main(prefix):
        cache = Cache(CacheConfig(url={url!r}, key_prefix=prefix, lock_timeout=5))
        counter = Redis.from_url({url!r})

        async def load():
            await counter.incr(prefix + "-calls")
            await asyncio.sleep(0.5)
            return {{"value": 42}}

        # Start together: both processes miss while the other computes.
        await counter.incr(prefix + "-ready")
        for _ in range(400):
            if int(await counter.get(prefix + "-ready") or 0) >= 2:
                break
            await asyncio.sleep(0.025)
        results = await asyncio.gather(*(cache.get_or_set("hot", load, ttl=60) for _ in range(25)))
        assert all(r == {{"value": 42}} for r in results), results
        await counter.aclose()
        await cache.close()
        print("ok")

    asyncio.run(main(sys.argv[1]))
    """
)


async def _calls_then_cleanup(prefix: str) -> Any:
    client = Redis.from_url(REDIS_URL)
    try:
        calls = await client.get(prefix + "-calls")
        await client.delete(prefix + "-calls", prefix + "-ready")
        return calls
    finally:
        await client.aclose()
        await remove_keys(prefix)


def test_single_flight_across_two_processes(prefix: str) -> None:
    script = _WORKER.format(url=REDIS_URL)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, prefix],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for _ in range(2)
    ]
    try:
        outputs = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err.decode()
        assert out.strip() == b"ok"
    # 50 concurrent misses over two processes: the loader ran once (one lock period).
    assert asyncio.run(_calls_then_cleanup(prefix)) == b"1"
