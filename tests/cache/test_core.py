"""The low-level API, in memory and on Redis: every call, TTLs, tags, versions, single-flight."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from pydantic import BaseModel
from redis.asyncio import Redis

from transom.cache import Cache

from .conftest import REDIS_URL, CacheFactory

pytestmark = pytest.mark.anyio


class Post(BaseModel):
    id: int
    title: str


async def test_get_set_round_trips_common_types(cache: Cache) -> None:
    values: dict[str, Any] = {
        "dict": {"a": 1, "b": [1, 2, None], "c": "é"},
        "int": 42,
        "str": "hello",
        "bytes": b"\x00\xffraw",
        "bool": False,
        "none_list": [None],
    }
    for key, value in values.items():
        assert await cache.set(key, value) is True
    for key, value in values.items():
        assert await cache.get(key) == value
    assert await cache.get("absent") is None
    assert await cache.get("absent", "fallback") == "fallback"


async def test_pydantic_models_come_back_as_models(cache: Cache) -> None:
    await cache.set("post", Post(id=1, title="Hi"))
    assert await cache.get("post") == Post(id=1, title="Hi")
    await cache.set("posts", [Post(id=1, title="a"), Post(id=2, title="b")])
    # A list is plain JSON; model= types it on the way out.
    assert await cache.get("posts") == [{"id": 1, "title": "a"}, {"id": 2, "title": "b"}]
    assert await cache.get("posts", model=list[Post]) == [
        Post(id=1, title="a"),
        Post(id=2, title="b"),
    ]


async def test_a_model_class_is_never_imported_because_the_cache_says_so(cache: Cache) -> None:
    # What pickle would do: the stored bytes name a class, loading them imports it. Here an
    # unknown class leaves the data as a dict (and the module is not imported).
    raw = b"\x00mjson.tool:Whatever\x00" + b'{"x": 1}'
    await cache.backend.set(cache.make_key("evil"), raw, 60)
    import sys

    sys.modules.pop("json.tool", None)
    assert await cache.get("evil") == {"x": 1}
    assert "json.tool" not in sys.modules


async def test_unreadable_entry_is_a_miss(cache: Cache, caplog: pytest.LogCaptureFixture) -> None:
    await cache.backend.set(cache.make_key("junk"), b"{not json", 60)
    assert await cache.get("junk", "default") == "default"
    assert "Unreadable cache entry" in caplog.text


async def test_many_add_delete(cache: Cache) -> None:
    assert await cache.set_many({"a": 1, "b": 2}) is True
    assert await cache.get_many(["a", "b", "c"]) == {"a": 1, "b": 2}
    assert await cache.add("a", 10) is False
    assert await cache.get("a") == 1
    assert await cache.add("c", 3) is True
    assert await cache.get("c") == 3
    assert await cache.delete("a") is True
    assert await cache.delete("a") is False
    assert await cache.delete_many(["b", "c", "zzz"]) == 2
    assert await cache.get_many(["a", "b", "c"]) == {}


async def test_incr_decr(cache: Cache) -> None:
    assert await cache.incr("n") == 1
    assert await cache.incr("n", 5) == 6
    assert await cache.decr("n", 2) == 4
    assert await cache.get("n") == 4
    await cache.set("text", "abc")
    with pytest.raises(ValueError, match="integer"):
        await cache.incr("text")


async def test_incr_keeps_the_ttl(cache: Cache) -> None:
    await cache.set("n", 1, ttl=0.2)
    assert await cache.incr("n") == 2
    await asyncio.sleep(0.35)
    assert await cache.get("n") is None


async def test_ttl_expiry_and_touch(cache: Cache) -> None:
    await cache.set("short", "x", ttl=0.2)
    await cache.set("kept", "y", ttl=0.2)
    await cache.set("forever", "z", ttl=math.inf)
    assert await cache.touch("kept", 60) is True
    assert await cache.touch("absent", 60) is False
    await asyncio.sleep(0.35)
    assert await cache.get("short") is None
    assert await cache.get("kept") == "y"
    assert await cache.get("forever") == "z"
    with pytest.raises(ValueError, match="ttl must be positive"):
        await cache.set("bad", 1, ttl=0)


async def test_default_ttl_applies(make_cache: CacheFactory) -> None:
    cache = make_cache(default_ttl=0.2)
    await cache.set("k", 1)
    await asyncio.sleep(0.35)
    assert await cache.get("k") is None


async def test_version_and_prefix_separate_caches(make_cache: CacheFactory, prefix: str) -> None:
    v1 = make_cache(version=1)
    v2 = make_cache(version=2)
    other = make_cache(key_prefix=prefix + "-other")
    await v1.set("k", "one")
    assert await v2.get("k") is None
    assert await other.get("k") is None
    await other.set("k", "other")
    assert await v1.clear() >= 1
    assert await v1.get("k") is None
    # clear() removed only its own prefix (on Redis, from the shared server).
    assert await other.get("k") == "other"


async def test_clear_leaves_foreign_redis_keys_alone(make_cache: CacheFactory, kind: str) -> None:
    if kind != "redis":
        pytest.skip("a Redis-only property")
    cache = make_cache()
    foreign = cache.config.key_prefix + "x-not-ours"  # shares the text, not the "prefix:" form
    client = Redis.from_url(REDIS_URL)
    try:
        await client.set(foreign, b"1", ex=60)
        await cache.set("mine", 1)
        assert await cache.clear() == 1
        assert await client.get(foreign) == b"1"
    finally:
        await client.delete(foreign)
        await client.aclose()


async def test_tags_invalidate_a_group(cache: Cache) -> None:
    await cache.set("post:1", "a", tags=["posts"])
    await cache.set("post:2", "b", tags=["posts", "front"])
    await cache.set("user:1", "u", tags=["users"])
    await cache.set("plain", "p")
    assert await cache.delete_tags("posts") is True
    assert await cache.get("post:1") is None
    assert await cache.get("post:2") is None
    assert await cache.get("user:1") == "u"
    assert await cache.get("plain") == "p"
    # Stored again after the invalidation: valid again.
    await cache.set("post:1", "a2", tags=["posts"])
    assert await cache.get("post:1") == "a2"
    assert await cache.get_or_set("post:3", lambda: "c", tags=["posts"]) == "c"
    await cache.delete_tags("posts")
    assert await cache.get_many(["post:1", "post:3"]) == {}


async def test_evicted_tag_does_not_revive_old_entries(cache: Cache) -> None:
    await cache.set("post:1", "old", tags=["posts"])
    # The tag's own key disappears (LRU eviction, maxmemory, a FLUSH of that key...).
    await cache.backend.delete([cache._tag_key("posts")])
    assert await cache.get("post:1") is None


async def test_get_or_set_computes_once_for_50_concurrent_misses(cache: Cache) -> None:
    calls = 0

    async def load() -> dict[str, int]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return {"price": 10}

    results = await asyncio.gather(*(cache.get_or_set("price:1", load, ttl=60) for _ in range(50)))
    assert calls == 1
    assert all(r == {"price": 10} for r in results)
    assert await cache.get_or_set("price:1", load, ttl=60) == {"price": 10}
    assert calls == 1
    assert cache.stats.hits >= 1


async def test_get_or_set_sync_loader_and_errors(cache: Cache) -> None:
    assert await cache.get_or_set("sync", lambda: [1, 2]) == [1, 2]

    async def broken() -> int:
        raise RuntimeError("backend of record down")

    with pytest.raises(RuntimeError, match="backend of record"):
        await cache.get_or_set("broken", broken)
    assert await cache.get("broken") is None
    assert await cache.get_or_set("broken", lambda: 7) == 7  # nothing stuck


async def test_early_refresh(make_cache: CacheFactory) -> None:
    calls = 0

    def load() -> int:
        nonlocal calls
        calls += 1
        return calls

    eager = make_cache(early_refresh_beta=1e12)  # any compute time outweighs the TTL
    assert await eager.get_or_set("k", load, ttl=60) == 1
    assert await eager.get_or_set("k", load, ttl=60) == 2  # recomputed before expiry
    calls = 0
    never = make_cache(early_refresh_beta=0, key_prefix=eager.config.key_prefix + "-n")
    assert await never.get_or_set("k", load, ttl=60) == 1
    assert await never.get_or_set("k", load, ttl=60) == 1


async def test_lock_released_after_compute(cache: Cache) -> None:
    await cache.get_or_set("locked", lambda: 1)
    assert await cache.backend.get(cache._lock_key(cache.make_key("locked"))) is None


async def test_stats_count_hits_and_misses(cache: Cache) -> None:
    await cache.get("x")
    await cache.set("x", 1)
    await cache.get("x")
    assert cache.stats.as_dict() == {"hits": 1, "misses": 1, "errors": 0}


async def test_memory_bound_entries_and_bytes(make_cache: CacheFactory, kind: str) -> None:
    if kind != "memory":
        pytest.skip("the memory backend's bound")
    cache = make_cache(max_entries=3, max_bytes=10_000)
    for i in range(5):
        await cache.set(f"k{i}", i)
    assert await cache.get_many([f"k{i}" for i in range(5)]) == {"k2": 2, "k3": 3, "k4": 4}
    await cache.get("k2")  # recently used: k3 goes next
    await cache.set("k5", 5)
    assert await cache.get_many(["k2", "k3", "k5"]) == {"k2": 2, "k5": 5}

    small = make_cache(max_entries=100, max_bytes=2_000)
    for i in range(20):
        await small.set(f"k{i}", "x" * 300)
    backend = small.backend
    assert getattr(backend, "bytes") <= 2_000  # noqa: B009
    assert 0 < len(backend) < 20  # type: ignore[arg-type]
    assert await small.get("k19") == "x" * 300
    assert await small.get("k0") is None
    await small.set("huge", "x" * 5_000)  # larger than the whole bound: not stored
    assert await small.get("huge") is None
    assert await small.get("k19") == "x" * 300


async def test_dummy_backend_stores_nothing(make_cache: CacheFactory) -> None:
    cache = make_cache(url="dummy://")
    assert await cache.set("k", 1) is True
    assert await cache.get("k") is None
    assert await cache.get_or_set("k", lambda: 2) == 2
