"""A cache in front of the access-token revocation check.

Without it every request authenticated by a JWT asks the database whether its token was
revoked. With it, the answer for a token (its ``jti``) is kept:

- **"not revoked" for at most** :attr:`JWTConfig.revocation_cache_ttl` seconds (30 by
  default), so a token revoked by *another process* may keep working that long when the
  cache is this process's memory;
- **"revoked" until the token expires**: :meth:`JWTManager.revoke_access` writes it through
  before the revocation commits, so this process refuses the token at once, and so does every
  process sharing the cache battery on Redis (the "revoked" entry replaces any "not revoked"
  one there; a "not revoked" entry is only ever *added*, never overwrites, so a check racing
  with a revocation cannot hide it).

Where the cache lives: the cache battery (:class:`transom.cache.Cache`) when the app has one
(found by its extension name, ``"transom.cache"``: the auth battery never imports it), else a
bounded in-process cache. A cache that fails (Redis down) is a miss: the database answers,
the request never fails because of the cache.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Any, Protocol

__all__ = ["LocalRevocations", "RevocationCache", "SharedRevocations"]

logger = logging.getLogger("transom.auth")


class RevocationCache(Protocol):
    """Where the answers of the revocation check are kept."""

    async def get(self, jti: str) -> bool | None:
        """``True``: revoked; ``False``: not revoked (recently checked); ``None``: unknown."""
        ...

    async def not_revoked(self, jti: str, ttl: float) -> None:
        """Remember for ``ttl`` seconds that the token was not revoked, unless the cache
        already says something about it (a revocation written meanwhile wins)."""
        ...

    async def revoked(self, jti: str, ttl: float) -> None:
        """Remember for ``ttl`` seconds (the token's remaining life) that it is revoked."""
        ...


class LocalRevocations:
    """In this process: at most ``max_entries`` answers (the oldest go first), each until it
    expires."""

    def __init__(self, max_entries: int = 10_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[bool, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, jti: str) -> bool | None:
        entry = self._entries.get(jti)
        if entry is None:
            return None
        if entry[1] <= time.monotonic():
            del self._entries[jti]
            return None
        return entry[0]

    async def not_revoked(self, jti: str, ttl: float) -> None:
        if await self.get(jti) is None:
            self._store(jti, False, ttl)

    async def revoked(self, jti: str, ttl: float) -> None:
        self._store(jti, True, ttl)

    def _store(self, jti: str, revoked: bool, ttl: float) -> None:
        entries = self._entries
        entries[jti] = (revoked, time.monotonic() + ttl)
        entries.move_to_end(jti)
        while len(entries) > self.max_entries:
            entries.popitem(last=False)


class _Cache(Protocol):
    """What is used of the cache battery (typed here so auth never imports it)."""

    async def get(self, key: str, default: Any = None) -> Any: ...
    async def set(self, key: str, value: Any, ttl: float | None = None) -> bool: ...
    async def add(self, key: str, value: Any, ttl: float | None = None) -> bool: ...


class SharedRevocations:
    """Through the cache battery: shared by every process using the same Redis.

    Any error of the cache is a miss (logged): the caller then asks the database.
    """

    PREFIX = "transom.auth.jwt.revoked:"

    def __init__(self, cache: _Cache) -> None:
        self.cache = cache

    async def get(self, jti: str) -> bool | None:
        try:
            value = await self.cache.get(self.PREFIX + jti)
        except Exception:  # the cache guards its outages; anything else must not fail auth
            logger.warning("revocation cache read failed: asking the database", exc_info=True)
            return None
        return None if value is None else bool(value)

    async def not_revoked(self, jti: str, ttl: float) -> None:
        try:
            await self.cache.add(self.PREFIX + jti, 0, ttl)
        except Exception:
            logger.warning("revocation cache write failed", exc_info=True)

    async def revoked(self, jti: str, ttl: float) -> None:
        try:
            await self.cache.set(self.PREFIX + jti, 1, ttl)
        except Exception:
            logger.warning("revocation cache write failed", exc_info=True)
