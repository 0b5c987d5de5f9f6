"""Rate limiting per client IP, per user or per custom key: ``@limit("10/minute")``.

A :class:`RateLimit` is three things at once:

* a decorator for a handler: ``@limit("10/minute")`` (enforced by the ``Security`` battery);
* a decorator for a router: ``limit("1000/hour")(router)`` (one budget for all its routes);
* a dependency marker: ``dependencies=[limit("5/minute")]`` on a route or ``Router``.

Counting uses fixed windows that start at a key's first hit, kept in memory by default or in
Redis (:class:`transom.security.backends.redis.RedisRateLimitBackend`) so that every process
shares one budget. An exhausted budget answers 429 with ``Retry-After``.

When the store is unreachable (:class:`~transom.security.StoreUnavailable`), a limit fails
closed by default: 503 with ``Retry-After``, since an unenforced login limit is an open door
to password guessing. ``limit(..., fail_open=True)`` lets requests through instead (logged).
"""

from __future__ import annotations

import abc
import itertools
import math
import re
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from transom.exceptions import HTTPException
from transom.openapi import ResponseSpec, declare_responses, error_response
from transom.params import Depends
from transom.requests import Request
from transom.routing import Router
from transom.security._context import (
    StoreUnavailable,
    context_of,
    security_logger,
    unavailable_error,
)

__all__ = ["MemoryRateLimitBackend", "RateLimit", "RateLimitBackend", "limit", "parse_rate"]

T = TypeVar("T")
KeyFunc = Callable[[Request], str | Awaitable[str | None] | None]
_UNITS = {
    "s": 1,
    "second": 1,
    "m": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}
_RATE_RE = re.compile(r"\s*(\d+)\s*(?:/|per)\s*(\d*)\s*([a-z]+?)s?\s*", re.IGNORECASE)
_counter = itertools.count()
EXTENSION_KEY = "transom.security"  # where the Security battery is in app.extensions


def parse_rate(rate: str) -> tuple[int, int]:
    """``"10/minute"`` -> ``(10, 60)``; also ``"100/hour"``, ``"5/10s"``, ``"1000/day"``."""
    match = _RATE_RE.fullmatch(rate)
    unit = match.group(3).lower() if match else ""
    if match is None or unit not in _UNITS or int(match.group(1)) <= 0:
        raise ValueError(f"rate {rate!r} must look like '10/minute', '5/10s' or '1000/day'")
    return int(match.group(1)), int(match.group(2) or 1) * _UNITS[unit]


class RateLimitBackend(abc.ABC):
    """Counts hits per key in windows of ``window`` seconds."""

    @abc.abstractmethod
    async def hit(self, key: str, window: int) -> tuple[int, float]:
        """Count one hit; return (hits in the current window, seconds until it resets).

        Raise :class:`~transom.security.StoreUnavailable` when the store can't be reached.
        """

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; called when the app shuts down."""


class MemoryRateLimitBackend(RateLimitBackend):
    """Counters in this process's memory (each worker process counts on its own)."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._windows: dict[str, tuple[float, int]] = {}
        self._max_keys = max_keys

    async def hit(self, key: str, window: int) -> tuple[int, float]:
        now = time.monotonic()
        start, count = self._windows.get(key, (now, 0))
        if now - start >= window:
            start, count = now, 0
        count += 1
        if len(self._windows) >= self._max_keys and key not in self._windows:
            self._prune(now, window)
        self._windows[key] = (start, count)
        return count, start + window - now

    def _prune(self, now: float, window: int) -> None:
        # Bound memory under a flood of distinct keys: drop finished windows, then the oldest.
        expired = [k for k, (start, _) in self._windows.items() if now - start >= window]
        for k in expired:
            del self._windows[k]
        while len(self._windows) >= self._max_keys:
            del self._windows[next(iter(self._windows))]


_TOO_MANY: dict[int, ResponseSpec] = {
    429: {
        **error_response("Rate limit exceeded"),
        "headers": {
            "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}
        },
    }
}


class RateLimit(Depends):
    """A limit such as ``10/minute`` on a handler, a router or as a route dependency.

    Args:
        rate: ``"<count>/<period>"``: ``"10/minute"``, ``"5/10s"``, ``"1000/day"``.
        key: ``"ip"`` (the client address, after trusted-proxy rewriting), ``"user"`` (the
            logged-in user id in the session, else the IP), or a function of the request
            returning a key (``None`` skips the limit for that request).
        scope: Name of the budget; the same scope in different limits shares one budget.
            Defaults to the decorated handler's or router's name.
        backend: Where to count; defaults to the app's (``SecurityConfig(rate_limit_backend=...)``).
        methods: Only count these methods (e.g. ``{"POST"}``); default: all.
        fail_open: When the backend is unreachable, let requests through unlimited (one
            warning logged per request) instead of answering 503. Off by default: only turn
            it on for limits that protect capacity, never for login or password-reset limits.
    """

    def __init__(
        self,
        rate: str,
        *,
        key: str | KeyFunc = "ip",
        scope: str | None = None,
        backend: RateLimitBackend | None = None,
        methods: set[str] | frozenset[str] | None = None,
        fail_open: bool = False,
    ) -> None:
        super().__init__(self._dependency, use_cache=True)
        self.rate = rate
        self.limit, self.window = parse_rate(rate)
        if isinstance(key, str) and key not in ("ip", "user"):
            raise ValueError("key must be 'ip', 'user' or a function of the request")
        self.key = key
        # An unnamed limit used as a dependency gets a name from its creation order, which is
        # the same in every process running the same code (so Redis budgets line up).
        self._auto_scope = scope is None
        self.scope = scope or f"limit{next(_counter)}:{rate}"
        self.backend = backend
        self.methods = frozenset(m.upper() for m in methods) if methods else None
        self.fail_open = fail_open
        self._fallback: MemoryRateLimitBackend | None = None

    def __call__(self, target: T) -> T:
        """Decorate a handler or a router with this limit."""
        if isinstance(target, Router):
            if self._auto_scope:
                self.scope = f"router:{target.name or target.prefix or id(target)}:{self.rate}"
            target.dependencies.append(self)
            return target
        if not callable(target):
            raise TypeError("limit() decorates a handler function or a Router")
        name = f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', id(target))}"
        scope = f"route:{name}:{self.rate}" if self._auto_scope else self.scope

        @declare_responses(_TOO_MANY, methods=self.methods)
        async def guard(request: Request) -> None:
            await self.check(request, scope)

        # The core compiles these into the route's guards, so the limit holds in any
        # decorator order and with or without the Security battery.
        guards = [*getattr(target, "__transom_dependencies__", ()), Depends(guard)]
        setattr(target, "__transom_dependencies__", guards)  # noqa: B010
        return target

    @declare_responses(_TOO_MANY)
    async def _dependency(self, request: Request) -> None:
        await self.check(request)

    async def check(self, request: Request, scope: str | None = None) -> None:
        """Count this request; raise 429 with ``Retry-After`` once the budget is spent."""
        if self.methods is not None and request.method not in self.methods:
            return
        client_key = await self._client_key(request)
        if client_key is None:
            return
        backend = self._backend(request)
        bucket = f"{scope or self.scope}:{client_key}"
        try:
            count, reset = await backend.hit(bucket, self.window)
        except StoreUnavailable as exc:
            if self.fail_open:
                security_logger.warning(
                    "Rate limit %s not enforced (fail_open=True): %s", self.rate, exc
                )
                return
            raise unavailable_error(exc, "Rate limiting") from exc
        if count > self.limit:
            retry = max(1, math.ceil(reset))
            security_logger.info("Rate limit %s exceeded by %s", self.rate, client_key)
            raise HTTPException(
                429,
                f"Rate limit exceeded ({self.rate}); retry in {retry} s",
                headers={"Retry-After": str(retry)},
            )

    async def _client_key(self, request: Request) -> str | None:
        if callable(self.key):
            value = self.key(request)
            if not isinstance(value, str | None):
                value = await value
            return None if value is None else f"k:{value}"
        if self.key == "user":
            ctx = context_of(request)
            if ctx is not None and ctx.security.sessions is not None:
                from transom.security.sessions import AUTH_USER_KEY, load_session

                user = (await load_session(ctx)).get(AUTH_USER_KEY)
                if user is not None:
                    return f"u:{user}"
        client = request.client
        return f"ip:{client[0] if client else 'unknown'}"

    def _backend(self, request: Request) -> RateLimitBackend:
        if self.backend is not None:
            return self.backend
        app = request.app
        security = app.extensions.get(EXTENSION_KEY) if app is not None else None
        if security is not None:
            return security.rate_limit_backend  # type: ignore[no-any-return]
        if self._fallback is None:
            self._fallback = MemoryRateLimitBackend()
        return self._fallback

    def __repr__(self) -> str:
        return f"RateLimit({self.rate!r}, scope={self.scope!r})"


def limit(
    rate: str,
    *,
    key: str | KeyFunc = "ip",
    scope: str | None = None,
    backend: RateLimitBackend | None = None,
    methods: set[str] | frozenset[str] | None = None,
    fail_open: bool = False,
) -> RateLimit:
    """Make a :class:`RateLimit` (see there): ``@limit("10/minute")``."""
    return RateLimit(
        rate, key=key, scope=scope, backend=backend, methods=methods, fail_open=fail_open
    )
