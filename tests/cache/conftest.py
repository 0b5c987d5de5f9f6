"""Fixtures for the cache battery: every API test runs in memory and on the live Redis.

Each test gets its own key prefix on Redis (and its keys are removed afterwards), so test runs
and other engineers' data on the shared server never meet.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests/_services.py

from _services import remove_redis_keys as remove_keys
from _services import require_service
from transom.cache import Cache, CacheConfig

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
CacheFactory = Callable[..., Cache]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def prefix() -> str:
    return f"transom-test-cache-{uuid.uuid4().hex[:10]}"


@pytest.fixture(params=["memory", "redis"])
def kind(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "redis":
        require_service("Redis", REDIS_HOST, REDIS_PORT)
    return name


@pytest.fixture
async def make_cache(kind: str, prefix: str) -> AsyncIterator[CacheFactory]:
    """``make_cache(**config)``: a cache on this test's backend, closed afterwards."""
    made: list[Cache] = []

    def build(**options: Any) -> Cache:
        options.setdefault("url", REDIS_URL if kind == "redis" else "memory://")
        options.setdefault("key_prefix", prefix)
        cache = Cache(CacheConfig(**options))
        made.append(cache)
        return cache

    yield build
    for cache in made:
        await cache.close()
    if kind == "redis":
        await remove_keys(prefix)


@pytest.fixture
async def cache(make_cache: CacheFactory) -> Cache:
    return make_cache()
