"""Redis backends: sessions and rate-limit counters shared by every process and machine.

Both take a ``redis.asyncio.Redis`` client or a URL (``redis://127.0.0.1:6379/0``). A client
made from a URL is created on first use, on the event loop that serves requests, and closed
when the app shuts down.
"""

from __future__ import annotations

from typing import Any

import orjson
from redis.asyncio import Redis

from transom.security.ratelimit import RateLimitBackend
from transom.security.sessions import SessionBackend

__all__ = ["RedisRateLimitBackend", "RedisSessionBackend"]

# INCR and the expiry of a new window in one atomic step, so two processes can never both
# start a window or leave a counter without expiry.
_HIT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 or redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return {count, redis.call('PTTL', KEYS[1])}
"""


class _RedisClient:
    def __init__(self, client: Redis | str, prefix: str) -> None:
        self._url = client if isinstance(client, str) else None
        self._client: Redis | None = None if isinstance(client, str) else client
        self.prefix = prefix

    @property
    def redis(self) -> Redis:
        if self._client is None:
            assert self._url is not None
            self._client = Redis.from_url(self._url)
        return self._client

    async def close(self) -> None:
        if self._url is not None and self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


class RedisSessionBackend(SessionBackend):
    """Sessions as JSON strings under ``<prefix><key>`` with a TTL equal to the idle timeout.

    Args:
        client: A ``redis.asyncio.Redis`` client or a ``redis://`` URL.
        prefix: Key prefix, so several apps can share one Redis database.
    """

    def __init__(self, client: Redis | str, *, prefix: str = "transom:session:") -> None:
        self._conn = _RedisClient(client, prefix)

    async def load(self, key: str) -> dict[str, Any] | None:
        raw = await self._conn.redis.get(self._conn.prefix + key)
        if raw is None:
            return None
        value = orjson.loads(raw)
        return value if isinstance(value, dict) else None

    async def save(self, key: str, record: dict[str, Any], ttl: int) -> None:
        await self._conn.redis.set(self._conn.prefix + key, orjson.dumps(record), ex=ttl)

    async def delete(self, key: str) -> None:
        await self._conn.redis.delete(self._conn.prefix + key)

    async def close(self) -> None:
        await self._conn.close()


class RedisRateLimitBackend(RateLimitBackend):
    """Rate-limit windows as Redis counters (one atomic script call per request).

    Args:
        client: A ``redis.asyncio.Redis`` client or a ``redis://`` URL.
        prefix: Key prefix.
    """

    def __init__(self, client: Redis | str, *, prefix: str = "transom:ratelimit:") -> None:
        self._conn = _RedisClient(client, prefix)

    async def hit(self, key: str, window: int) -> tuple[int, float]:
        result = await self._conn.redis.eval(
            _HIT_SCRIPT, 1, self._conn.prefix + key, str(window * 1000)
        )
        count, ttl_ms = int(result[0]), int(result[1])
        return count, max(ttl_ms, 0) / 1000

    async def close(self) -> None:
        await self._conn.close()
