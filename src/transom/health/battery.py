"""The :class:`Health` battery: ``/healthz`` (alive) and ``/readyz`` (ready to serve).

The probes are answered by an ASGI middleware, before routing: no session, CSRF check, rate
limit or route dependency runs for them, and the allowed-hosts check doesn't either (a
Kubernetes or load-balancer probe sends the pod's or host's address as ``Host``; the probes'
answers never reflect it). The access log leaves them out (``App.access_log_exclude``): a
probe every few seconds per balancer would drown the lines that matter.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, overload
from urllib.parse import urlsplit

from transom._concurrency import run_sync
from transom._types import ASGIApp, Receive, Scope, Send
from transom.batteries import Battery, split_arguments
from transom.responses import JSONResponse

if TYPE_CHECKING:
    from transom.app import App

__all__ = ["Check", "Health", "HealthConfig", "HealthMiddleware", "NotReady"]

logger = logging.getLogger("transom.health")

#: A readiness check: an async function that returns when the part is usable and raises
#: (anything) when it is not. :class:`NotReady` says why in one word.
Check = Callable[[], Awaitable[object]]

_BROKER_PORTS = {"amqp": 5672, "amqps": 5671, "redis": 6379, "rediss": 6379}


class NotReady(Exception):
    """Raised by a check that ran fine but found the part not ready (migrations pending).

    Args:
        status: One word for the JSON body (``"pending"``).
        detail: What is wrong and how to fix it, for the log (never sent to the client).
    """

    def __init__(self, status: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status


@dataclasses.dataclass
class HealthConfig:
    """The settings of :class:`Health`.

    Attributes:
        liveness_path: Where the liveness probe answers (``""``: nowhere).
        readiness_path: Where the readiness probe answers (``""``: nowhere).
        timeout: Seconds each readiness check may take before it counts as failed.
        retry_after: ``Retry-After`` seconds sent with a 503.
        builtin: Check the installed batteries (database, migrations, cache, task broker).
        migrations: Among those, check that the database's migrations are applied.
        checks: More checks by name (``{"search": ping_search}``), added to the built-in ones.
    """

    liveness_path: str = "/healthz"
    readiness_path: str = "/readyz"
    timeout: float = 3.0
    retry_after: int = 5
    builtin: bool = True
    migrations: bool = True
    checks: Mapping[str, Check] = dataclasses.field(default_factory=dict)


class Health(Battery):
    """Liveness and readiness probes: ``Health(app)`` or ``app.install(Health(config))``.

    Example:
        >>> from transom import App
        >>> app = App()
        >>> health = Health(app)
        >>> with app.test_client() as client:
        ...     client.get("/healthz").json()
        {'status': 'ok'}
    """

    name = "transom.health"

    @overload
    def __init__(self, config: HealthConfig | None = None, /) -> None: ...
    @overload
    def __init__(self, app: App, config: HealthConfig | None = None, /) -> None: ...
    def __init__(self, first: Any = None, second: Any = None, /) -> None:
        super().__init__()
        app, config = split_arguments(Health, HealthConfig, (first, second), {})
        self.config = config
        self._extra: dict[str, Check] = dict(config.checks)
        self._failing: set[str] = set()
        self._migrations_ok = False
        if app is not None:
            self.install(app)

    def setup(self, app: App) -> None:
        app.add_middleware(HealthMiddleware, health=self)
        app.access_log_exclude.update(p for p in self.paths() if p)

    def paths(self) -> tuple[str, str]:
        """The liveness and readiness paths."""
        return self.config.liveness_path, self.config.readiness_path

    def add_check(self, name: str, check: Check) -> None:
        """Add a readiness check (an async function that raises when ``name`` is not usable)."""
        self._extra[name] = check

    # -- the checks ------------------------------------------------------------------------------
    def checks(self) -> dict[str, Check]:
        """Every readiness check by name: the installed batteries' (in ``builtin`` mode), then
        the config's and :meth:`add_check`'s. The migrations check runs after the database
        one, and only when the database answered."""
        found: dict[str, Check] = {}
        if self.config.builtin:
            extensions = self.app.extensions
            database = extensions.get("transom.db")
            if database is not None:
                found["database"] = lambda: _database(database)
            cache = extensions.get("transom.cache")
            if cache is not None:
                found["cache"] = lambda: _cache(cache)
            tasks = extensions.get("transom.tasks")
            broker = _broker_address(tasks)
            if broker is not None:
                found["tasks"] = lambda: _reachable(*broker)
        found.update(self._extra)
        return found

    async def readiness(self) -> dict[str, str]:
        """Run every check (concurrently, each within ``timeout``): ``{name: status}``, where
        the status is ``"ok"`` or what went wrong (``"timeout"``, ``"error"``, ``"pending"``)."""
        checks = self.checks()
        names = list(checks)
        results = await asyncio.gather(*(self._run(n, checks[n]) for n in names))
        statuses = dict(zip(names, results, strict=True))
        database = self.app.extensions.get("transom.db")
        if self.config.builtin and self.config.migrations and database is not None:
            if statuses.get("database") == "ok":
                statuses["migrations"] = await self._run(
                    "migrations", lambda: self._migrations(database)
                )
            else:
                statuses["migrations"] = "unknown"
        return statuses

    async def _run(self, name: str, check: Check) -> str:
        started = time.perf_counter()
        try:
            await asyncio.wait_for(check(), self.config.timeout)
        except Exception as exc:
            status = (
                exc.status
                if isinstance(exc, NotReady)
                else "timeout"
                if isinstance(exc, TimeoutError)
                else "error"
            )
            if name not in self._failing:
                self._failing.add(name)
                # Once per outage, with its cause: the probe repeats every few seconds.
                cause = str(exc) or type(exc).__name__
                if isinstance(exc, TimeoutError):
                    cause = f"no answer within {self.config.timeout:g} s"
                logger.warning("Not ready: %s is %s (%s)", name, status, cause)
            return status
        if name in self._failing:
            self._failing.discard(name)
            elapsed = (time.perf_counter() - started) * 1000
            logger.warning("Ready again: %s answered (in %.0f ms)", name, elapsed)
        return "ok"

    async def _migrations(self, database: Any) -> None:
        # Migrations only move forward while the process lives: once applied, stop asking.
        if self._migrations_ok:
            return
        from transom.db.migrations.status import migration_status

        problem = await run_sync(migration_status, database)
        if problem is not None:
            raise NotReady("pending", problem)
        self._migrations_ok = True

    # -- the answers -----------------------------------------------------------------------------
    async def answer(self, path: str, scope: Scope, send: Send) -> None:
        """Answer the probe at ``path`` (one of :meth:`paths`)."""
        headers = {"Cache-Control": "no-store"}
        if scope["method"] not in ("GET", "HEAD"):
            headers["Allow"] = "GET, HEAD"
            response = JSONResponse({"detail": "Method Not Allowed"}, 405, headers)
        elif path == self.config.liveness_path:
            response = JSONResponse({"status": "ok"}, 200, headers)
        else:
            statuses = await self.readiness()
            failing = [name for name, status in statuses.items() if status != "ok"]
            if failing:
                headers["Retry-After"] = str(self.config.retry_after)
                body = {"status": "unavailable", "failing": failing, "checks": statuses}
                response = JSONResponse(body, 503, headers)
            else:
                response = JSONResponse({"status": "ok", "checks": statuses}, 200, headers)
        await response.send_to(scope, send, self.app.default_headers.raw)


class HealthMiddleware:
    """Answers the probes of a :class:`Health` before anything else runs (installed by it)."""

    __slots__ = ("app", "health", "paths")

    def __init__(self, app: ASGIApp, health: Health) -> None:
        self.app = app
        self.health = health
        self.paths = frozenset(p for p in health.paths() if p)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self.paths:
            await self.health.answer(scope["path"], scope, send)
            return
        await self.app(scope, receive, send)


async def _database(database: Any) -> None:
    from sqlalchemy import text

    async with database.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def _cache(cache: Any) -> None:
    # The backend itself, not Cache.get: that one turns an outage into a miss by design.
    await cache.backend.get(cache.make_key("transom-health"))


def _broker_address(tasks: Any) -> tuple[str, int] | None:
    """The broker's host and port, for brokers out of process (AMQP, Redis)."""
    config = getattr(tasks, "config", None)
    if config is None or config.backend not in ("amqp", "redis"):
        return None
    parts = urlsplit(config.broker_url)
    port = parts.port or _BROKER_PORTS.get(parts.scheme)
    if port is None:
        return None
    return parts.hostname or "127.0.0.1", port


async def _reachable(host: str, port: int) -> None:
    """Open (and close) a TCP connection: the broker's clients reconnect by themselves, so
    whether a connection can be opened is what decides if tasks can be sent."""
    _, writer = await asyncio.open_connection(host, port)
    writer.close()
    await writer.wait_closed()
