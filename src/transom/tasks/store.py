"""Where task results, idempotency keys and scheduler ticks live: memory or Redis."""

from __future__ import annotations

import time
from typing import Any, Protocol

import orjson

__all__ = ["MemoryStore", "NoStore", "RedisStore", "StateStore", "StoreUnavailable"]


class StoreUnavailable(ConnectionError):
    """The Redis keeping results and keys cannot be reached."""


class StateStore(Protocol):
    """Small key-value store with expiry, shared by the app, its workers and schedulers."""

    #: False when nothing is kept (RabbitMQ with no ``result_url``).
    keeps: bool

    async def put(self, key: str, value: dict[str, Any], ttl: float) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds."""

    async def get(self, key: str) -> dict[str, Any] | None:
        """The value under ``key``, or ``None``."""

    async def claim(self, key: str, value: str, ttl: float) -> str | None:
        """Set ``key`` to ``value`` unless it exists: ``None`` when claimed, else its value."""

    async def delete(self, key: str) -> None:
        """Remove ``key``."""

    async def close(self) -> None:
        """Release connections."""


class NoStore:
    """Keeps nothing: results cannot be awaited, keys and ticks cannot be shared."""

    keeps = False

    async def put(self, key: str, value: dict[str, Any], ttl: float) -> None:
        return None

    async def get(self, key: str) -> dict[str, Any] | None:
        return None

    async def claim(self, key: str, value: str, ttl: float) -> str | None:
        return None

    async def delete(self, key: str) -> None:
        return None

    async def close(self) -> None:
        return None


class MemoryStore:
    """This process only (in-process and eager backends)."""

    keeps = True

    def __init__(self) -> None:
        self._data: dict[str, tuple[float, Any]] = {}

    def _live(self, key: str) -> Any:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            del self._data[key]
            return None
        return entry[1]

    async def put(self, key: str, value: dict[str, Any], ttl: float) -> None:
        self._data[key] = (time.monotonic() + ttl, value)

    async def get(self, key: str) -> dict[str, Any] | None:
        value = self._live(key)
        return dict(value) if isinstance(value, dict) else None

    async def claim(self, key: str, value: str, ttl: float) -> str | None:
        existing = self._live(key)
        if existing is not None:
            return str(existing)
        self._data[key] = (time.monotonic() + ttl, value)
        return None

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def close(self) -> None:
        return None


class RedisStore:
    """One Redis server, shared by every process of the app."""

    keeps = True

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        from redis.asyncio import Redis

        self.client: Any = Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        try:
            return await getattr(self.client, method)(*args, **kwargs)
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise StoreUnavailable(f"Redis unavailable: {exc}") from exc

    async def put(self, key: str, value: dict[str, Any], ttl: float) -> None:
        await self._call("set", key, orjson.dumps(value), px=max(1, int(ttl * 1000)))

    async def get(self, key: str) -> dict[str, Any] | None:
        raw = await self._call("get", key)
        if raw is None:
            return None
        value = orjson.loads(raw)
        return value if isinstance(value, dict) else None

    async def claim(self, key: str, value: str, ttl: float) -> str | None:
        claimed = await self._call("set", key, value, nx=True, px=max(1, int(ttl * 1000)))
        if claimed:
            return None
        existing = await self._call("get", key)
        # Expired between the two calls: the key is free again, but claiming it now would be a
        # second round trip for a case that needs none; the caller treats it as a duplicate.
        return existing.decode() if isinstance(existing, bytes) else str(existing or "")

    async def delete(self, key: str) -> None:
        await self._call("delete", key)

    async def close(self) -> None:
        await self.client.aclose()
