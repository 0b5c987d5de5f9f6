"""Where task results, idempotency keys and scheduler ticks live: memory or Redis.

A run's record is a set of fields (``status``, ``attempts``, ``started_at``...). Enqueuing
writes none: a run with no record is ``READY`` (waiting, or unknown), which keeps the enqueue to
the one message the broker must confirm. Starting and cancelling a run are atomic transitions
(:meth:`StateStore.transition`), so a cancelled run never starts and a finished one is not run
again when the broker delivers it twice.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any, Protocol

import orjson

from transom.tasks.pipelining import Pipeliner

__all__ = ["MemoryStore", "NoStore", "RedisStore", "StateStore", "StoreUnavailable"]


class StoreUnavailable(ConnectionError):
    """The Redis keeping results and keys cannot be reached."""


class StateStore(Protocol):
    """Small key-value store with expiry, shared by the app, its workers and schedulers."""

    #: False when nothing is kept (RabbitMQ with no ``result_url``).
    keeps: bool

    async def get(self, key: str) -> dict[str, Any] | None:
        """The record under ``key`` (its fields), or ``None``."""

    async def update(self, key: str, fields: dict[str, Any], ttl: float) -> None:
        """Set ``fields`` of the record ``key`` (others kept); it expires after ``ttl`` s."""

    async def transition(
        self, key: str, fields: dict[str, Any], ttl: float, allowed: Collection[str | None]
    ) -> str | None:
        """Set ``fields`` only if the record's ``status`` is in ``allowed`` (``None``: no
        record), atomically. Returns ``None`` when set, else the status that refused it."""

    async def claim(self, key: str, value: str, ttl: float) -> str | None:
        """Set ``key`` to ``value`` unless it exists: ``None`` when claimed, else its value."""

    async def delete(self, key: str) -> None:
        """Remove ``key``."""

    async def close(self) -> None:
        """Release connections."""


class NoStore:
    """Keeps nothing: results cannot be awaited, keys and ticks cannot be shared."""

    keeps = False

    async def get(self, key: str) -> dict[str, Any] | None:
        return None

    async def update(self, key: str, fields: dict[str, Any], ttl: float) -> None:
        return None

    async def transition(
        self, key: str, fields: dict[str, Any], ttl: float, allowed: Collection[str | None]
    ) -> str | None:
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

    async def get(self, key: str) -> dict[str, Any] | None:
        value = self._live(key)
        return dict(value) if isinstance(value, dict) else None

    async def update(self, key: str, fields: dict[str, Any], ttl: float) -> None:
        record = self._live(key)
        record = {**record, **fields} if isinstance(record, dict) else dict(fields)
        self._data[key] = (time.monotonic() + ttl, record)

    async def transition(
        self, key: str, fields: dict[str, Any], ttl: float, allowed: Collection[str | None]
    ) -> str | None:
        record = self._live(key)
        status = record.get("status") if isinstance(record, dict) else None
        if status not in allowed:
            return str(status or "")
        await self.update(key, fields, ttl)
        return None

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


# A record is a hash of JSON values. ARGV: ttl in ms, then field, value pairs.
_UPDATE = """
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""

# ARGV: ttl in ms, the number n of allowed statuses (JSON; "" for no record), the n statuses,
# then field, value pairs. Returns "" when set, else the status that refused it.
_TRANSITION = """
local status = redis.call('HGET', KEYS[1], 'status') or ''
local n = tonumber(ARGV[2])
for i = 3, n + 2 do
  if ARGV[i] == status then
    redis.call('HSET', KEYS[1], unpack(ARGV, n + 3))
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
    return ''
  end
end
return status
"""


def _pairs(fields: dict[str, Any]) -> list[bytes | str]:
    out: list[bytes | str] = []
    for name, value in fields.items():
        out += [name, orjson.dumps(value)]
    return out


class RedisStore:
    """One Redis server, shared by every process of the app: a record is a hash."""

    keeps = True

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        from redis.asyncio import Redis

        self.client: Any = Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        # Scripts run by EVALSHA (loaded once when Redis does not know them yet), in the
        # pipelines shared by concurrent callers: a worker's start and finish records of
        # tasks running together go out as one batch (transom.tasks.pipelining).
        self._update = self.client.register_script(_UPDATE)
        self._transition = self.client.register_script(_TRANSITION)
        self._pipeliner = Pipeliner(self.client)

    async def _script(self, script: Any, key: str, args: list[Any]) -> Any:
        from redis.exceptions import NoScriptError

        try:
            return await self._pipeliner.execute("EVALSHA", script.sha, 1, key, *args)
        except NoScriptError:
            # First use on this server, or it lost its scripts (a restart): load it, again.
            await self.client.script_load(script.script)
            return await self._pipeliner.execute("EVALSHA", script.sha, 1, key, *args)

    async def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        try:
            return await method(*args, **kwargs)
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise StoreUnavailable(f"Redis unavailable: {exc}") from exc

    async def get(self, key: str) -> dict[str, Any] | None:
        raw = await self._call(self.client.hgetall, key)
        if not raw:
            return None
        return {name.decode(): orjson.loads(value) for name, value in raw.items()}

    async def update(self, key: str, fields: dict[str, Any], ttl: float) -> None:
        args = [max(1, int(ttl * 1000)), *_pairs(fields)]
        await self._call(self._script, self._update, key, args)

    async def transition(
        self, key: str, fields: dict[str, Any], ttl: float, allowed: Collection[str | None]
    ) -> str | None:
        statuses = [b"" if s is None else orjson.dumps(s) for s in allowed]
        args = [max(1, int(ttl * 1000)), len(statuses), *statuses, *_pairs(fields)]
        refused = await self._call(self._script, self._transition, key, args)
        return str(orjson.loads(refused)) if refused else None

    async def claim(self, key: str, value: str, ttl: float) -> str | None:
        claimed = await self._call(self.client.set, key, value, nx=True, px=max(1, int(ttl * 1000)))
        if claimed:
            return None
        existing = await self._call(self.client.get, key)
        # Expired between the two calls: the key is free again, but claiming it now would be a
        # second round trip for a case that needs none; the caller treats it as a duplicate.
        return existing.decode() if isinstance(existing, bytes) else str(existing or "")

    async def delete(self, key: str) -> None:
        await self._call(self.client.delete, key)

    async def close(self) -> None:
        await self._pipeliner.close()
        await self.client.aclose()
