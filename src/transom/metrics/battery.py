"""The :class:`Metrics` battery: Prometheus metrics at ``/metrics``, kept from the public.

What is counted, per process or (``PROMETHEUS_MULTIPROC_DIR`` set before the server starts)
summed over every worker process:

=========================================  ===================================================
``transom_http_requests_total``            counter: ``method``, ``route`` (the template,
                                           ``/posts/{slug}``; ``<unmatched>`` for 404s, so
                                           clients can't grow the label set) and ``status``
``transom_http_request_duration_seconds``  histogram: ``method``, ``route``
``transom_http_requests_in_progress``      gauge: requests being answered now
``transom_db_connections_in_use``          gauge: ``database`` (``primary``, ``replica0``...):
                                           connections checked out of the pools
``transom_db_pool_capacity``               gauge: ``database``: pool size + overflow, summed
                                           over the processes (what can be in use at most)
``transom_cache_operations``               gauge: ``result`` (``hit``, ``miss``, ``error``):
                                           the cache battery's counts since start
``transom_tasks``                          gauge: ``event`` (``enqueued``, ``succeeded``,
                                           ``failed``...): the tasks battery's counts
=========================================  ===================================================

Who may read them (:class:`MetricsConfig`): a request made directly from an allowed network
(loopback by default), or one with ``Authorization: Bearer <token>``. A request that came
through a proxy (it carries ``X-Forwarded-For``) is never judged by its address: nginx on
the same machine would make every visitor look local.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import ipaddress
import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, overload

from transom._concurrency import run_sync
from transom._types import ASGIApp, Message, Receive, Scope, Send
from transom.batteries import Battery, split_arguments
from transom.requests import Request
from transom.responses import JSONResponse, Response
from transom.serving import MULTIPROC_ENV, clear_multiproc_dir

if TYPE_CHECKING:
    from transom.app import App

__all__ = ["MULTIPROC_ENV", "Metrics", "MetricsConfig", "MetricsMiddleware", "clear_multiproc_dir"]

_SLOT = "transom.metrics.route"
UNMATCHED = "<unmatched>"
#: Seconds between two copies of the cache and tasks counters into the shared gauges.
STATS_INTERVAL = 5.0
_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _token_from_env() -> str | None:
    return os.environ.get("TRANSOM_METRICS_TOKEN") or None


@dataclasses.dataclass
class MetricsConfig:
    """The settings of :class:`Metrics`.

    Attributes:
        path: Where the metrics are served.
        token: A bearer token that may read them from anywhere (default:
            ``$TRANSOM_METRICS_TOKEN``; none: only the allowed networks).
        allow: Networks that may read them without a token, on direct connections.
        buckets: The latency histogram's bucket bounds, in seconds.
    """

    path: str = "/metrics"
    token: str | None = dataclasses.field(default_factory=_token_from_env)
    allow: Sequence[str] = ("127.0.0.0/8", "::1/128")
    buckets: Sequence[float] = DEFAULT_BUCKETS


class Metrics(Battery):
    """Prometheus metrics: ``Metrics(app)`` or ``app.install(Metrics(MetricsConfig(...)))``.

    Needs ``prometheus-client`` (``pip install 'transom[metrics]'``).
    """

    name = "transom.metrics"

    @overload
    def __init__(self, config: MetricsConfig | None = None, /) -> None: ...
    @overload
    def __init__(self, app: App, config: MetricsConfig | None = None, /) -> None: ...
    def __init__(self, first: Any = None, second: Any = None, /) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        super().__init__()
        app, config = split_arguments(Metrics, MetricsConfig, (first, second), {})
        self.config = config
        self.networks = [ipaddress.ip_network(n, strict=False) for n in config.allow]
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        #: This battery's registry (not prometheus-client's global one: two apps in one
        #: process, as in tests, each count their own).
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.requests = Counter(
            "transom_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "transom_http_request_duration_seconds",
            "Time from a request's arrival to its last byte, by route template and method.",
            ["method", "route"],
            buckets=tuple(config.buckets),
            registry=registry,
        )
        self.in_progress = Gauge(
            "transom_http_requests_in_progress",
            "HTTP requests being answered.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.db_in_use = Gauge(
            "transom_db_connections_in_use",
            "Database connections checked out of the pools.",
            ["database"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.db_capacity = Gauge(
            "transom_db_pool_capacity",
            "Connections the pools may open at most (pool size + overflow).",
            ["database"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.cache_operations = Gauge(
            "transom_cache_operations",
            "Cache reads and failures since the processes started (the cache battery's stats).",
            ["result"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.tasks = Gauge(
            "transom_tasks",
            "Tasks enqueued, started, succeeded... since the processes started (the tasks "
            "battery's stats).",
            ["event"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self._copier: asyncio.Task[None] | None = None
        # labels() takes a lock and builds a key on each call: keep the children.
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._histograms: dict[tuple[str, str], Any] = {}
        self._watched: set[int] = set()
        if app is not None:
            self.install(app)

    def setup(self, app: App) -> None:
        app.add_middleware(MetricsMiddleware, metrics=self)
        app.access_log_exclude.add(self.config.path)
        app.before_request(self._remember_route)
        app.on_startup(self._watch_pools)
        app.on_startup(self._start_copying)
        app.on_shutdown(self._process_exit)

    # -- recording -------------------------------------------------------------------------------
    def _remember_route(self, request: Request) -> None:
        slot = request.scope.get(_SLOT)
        if slot is not None and request.route is not None:
            slot.append(request.route.path)

    def route_label(self, scope: Scope, slot: list[str]) -> str:
        """The route template of a request (what its ``route`` label says)."""
        if slot:
            return slot[0]
        # The hook did not run: a mounted app answered, or something refused the request
        # before the hooks (a 404, a 405, a middleware). Find the template, never the path.
        from transom.routing import Route

        trie, mounts, _ = self.app.route_table
        path: str = scope["path"]
        for mount in mounts:
            if path == mount.prefix or path.startswith(mount.prefix + "/"):
                return mount.prefix + "/*"
        found = trie.match(path)
        if found is not None:
            for route in found[0].methods.values():
                if isinstance(route, Route):
                    return route.path
        return UNMATCHED

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        key = (method, route, status)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = self.requests.labels(method, route, str(status))
        counter.inc()
        pair = (method, route)
        histogram = self._histograms.get(pair)
        if histogram is None:
            histogram = self._histograms[pair] = self.duration.labels(method, route)
        histogram.observe(seconds)

    async def _watch_pools(self) -> None:
        database = self.app.extensions.get("transom.db")
        if database is None:
            return
        from sqlalchemy import event

        engines = [("primary", database.engine)]
        engines += [(f"replica{i}", e) for i, e in enumerate(database.replicas)]
        for label, engine in engines:
            if id(engine) in self._watched:  # started again (tests): listen once
                continue
            self._watched.add(id(engine))
            gauge = self.db_in_use.labels(label)
            config = database.config
            self.db_capacity.labels(label).set(config.pool_size + config.max_overflow)
            # On the engine, not the pool: dispose() replaces the pool, the listeners stay.
            event.listen(engine.sync_engine, "checkout", lambda *_, g=gauge: g.inc())
            event.listen(engine.sync_engine, "checkin", lambda *_, g=gauge: g.dec())

    def copy_stats(self) -> None:
        """Copy this process's cache and tasks counters into their gauges."""
        cache = self.app.extensions.get("transom.cache")
        if cache is not None:
            stats = cache.stats
            self.cache_operations.labels("hit").set(stats.hits)
            self.cache_operations.labels("miss").set(stats.misses)
            self.cache_operations.labels("error").set(stats.errors)
        tasks = self.app.extensions.get("transom.tasks")
        if tasks is not None:
            stats = tasks.stats
            for event in ("enqueued", "started", "succeeded", "failed", "retried"):
                self.tasks.labels(event).set(getattr(stats, event))
            self.tasks.labels("dead_lettered").set(stats.dead_lettered)

    async def _start_copying(self) -> None:
        extensions = self.app.extensions
        if "transom.cache" not in extensions and "transom.tasks" not in extensions:
            return

        async def copy_every_few_seconds() -> None:
            # The batteries count in plain ints (nothing on their hot path); every worker
            # copies its own into the shared gauges, so a scrape sees them all, a few seconds
            # late at most.
            while True:
                self.copy_stats()
                await asyncio.sleep(STATS_INTERVAL)

        self._copier = asyncio.get_running_loop().create_task(copy_every_few_seconds())

    async def _process_exit(self) -> None:
        if self._copier is not None:
            self._copier.cancel()
            self._copier = None
        if self.multiprocess:
            from prometheus_client import multiprocess

            # The live gauges of a process that is gone must not count any more.
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

    # -- serving ---------------------------------------------------------------------------------
    def allowed(self, scope: Scope) -> bool:
        """Whether the request may read the metrics (see the module's docstring)."""
        token = self.config.token
        forwarded = False
        for name, value in scope["headers"]:
            if name == b"authorization" and token:
                scheme, _, given = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer" and hmac.compare_digest(
                    given.strip().encode(), token.encode()
                ):
                    return True
            elif name in (b"x-forwarded-for", b"forwarded", b"x-real-ip"):
                forwarded = True
        client = scope.get("client")
        if forwarded or not client:
            return False
        try:
            address = ipaddress.ip_address(client[0])
        except ValueError:
            return False
        return any(address in net for net in self.networks)

    def render(self) -> bytes:
        """The metrics in Prometheus' text format (every worker's in multiprocess mode)."""
        from prometheus_client import CollectorRegistry, generate_latest, multiprocess

        self.copy_stats()  # this process's, fresh
        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)

    async def answer(self, scope: Scope, send: Send) -> None:
        """Answer a request for the metrics."""
        from prometheus_client import CONTENT_TYPE_LATEST

        headers = {"Cache-Control": "no-store"}
        response: Response
        if scope["method"] not in ("GET", "HEAD"):
            headers["Allow"] = "GET, HEAD"
            response = JSONResponse({"detail": "Method Not Allowed"}, 405, headers)
        elif not self.allowed(scope):
            response = JSONResponse({"detail": "Forbidden"}, 403, headers)
        else:
            # Reading every worker's files is blocking I/O: off the event loop.
            body = await run_sync(self.render)
            response = Response(body, 200, headers, media_type=CONTENT_TYPE_LATEST)
        await response.send_to(scope, send, self.app.default_headers.raw)


class MetricsMiddleware:
    """Times and counts each HTTP request, and serves the metrics (installed by
    :class:`Metrics`)."""

    __slots__ = ("app", "metrics", "path", "quiet")

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self.path = metrics.config.path
        # What the access log leaves out (the health probes) is not counted either: a probe
        # every few seconds per balancer says nothing about the app's traffic.
        self.quiet = frozenset(metrics.app.access_log_exclude)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == self.path:
            await self.metrics.answer(scope, send)
            return
        if scope["path"] in self.quiet:
            await self.app(scope, receive, send)
            return
        slot: list[str] = []
        scope[_SLOT] = slot
        status = 500  # what the server answers when the app raises before responding
        metrics = self.metrics

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        metrics.in_progress.inc()
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_status)
        finally:
            metrics.in_progress.dec()
            elapsed = time.perf_counter() - started
            method = scope["method"]
            if method not in _METHODS:
                method = "other"  # any token is a method: don't let clients grow the labels
            metrics.observe(method, metrics.route_label(scope, slot), status, elapsed)
