"""The Redis backend on Sentinel and on Cluster, each built here from real ``redis-server``
processes (own ports, own folder, stopped afterwards): the shared server at 6379 is untouched.

Every call of the API goes through each topology: Sentinel finds the master by its service
name, Cluster spreads keys over three masters (multi-key calls cross hash slots).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from _services import is_ci
from transom.cache import Cache, CacheConfig

pytestmark = pytest.mark.anyio

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")


@pytest.fixture(autouse=True)
def _need_redis_binaries() -> None:
    if REDIS_SERVER is None or REDIS_CLI is None:
        message = "redis-server/redis-cli are not installed"
        if is_ci():
            pytest.fail(message)
        pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(port: int, *args: str) -> str:
    assert REDIS_CLI is not None
    done = subprocess.run(
        [REDIS_CLI, "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.stdout


def _wait(check: object, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Servers:
    """redis-server processes started in one folder, all stopped by :meth:`stop`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, port: int, *args: str, config: str = "") -> None:
        assert REDIS_SERVER is not None
        work = self.folder / name
        work.mkdir()
        conf = work / "redis.conf"
        conf.write_text(
            f'port {port}\nbind 127.0.0.1\ndir {work}\nsave ""\nappendonly no\n{config}'
        )
        log = (work / "log").open("wb")
        self.processes.append(
            subprocess.Popen([REDIS_SERVER, str(conf), *args], stdout=log, stderr=log)
        )
        _wait(lambda: _cli(port, "ping").strip() == "PONG", f"{name} on {port}")

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    started = Servers(tmp_path)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def sentinel_url(servers: Servers) -> str:
    master, sentinel = _free_port(), _free_port()
    servers.start("master", master)
    servers.start(
        "sentinel",
        sentinel,
        "--sentinel",
        config=f"sentinel monitor cachemaster 127.0.0.1 {master} 1\n",
    )
    _wait(
        lambda: str(master) in _cli(sentinel, "sentinel", "get-master-addr-by-name", "cachemaster"),
        "the sentinel to know its master",
    )
    return f"redis+sentinel://127.0.0.1:{sentinel}/cachemaster/0"


_CLUSTER_NODE = "cluster-enabled yes\ncluster-config-file nodes.conf\ncluster-node-timeout 5000\n"


@pytest.fixture
def cluster_url(servers: Servers) -> str:
    ports = [_free_port() for _ in range(3)]
    for port in ports:
        # The cluster bus listens on port + 10000 unless told otherwise: from an ephemeral
        # port above 55535 that is past 65535 and the node never starts (about one run in
        # two failed that way), so each node gets a free bus port of its own.
        servers.start(
            f"node{port}",
            port,
            config=_CLUSTER_NODE + f"cluster-port {_free_port()}\n",
        )
    nodes = [f"127.0.0.1:{p}" for p in ports]
    assert REDIS_CLI is not None
    subprocess.run(
        [REDIS_CLI, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
        capture_output=True,
        timeout=60,
        check=True,
    )
    _wait(
        lambda: all("cluster_state:ok" in _cli(p, "cluster", "info") for p in ports),
        "the cluster to be ok",
    )
    return "redis+cluster://" + ",".join(nodes)


async def _exercise(cache: Cache) -> None:
    # Twenty keys: on a cluster they land on all three masters.
    items = {f"k{i}": {"n": i} for i in range(20)}
    assert await cache.set("one", [1, 2, 3], ttl=60)
    assert await cache.get("one") == [1, 2, 3]
    assert await cache.set_many(items, ttl=60)
    assert await cache.get_many(list(items)) == items
    assert not await cache.add("one", "other")
    assert await cache.add("two", "second")
    assert await cache.incr("count", 5) == 5
    assert await cache.decr("count", 2) == 3
    assert await cache.touch("one", 120)
    assert await cache.delete_many(["k0", "k1", "k19"]) == 3
    assert await cache.get("k0") is None

    await cache.set("tagged", "v", tags=["posts"])
    assert await cache.get("tagged") == "v"
    assert await cache.delete_tags("posts")
    assert await cache.get("tagged") is None

    calls = 0

    async def load() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return "computed"

    answers = await asyncio.gather(*(cache.get_or_set("flight", load, ttl=60) for _ in range(20)))
    assert answers == ["computed"] * 20
    assert calls == 1

    removed = await cache.clear()
    assert removed >= 20  # every key of this cache, on every node
    assert await cache.get_many(list(items)) == {}
    assert cache.available


async def test_the_cache_on_sentinel(sentinel_url: str) -> None:
    cache = Cache(CacheConfig(url=sentinel_url, key_prefix="topo", socket_timeout=5))
    try:
        await _exercise(cache)
    finally:
        await cache.close()


async def test_the_cache_on_a_cluster(cluster_url: str) -> None:
    cache = Cache(CacheConfig(url=cluster_url, key_prefix="topo", socket_timeout=5))
    try:
        await _exercise(cache)
    finally:
        await cache.close()
