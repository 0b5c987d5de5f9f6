"""Redis backends: sessions and rate-limit counters shared by every process and machine.

Both take a ``redis.asyncio.Redis`` client or a URL (``redis://127.0.0.1:6379/0``). A client
made from a URL is created on first use, on the event loop that serves requests, and closed
when the app shuts down.

When Redis can't be reached (connection refused or reset, timeout), the backends raise
:class:`~transom.security.StoreUnavailable`: requests get a 503 with ``Retry-After`` and one
warning is logged, until Redis answers again. redis-py reconnects on the next command, so
recovery needs no restart. A client made from a URL fails fast: 2-second connect and read
timeouts and one immediate retry (so a connection left dead by a Redis restart is replaced
without failing a request), unless the URL sets its own ``socket_timeout`` /
``socket_connect_timeout``. A client you pass in keeps its own settings.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

import orjson
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from transom.security._context import StoreUnavailable
from transom.security.ratelimit import RateLimitBackend
from transom.security.sessions import SessionBackend

__all__ = ["RedisRateLimitBackend", "RedisSessionBackend"]

T = TypeVar("T")

# INCR and the expiry of a new window in one atomic step, so two processes can never both
# start a window or leave a counter without expiry.
_HIT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 or redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return {count, redis.call('PTTL', KEYS[1])}
"""
# Seconds; a request waits at most about twice this for a Redis that does not answer.
_TIMEOUT = 2.0


class _RedisClient:
    def __init__(self, client: Redis | str, prefix: str, retry_after: int) -> None:
        self._url = client if isinstance(client, str) else None
        self._client: Redis | None = None if isinstance(client, str) else client
        self.prefix = prefix
        self.retry_after = retry_after

    @property
    def redis(self) -> Redis:
        if self._client is None:
            assert self._url is not None
            # URL options (?socket_timeout=...) override these keyword defaults in redis-py.
            self._client = Redis.from_url(
                self._url,
                socket_timeout=_TIMEOUT,
                socket_connect_timeout=_TIMEOUT,
                retry=Retry(NoBackoff(), 1),
            )
        return self._client

    async def call(self, command: Awaitable[T]) -> T:
        """Await a Redis command, turning an outage into :class:`StoreUnavailable`."""
        try:
            return await command
        except (RedisConnectionError, RedisTimeoutError) as exc:
            # Only availability errors: a wrong command or a script error stays a bug (500).
            raise StoreUnavailable(
                f"Redis: {type(exc).__name__}: {exc}", retry_after=self.retry_after
            ) from exc

    async def close(self) -> None:
        if self._url is not None and self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


class RedisSessionBackend(SessionBackend):
    """Sessions as JSON strings under ``<prefix><key>`` with a TTL equal to the idle timeout.

    Args:
        client: A ``redis.asyncio.Redis`` client or a ``redis://`` URL.
        prefix: Key prefix, so several apps can share one Redis database.
        retry_after: ``Retry-After`` seconds of the 503 sent while Redis is unreachable.
    """

    def __init__(
        self, client: Redis | str, *, prefix: str = "transom:session:", retry_after: int = 5
    ) -> None:
        self._conn = _RedisClient(client, prefix, retry_after)

    async def load(self, key: str) -> dict[str, Any] | None:
        raw = await self._conn.call(self._conn.redis.get(self._conn.prefix + key))
        if raw is None:
            return None
        value = orjson.loads(raw)
        return value if isinstance(value, dict) else None

    async def save(self, key: str, record: dict[str, Any], ttl: int) -> None:
        redis = self._conn.redis
        await self._conn.call(redis.set(self._conn.prefix + key, orjson.dumps(record), ex=ttl))

    async def delete(self, key: str) -> None:
        await self._conn.call(self._conn.redis.delete(self._conn.prefix + key))

    async def close(self) -> None:
        await self._conn.close()


class RedisRateLimitBackend(RateLimitBackend):
    """Rate-limit windows as Redis counters (one atomic script call per request).

    Args:
        client: A ``redis.asyncio.Redis`` client or a ``redis://`` URL.
        prefix: Key prefix.
        retry_after: ``Retry-After`` seconds of the 503 sent while Redis is unreachable.
    """

    def __init__(
        self, client: Redis | str, *, prefix: str = "transom:ratelimit:", retry_after: int = 5
    ) -> None:
        self._conn = _RedisClient(client, prefix, retry_after)

    async def hit(self, key: str, window: int) -> tuple[int, float]:
        redis = self._conn.redis
        result = await self._conn.call(
            redis.eval(_HIT_SCRIPT, 1, self._conn.prefix + key, str(window * 1000))
        )
        count, ttl_ms = int(result[0]), int(result[1])
        return count, max(ttl_ms, 0) / 1000

    async def close(self) -> None:
        await self._conn.close()
