"""Cache backends: bytes in, bytes out. :class:`~transom.cache.Cache` does the rest.

A backend raises :class:`CacheUnavailable` when its server can't answer (down, slow, full);
the cache turns that into a miss or a skipped write. Keys arrive fully prefixed.
"""

from __future__ import annotations

import fnmatch
import math
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from transom.cache.config import CacheConfig
from transom.exceptions import ImproperlyConfigured

__all__ = [
    "Backend",
    "CacheUnavailable",
    "DummyBackend",
    "MemoryBackend",
    "RedisBackend",
    "backend_from_config",
]


class CacheUnavailable(Exception):
    """The cache server could not be reached or did not answer in time."""


class Backend(Protocol):
    """What a cache backend implements. ``ttl`` is in seconds; ``None`` never expires."""

    async def get(self, key: str) -> bytes | None: ...
    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]: ...
    async def set(self, key: str, value: bytes, ttl: float | None) -> None: ...
    async def set_many(self, items: Mapping[str, bytes], ttl: float | None) -> None: ...
    async def add(self, key: str, value: bytes, ttl: float | None) -> bool: ...
    async def delete(self, keys: Sequence[str]) -> int: ...
    async def delete_if(self, key: str, value: bytes) -> bool: ...
    async def incr(self, key: str, delta: int) -> int: ...
    async def touch(self, key: str, ttl: float | None) -> bool: ...
    async def clear(self, prefix: str) -> int: ...
    async def close(self) -> None: ...


# -- memory --------------------------------------------------------------------------------------

# What an entry costs beyond its key and value (the dict slot, the tuple, the float).
_OVERHEAD = 100


class MemoryBackend:
    """This process's memory, bounded in entries and bytes; least recently used goes first.

    Values are stored serialised, so what a caller gets is a copy: mutating it never changes
    the cache, just as with Redis. :meth:`set_object` is the exception, for the cache's own
    immutable objects (a cached view's finished response): stored and returned as is.
    """

    def __init__(self, max_entries: int = 10_000, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        # key -> (value, expiry on the monotonic clock, the bytes it is counted for)
        self._data: OrderedDict[str, tuple[Any, float, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    def _live(self, key: str) -> Any:
        """The live value at ``key`` as stored (bytes, or an object from :meth:`set_object`),
        or ``None`` (an expired entry is removed); marks it recently used."""
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[1] <= time.monotonic():
            self._remove(key)
            return None
        self._data.move_to_end(key)
        return entry[0]

    def _bytes(self, key: str) -> bytes | None:
        value = self._live(key)
        # An object stored with set_object is not what a bytes reader expects: a miss.
        return value if type(value) is bytes else None

    def _remove(self, key: str) -> bool:
        entry = self._data.pop(key, None)
        if entry is None:
            return False
        self.bytes -= entry[2]
        return True

    def _store(self, key: str, value: Any, ttl: float | None, size: int | None = None) -> None:
        self._remove(key)
        size = len(key) + (len(value) if size is None else size) + _OVERHEAD
        if size > self.max_bytes:
            return  # larger than the whole cache: keeping it would evict everything else
        expires = math.inf if ttl is None else time.monotonic() + ttl
        self._data[key] = (value, expires, size)
        self.bytes += size
        while len(self._data) > self.max_entries or self.bytes > self.max_bytes:
            self._remove(next(iter(self._data)))

    #: ``get_object(key)``: the live value at ``key`` as stored (bytes, or an object from
    #: :meth:`set_object`), or ``None``; synchronous: no coroutine for an in-process look-up
    #: (the very method behind every read: one call less on a cached view's hit).
    get_object = _live

    def set_object(self, key: str, value: object, size: int, ttl: float | None) -> None:
        """Store ``value`` itself, not a copy, counted as ``size`` bytes against the bound.

        Every reader shares it: only for values nobody mutates. ``get`` and the other
        bytes readers see such a key as missing.
        """
        self._store(key, value, ttl, size)

    async def get(self, key: str) -> bytes | None:
        return self._bytes(key)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return [self._bytes(k) for k in keys]

    async def set(self, key: str, value: bytes, ttl: float | None) -> None:
        self._store(key, value, ttl)

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None) -> None:
        for key, value in items.items():
            self._store(key, value, ttl)

    async def add(self, key: str, value: bytes, ttl: float | None) -> bool:
        if self._live(key) is not None:
            return False
        self._store(key, value, ttl)
        return True

    async def delete(self, keys: Sequence[str]) -> int:
        return sum(self._remove(k) for k in keys)

    async def delete_if(self, key: str, value: bytes) -> bool:
        if self._live(key) == value:
            return self._remove(key)
        return False

    async def incr(self, key: str, delta: int) -> int:
        entry = self._data.get(key)
        current = self._live(key)
        try:
            if current is not None and type(current) is not bytes:
                raise ValueError  # an object from set_object
            number = int(current) + delta if current is not None else delta
        except ValueError:
            raise ValueError(f"cache key {key!r} does not hold an integer") from None
        ttl = None
        if current is not None and entry is not None and entry[1] != math.inf:
            ttl = max(entry[1] - time.monotonic(), 0.001)  # like INCRBY: the TTL stays
        self._store(key, str(number).encode(), ttl)
        return number

    async def touch(self, key: str, ttl: float | None) -> bool:
        entry = self._data.get(key)
        value = self._live(key)
        if value is None or entry is None:
            return False
        self._store(key, value, ttl, entry[2] - len(key) - _OVERHEAD)
        return True

    async def clear(self, prefix: str) -> int:
        keys = [k for k in self._data if k.startswith(prefix)]
        for key in keys:
            self._remove(key)
        return len(keys)

    async def close(self) -> None:
        pass


class DummyBackend:
    """Stores nothing: every read misses (for tests, or to switch caching off by setting)."""

    async def get(self, key: str) -> bytes | None:
        return None

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return [None] * len(keys)

    async def set(self, key: str, value: bytes, ttl: float | None) -> None:
        pass

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None) -> None:
        pass

    async def add(self, key: str, value: bytes, ttl: float | None) -> bool:
        return True

    async def delete(self, keys: Sequence[str]) -> int:
        return 0

    async def delete_if(self, key: str, value: bytes) -> bool:
        return False

    async def incr(self, key: str, delta: int) -> int:
        return delta

    async def touch(self, key: str, ttl: float | None) -> bool:
        return False

    async def clear(self, prefix: str) -> int:
        return 0

    async def close(self) -> None:
        pass


# -- redis ---------------------------------------------------------------------------------------

# Delete the lock only if it is still ours: after lock_timeout another process may hold it.
_DELETE_IF = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)


def _ms(ttl: float) -> int:
    return max(int(ttl * 1000), 1)


def _hosts(netloc: str, default_port: int) -> list[tuple[str, int]]:
    hosts = []
    for part in netloc.rpartition("@")[2].split(","):
        host, _, port = part.partition(":")
        hosts.append((host or "127.0.0.1", int(port) if port else default_port))
    return hosts


class RedisBackend:
    """Redis through redis-py's asyncio client: one server, Sentinel or Cluster.

    Every connection and command is bounded by the config's timeouts, and redis-py's own
    retries are off: a failed command is one miss, not several timeouts in a row.
    """

    def __init__(self, config: CacheConfig) -> None:
        try:
            import redis.asyncio as redis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff
        except ImportError as exc:  # pragma: no cover - redis is an optional dependency
            raise ImproperlyConfigured(
                f"TRANSOM_CACHE_URL={config.url!r} needs redis-py: pip install 'transom[redis]'"
            ) from exc
        import redis.exceptions as errors

        self._errors: tuple[type[BaseException], ...] = (errors.RedisError, OSError, TimeoutError)
        self._response_error = errors.ResponseError
        options: dict[str, Any] = {
            "socket_timeout": config.socket_timeout,
            "socket_connect_timeout": config.connect_timeout,
            "retry": Retry(NoBackoff(), 0),
            "retry_on_timeout": False,
        }
        url = config.url
        scheme = urlsplit(url).scheme
        self.cluster = scheme == "redis+cluster"
        self.client: Any
        if scheme == "redis+sentinel":
            parts = urlsplit(url)
            service, _, db = parts.path.strip("/").partition("/")
            if not service:
                raise ImproperlyConfigured(
                    "a sentinel URL names its service: redis+sentinel://host:26379/<service>/<db>"
                )
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            sentinel = redis.Sentinel(
                _hosts(parts.netloc, 26379),
                socket_timeout=config.socket_timeout,
                socket_connect_timeout=config.connect_timeout,
            )
            self.client = sentinel.master_for(
                service,
                db=int(db or 0),
                password=parts.password or query.get("password"),
                **options,
            )
        elif self.cluster:
            parts = urlsplit(url)
            nodes = [
                redis.cluster.ClusterNode(host, port) for host, port in _hosts(parts.netloc, 6379)
            ]
            self.client = redis.RedisCluster(
                startup_nodes=nodes,
                password=parts.password,
                socket_timeout=config.socket_timeout,
                socket_connect_timeout=config.connect_timeout,
            )
        elif scheme in ("redis", "rediss", "unix"):
            self.client = redis.Redis.from_url(url, **options)
        else:
            raise ImproperlyConfigured(f"unknown cache URL scheme {scheme!r} in {url!r}")

    async def _run(self, command: Any) -> Any:
        try:
            return await command
        except self._response_error:
            raise
        except self._errors as exc:
            raise CacheUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def get(self, key: str) -> bytes | None:
        result: bytes | None = await self._run(self.client.get(key))
        return result

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        if self.cluster:  # keys spread over slots: one MGET per node
            return list(await self._run(self.client.mget_nonatomic(list(keys))))
        return list(await self._run(self.client.mget(list(keys))))

    async def set(self, key: str, value: bytes, ttl: float | None) -> None:
        await self._run(self.client.set(key, value, px=None if ttl is None else _ms(ttl)))

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None) -> None:
        if not items:
            return
        pipe = self.client.pipeline(transaction=False)
        for key, value in items.items():
            pipe.set(key, value, px=None if ttl is None else _ms(ttl))
        await self._run(pipe.execute())

    async def add(self, key: str, value: bytes, ttl: float | None) -> bool:
        done = await self._run(
            self.client.set(key, value, nx=True, px=None if ttl is None else _ms(ttl))
        )
        return bool(done)

    async def delete(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        return int(await self._run(self.client.delete(*keys)))

    async def delete_if(self, key: str, value: bytes) -> bool:
        return bool(await self._run(self.client.eval(_DELETE_IF, 1, key, value)))

    async def incr(self, key: str, delta: int) -> int:
        try:
            return int(await self._run(self.client.incrby(key, delta)))
        except self._response_error as exc:
            raise ValueError(f"cache key {key!r} does not hold an integer ({exc})") from None

    async def touch(self, key: str, ttl: float | None) -> bool:
        if ttl is None:
            return bool(await self._run(self.client.persist(key))) or bool(
                await self._run(self.client.exists(key))
            )
        return bool(await self._run(self.client.pexpire(key, _ms(ttl))))

    async def clear(self, prefix: str) -> int:
        # Only this cache's keys: the server may hold other apps' data (never FLUSHDB).
        pattern = "".join(f"[{c}]" if c in "*?[]\\" else c for c in prefix) + "*"
        removed = 0
        batch: list[str] = []
        try:
            async for key in self.client.scan_iter(match=pattern, count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    removed += await self.delete(batch)
                    batch = []
        except self._errors as exc:
            raise CacheUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if batch:
            removed += await self.delete(batch)
        return removed

    async def close(self) -> None:
        await self.client.aclose()


def backend_from_config(config: CacheConfig) -> Backend:
    """The backend ``config.url`` names."""
    scheme = urlsplit(config.url).scheme
    if scheme in ("memory", "locmem"):
        return MemoryBackend(config.max_entries, config.max_bytes)
    if scheme == "dummy":
        return DummyBackend()
    return RedisBackend(config)


def match_any(name: str, patterns: Iterable[str]) -> bool:
    """Whether ``name`` matches one of the fnmatch ``patterns``."""
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)
