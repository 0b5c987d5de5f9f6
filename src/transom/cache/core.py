"""The :class:`Cache` battery: the low-level async API over one backend.

Every call survives the backend being down: reads are misses, writes are skipped (``False``),
one warning is logged when the server goes away and one line when it is back. After a failure
the server is left alone for ``retry_interval`` seconds, so an outage costs requests nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import math
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, overload

from transom.batteries import Battery
from transom.cache.backends import Backend, CacheUnavailable, MemoryBackend, backend_from_config
from transom.cache.config import CacheConfig
from transom.cache.serialization import Envelope, dumps, loads, pack, unpack

if TYPE_CHECKING:
    from transom.app import App
    from transom.templating import Templates

__all__ = ["Cache", "CacheStats"]

logger = logging.getLogger("transom.cache")
T = TypeVar("T")
_MISSING: Any = object()


@dataclasses.dataclass
class CacheStats:
    """Counters for metrics: ``Cache.of(app).stats.hits``."""

    hits: int = 0
    misses: int = 0
    #: Operations that failed because the backend was down or slow (each one a miss or a skip).
    errors: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters as a dict (for a metrics endpoint)."""
        return dataclasses.asdict(self)


def _new_version() -> bytes:
    # Unique rather than counted: a tag key that was evicted and re-created must not bring
    # back entries written under its old value.
    return f"{time.time_ns():x}.{secrets.token_hex(4)}".encode()


class Cache(Battery):
    """A cache: ``Cache(app)`` installs it (in memory unless ``TRANSOM_CACHE_URL`` says else).

    Args:
        config: Where and how to cache (default: :class:`CacheConfig` from the environment).

    ``Cache(app)`` and ``Cache(app, config)`` install it at once; ``Cache(config)`` is
    installed with ``app.install(...)`` (or used on its own, without an app).

    Example:
        >>> import asyncio
        >>> cache = Cache(CacheConfig(url="memory://"))
        >>> asyncio.run(cache.set("answer", 42))
        True
    """

    name = "transom.cache"

    @overload
    def __init__(self, config: CacheConfig | None = None, /) -> None: ...
    @overload
    def __init__(self, app: App, config: CacheConfig | None = None, /) -> None: ...
    def __init__(self, target: Any = None, config: CacheConfig | None = None, /) -> None:
        super().__init__()
        app = None
        if isinstance(target, CacheConfig):
            config = target
        elif target is not None:
            app = target
        self.config = config or CacheConfig()
        self.backend: Backend = backend_from_config(self.config)
        self.stats = CacheStats()
        self._prefix = f"{self.config.key_prefix}:{self.config.version}:"
        self._flights: dict[str, asyncio.Task[Any]] = {}
        self._down = False
        self._down_until = 0.0
        # The in-process tier keeps objects as they are (see get_object); Redis never does.
        self._objects = self.backend if isinstance(self.backend, MemoryBackend) else None
        if app is not None:
            self.install(app)

    def setup(self, app: App) -> None:
        from transom.cache.views import install_views

        app.on_shutdown(self.close)
        install_views(self, app)

    def configure_templates(self, templates: Templates) -> None:
        """Give the app's templates the ``{% cache %}`` fragment tag (the templates battery
        calls this when it is there)."""
        from transom.cache.templates import register_fragment_tag

        register_fragment_tag(self, templates)

    async def close(self) -> None:
        """Close the backend's connections (the app does it on shutdown)."""
        await self.backend.close()

    # -- keys and faults -------------------------------------------------------------------------
    def make_key(self, key: str) -> str:
        """The key as stored: ``<key_prefix>:<version>:<key>``."""
        return self._prefix + key

    def _tag_key(self, tag: str) -> str:
        # '!' after the prefix instead of ':' keeps tags and locks apart from user keys.
        return f"{self.config.key_prefix}:{self.config.version}!tag:{tag}"

    def _lock_key(self, full: str) -> str:
        return f"{self.config.key_prefix}:{self.config.version}!lock:{full}"

    def _ttl(self, ttl: float | None) -> float | None:
        if ttl is None:
            return self.config.default_ttl
        if ttl == math.inf:
            return None
        if ttl <= 0:
            raise ValueError(f"ttl must be positive (or math.inf for no expiry), not {ttl}")
        return ttl

    @property
    def available(self) -> bool:
        """False while the backend is considered down (until the next successful call)."""
        return not self._down

    async def _guard(self, call: Callable[[], Awaitable[T]], fallback: T) -> T:
        if self._down and time.monotonic() < self._down_until:
            self.stats.errors += 1
            return fallback
        try:
            result = await call()
        except CacheUnavailable as exc:
            self.stats.errors += 1
            self._down_until = time.monotonic() + self.config.retry_interval
            if not self._down:
                self._down = True
                logger.warning(
                    "Cache %s unavailable (%s): reads miss and writes are skipped until it is back",
                    self.config.url.partition("@")[2] or self.config.url,
                    exc,
                )
            return fallback
        if self._down:
            self._down = False
            logger.warning("Cache %s is available again", self.config.url.partition("@")[2])
        return result

    # -- entries ---------------------------------------------------------------------------------
    async def _open(self, raw: bytes, model: Any) -> tuple[Any, Envelope | None]:
        """The value in ``raw`` and its envelope, or ``_MISSING`` when a tag has moved on."""
        payload, envelope = unpack(raw)
        if envelope is not None and envelope.tags:
            names = list(envelope.tags)
            current = await self._guard(
                lambda: self.backend.get_many([self._tag_key(t) for t in names]), None
            )
            if current is None or any(
                v is None or v.decode() != envelope.tags[n]
                for n, v in zip(names, current, strict=True)
            ):
                return _MISSING, None
        try:
            return loads(payload, model), envelope
        except ValueError as exc:
            # Not what this code wrote (another version of the app, a hand edit): a miss.
            logger.warning("Unreadable cache entry (%s): treated as a miss", exc)
            return _MISSING, None

    async def _tag_versions(self, tags: Iterable[str]) -> dict[str, str] | None:
        names = list(dict.fromkeys(tags))
        keys = [self._tag_key(t) for t in names]
        current = await self._guard(lambda: self.backend.get_many(keys), None)
        if current is None:
            return None
        versions: dict[str, str] = {}
        for name, key, value in zip(names, keys, current, strict=True):
            if value is None:
                value = await self._create_tag(key)
                if value is None:
                    return None
            versions[name] = value.decode()
        return versions

    async def _create_tag(self, key: str) -> bytes | None:
        fresh = _new_version()
        added = await self._guard(lambda: self.backend.add(key, fresh, None), None)
        if added is None:
            return None
        if added:
            return fresh
        return await self._guard(lambda: self.backend.get(key), None)  # created meanwhile

    async def _encode(
        self, value: Any, tags: Iterable[str], expiry: float | None = None, delta: float = 0.0
    ) -> bytes | None:
        payload = dumps(value)
        tags = tuple(tags)
        if not tags and expiry is None:
            return payload
        versions: dict[str, str] | None = {}
        if tags:
            versions = await self._tag_versions(tags)
            if versions is None:
                return None  # can't tie the entry to its tags: don't store it at all
        return pack(payload, Envelope(expiry, delta, versions))

    # -- the API ---------------------------------------------------------------------------------
    async def get(self, key: str, default: Any = None, *, model: Any = None) -> Any:
        """The value stored at ``key``, or ``default``; ``model`` validates it (a type)."""
        raw = await self._guard(lambda: self.backend.get(self._prefix + key), None)
        if raw is not None:
            value, _ = await self._open(raw, model)
            if value is not _MISSING:
                self.stats.hits += 1
                return value
        self.stats.misses += 1
        return default

    async def get_many(self, keys: Iterable[str], *, model: Any = None) -> dict[str, Any]:
        """The keys found, with their values (missing keys are left out)."""
        keys = list(keys)
        misses: list[bytes | None] = [None] * len(keys)
        raws = await self._guard(
            lambda: self.backend.get_many([self._prefix + k for k in keys]), misses
        )
        found: dict[str, Any] = {}
        for key, raw in zip(keys, raws, strict=True):
            if raw is not None:
                value, _ = await self._open(raw, model)
                if value is not _MISSING:
                    found[key] = value
        self.stats.hits += len(found)
        self.stats.misses += len(keys) - len(found)
        return found

    async def set(
        self, key: str, value: Any, ttl: float | None = None, *, tags: Iterable[str] = ()
    ) -> bool:
        """Store ``value`` for ``ttl`` seconds (default: the config's; ``math.inf``: forever).

        ``tags`` group entries for :meth:`delete_tags`. Returns False if the write was skipped.
        """
        seconds = self._ttl(ttl)
        raw = await self._encode(value, tags)
        if raw is None:
            return False
        return await self._guard(
            lambda: _true(self.backend.set(self._prefix + key, raw, seconds)), False
        )

    async def set_many(
        self, items: Mapping[str, Any], ttl: float | None = None, *, tags: Iterable[str] = ()
    ) -> bool:
        """Store several values (one round trip on Redis)."""
        seconds = self._ttl(ttl)
        tags = tuple(tags)
        encoded: dict[str, bytes] = {}
        for key, value in items.items():
            raw = await self._encode(value, tags)
            if raw is None:
                return False
            encoded[self._prefix + key] = raw
        return await self._guard(lambda: _true(self.backend.set_many(encoded, seconds)), False)

    async def add(
        self, key: str, value: Any, ttl: float | None = None, *, tags: Iterable[str] = ()
    ) -> bool:
        """Store ``value`` only if ``key`` holds nothing; True if it was stored."""
        seconds = self._ttl(ttl)
        raw = await self._encode(value, tags)
        if raw is None:
            return False
        return await self._guard(lambda: self.backend.add(self._prefix + key, raw, seconds), False)

    async def delete(self, key: str) -> bool:
        """Remove ``key``; True if it was there."""
        return await self.delete_many([key]) > 0

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Remove the keys; how many were there."""
        full = [self._prefix + k for k in keys]
        return await self._guard(lambda: self.backend.delete(full), 0)

    async def incr(self, key: str, delta: int = 1) -> int | None:
        """Add ``delta`` to the integer at ``key`` (missing: 0) atomically; the new value.

        ``None`` when the backend is down. Raises ``ValueError`` if the key holds a non-integer.
        The key keeps its TTL; a key created here never expires (``touch`` it to give one).
        """
        return await self._guard(lambda: self.backend.incr(self._prefix + key, delta), None)

    async def decr(self, key: str, delta: int = 1) -> int | None:
        """Subtract ``delta``: ``incr(key, -delta)``."""
        return await self.incr(key, -delta)

    async def touch(self, key: str, ttl: float | None = None) -> bool:
        """Give ``key`` a new TTL (default: the config's); True if the key exists."""
        seconds = self._ttl(ttl)
        return await self._guard(lambda: self.backend.touch(self._prefix + key, seconds), False)

    async def clear(self) -> int:
        """Remove every entry of this cache (its key prefix, all versions); how many.

        Other data on the same Redis server is left alone.
        """
        return await self._guard(lambda: self.backend.clear(f"{self.config.key_prefix}:"), 0)

    async def delete_tags(self, *tags: str) -> bool:
        """Invalidate every entry stored with one of ``tags`` (one write per tag)."""
        items = {self._tag_key(t): _new_version() for t in tags}
        return await self._guard(lambda: _true(self.backend.set_many(items, None)), False)

    # -- objects (the in-process tier) ------------------------------------------------------------
    @property
    def stores_objects(self) -> bool:
        """Whether the backend keeps Python objects as they are (the memory backend): then
        :meth:`get_object`/:meth:`set_object` skip serialising; on Redis they always miss."""
        return self._objects is not None

    def get_object(self, key: str) -> Any:
        """The object :meth:`set_object` stored at ``key`` (shared, not a copy: never mutate
        it), or ``None``; synchronous, as the look-up is in this process.

        Counted in :attr:`stats` as :meth:`get` is; an entry whose tags were invalidated is a
        miss. Always ``None`` unless :attr:`stores_objects`.
        """
        backend = self._objects
        if backend is not None:
            entry = backend.get_object(self._prefix + key)
            # Anything else at that key (bytes from set) is not an object entry: a miss.
            if type(entry) is _Stored:
                for tag, version in entry.tags:  # a loop, not all(): no generator per hit
                    if backend.get_object(tag) != version:
                        break
                else:
                    self.stats.hits += 1
                    return entry.value
        self.stats.misses += 1
        return None

    async def set_object(
        self,
        key: str,
        value: object,
        size: int,
        ttl: float | None = None,
        *,
        tags: Iterable[str] = (),
    ) -> bool:
        """Store ``value`` itself at ``key`` when :attr:`stores_objects` (else False, nothing
        stored): for immutable values only, as every reader gets this very object. ``size``
        (bytes) counts it against the memory bound; ``ttl`` and ``tags`` as in :meth:`set`.
        """
        backend = self._objects
        if backend is None:
            return False
        seconds = self._ttl(ttl)
        pinned: tuple[tuple[str, bytes], ...] = ()
        if tags:
            versions = await self._tag_versions(tags)
            if versions is None:
                return False
            pinned = tuple((self._tag_key(t), v.encode()) for t, v in versions.items())
        backend.set_object(self._prefix + key, _Stored(value, pinned), size, seconds)
        return True

    @overload
    async def get_or_set(
        self,
        key: str,
        loader: Callable[[], Awaitable[T]],
        ttl: float | None = None,
        *,
        tags: Iterable[str] = (),
        model: Any = None,
    ) -> T: ...
    @overload
    async def get_or_set(
        self,
        key: str,
        loader: Callable[[], T],
        ttl: float | None = None,
        *,
        tags: Iterable[str] = (),
        model: Any = None,
    ) -> T: ...
    async def get_or_set(
        self,
        key: str,
        loader: Callable[[], Any],
        ttl: float | None = None,
        *,
        tags: Iterable[str] = (),
        model: Any = None,
    ) -> Any:
        """The value at ``key``; on a miss, ``await loader()`` computes it once and stores it.

        Concurrent misses on one key share one computation in this process and, on Redis,
        across processes: the first takes a lock (``lock_timeout``), the others wait for its
        value. A hot key is recomputed a little before it expires, by one caller chosen at
        random (``early_refresh_beta``), so it never expires for everyone at once.
        """
        full = self._prefix + key
        raw = await self._guard(lambda: self.backend.get(full), None)
        if raw is not None:
            value, envelope = await self._open(raw, model)
            if value is not _MISSING:
                self.stats.hits += 1
                if not self._refresh_early(envelope) or full in self._flights:
                    return value
                return await self._flight(full, loader, ttl, tuple(tags), model, stale=value)
        self.stats.misses += 1
        return await self._flight(full, loader, ttl, tuple(tags), model)

    def _refresh_early(self, envelope: Envelope | None) -> bool:
        beta = self.config.early_refresh_beta
        if envelope is None or envelope.expiry is None or beta <= 0:
            return False
        # Probabilistic early expiration (Vattani et al., "XFetch"): the longer a value takes
        # to compute, the earlier someone starts recomputing it.
        jitter = -envelope.delta * beta * math.log(1.0 - random.random())
        return time.time() + jitter >= envelope.expiry

    async def _flight(
        self,
        full: str,
        loader: Callable[[], Any],
        ttl: float | None,
        tags: tuple[str, ...],
        model: Any,
        *,
        stale: Any = _MISSING,
    ) -> Any:
        task = self._flights.get(full)
        if task is None:
            task = asyncio.ensure_future(self._fill(full, loader, ttl, tags, model, stale))
            self._flights[full] = task
            task.add_done_callback(lambda t: self._landed(full, t))
        # Shielded: a caller that gives up (client gone) doesn't cancel the others' value.
        return await asyncio.shield(task)

    def _landed(self, full: str, task: asyncio.Task[Any]) -> None:
        if self._flights.get(full) is task:
            del self._flights[full]
        if not task.cancelled():
            task.exception()  # retrieved here, so no "never retrieved" noise if all callers left

    async def _fill(
        self,
        full: str,
        loader: Callable[[], Any],
        ttl: float | None,
        tags: tuple[str, ...],
        model: Any,
        stale: Any,
    ) -> Any:
        seconds = self._ttl(ttl)
        timeout = self.config.lock_timeout
        lock = self._lock_key(full)
        token = secrets.token_hex(16).encode()
        locked = await self._guard(lambda: self.backend.add(lock, token, timeout), None)
        if locked is False and stale is not _MISSING:
            return stale  # another process refreshes it early: serve the current value
        if locked is False:
            # Another process computes it: wait for its value, at most one lock period.
            deadline = time.monotonic() + timeout
            pause = min(0.05, timeout / 20)
            while time.monotonic() < deadline:
                await asyncio.sleep(pause)
                raw = await self._guard(lambda: self.backend.get(full), None)
                if raw is not None:
                    value, _ = await self._open(raw, model)
                    if value is not _MISSING:
                        return value
                locked = await self._guard(lambda: self.backend.add(lock, token, timeout), None)
                if locked is not False:
                    break  # it gave up (or the server went away): compute it here
        try:
            started = time.perf_counter()
            value = loader()
            if inspect.isawaitable(value):
                value = await value
            delta = time.perf_counter() - started
            expiry = time.time() + seconds if seconds is not None else None
            raw = await self._encode(value, tags, expiry, delta)
            if raw is not None:
                await self._guard(lambda: _true(self.backend.set(full, raw, seconds)), False)
            return value
        finally:
            if locked:
                await self._guard(lambda: self.backend.delete_if(lock, token), False)


class _Stored:
    """An object entry and the tag versions it was stored under."""

    __slots__ = ("tags", "value")

    def __init__(self, value: object, tags: tuple[tuple[str, bytes], ...]) -> None:
        self.value = value
        self.tags = tags


async def _true(call: Awaitable[None]) -> bool:
    await call
    return True
