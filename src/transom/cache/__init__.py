"""The cache battery: a low-level async API, cached views, HTTP caching, template fragments.

::

    from transom.cache import Cache, cached

    cache = Cache(app)            # in memory; TRANSOM_CACHE_URL=redis://... for Redis

    @app.get("/posts")
    @cached(ttl=60, tags=("posts",))
    async def posts() -> list[PostOut]: ...

    await cache.get_or_set(f"price:{sku}", fetch_price, ttl=300)
    await cache.delete_tags("posts")

See ``docs/cache.md``.
"""

from __future__ import annotations

from transom.cache.backends import (
    Backend,
    CacheUnavailable,
    DummyBackend,
    MemoryBackend,
    RedisBackend,
)
from transom.cache.config import CacheConfig, Identity
from transom.cache.core import Cache, CacheStats
from transom.cache.templates import CacheFragmentExtension
from transom.cache.views import cache_control, cached, etag_for, is_not_modified, not_modified

__all__ = [
    "Backend",
    "Cache",
    "CacheConfig",
    "CacheFragmentExtension",
    "CacheStats",
    "CacheUnavailable",
    "DummyBackend",
    "Identity",
    "MemoryBackend",
    "RedisBackend",
    "cache_control",
    "cached",
    "etag_for",
    "is_not_modified",
    "not_modified",
]
