"""The :class:`Tasks` battery: one backend per app, the run of a task, results and stats."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import logging
import random
import re
import sys
import time
import traceback
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, overload

from transom.batteries import Battery
from transom.exceptions import ImproperlyConfigured
from transom.tasks.config import TasksConfig
from transom.tasks.core import (
    BrokerUnavailable,
    Task,
    TaskResult,
    TaskStatus,
    new_task_id,
    registry,
)
from transom.tasks.store import MemoryStore, NoStore, RedisStore, StateStore, StoreUnavailable
from transom.tasks.transports import (
    AmqpTransport,
    DeadLetter,
    EagerTransport,
    Envelope,
    InProcessTransport,
    RedisTransport,
    Transport,
)

if TYPE_CHECKING:
    from transom.app import App
    from transom.requests import Request
    from transom.responses import Response

__all__ = ["Tasks", "TasksStats", "current_tasks"]

logger = logging.getLogger("transom.tasks")

_current: contextvars.ContextVar[Tasks | None] = contextvars.ContextVar(
    "transom_tasks", default=None
)
_last: list[Tasks] = []
#: The id of the request being handled, for the log lines of the tasks it enqueues.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "transom_tasks_request_id", default=None
)


def current_tasks() -> Tasks:
    """The :class:`Tasks` that ``task.enqueue`` uses: the one activated in this context
    (``with tasks.activate()``), else the one installed last in this process."""
    tasks = _current.get()
    if tasks is not None:
        return tasks
    if _last:
        return _last[-1]
    raise ImproperlyConfigured("no Tasks battery: call Tasks(app) before enqueuing tasks")


@dataclasses.dataclass
class TasksStats:
    """Counters and latencies of this process, for metrics: ``Tasks.of(app).stats``."""

    enqueued: int = 0
    started: int = 0
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    dead_lettered: int = 0
    #: Seconds from enqueue to start of the last runs (bounded), for percentiles.
    latencies: list[float] = dataclasses.field(default_factory=list, repr=False)

    def observe(self, seconds: float) -> None:
        self.latencies.append(seconds)
        if len(self.latencies) > 10_000:
            del self.latencies[:5_000]

    def percentile(self, q: float) -> float | None:
        """The ``q`` (0-1) percentile of enqueue-to-start latency, in seconds."""
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "enqueued": self.enqueued,
            "started": self.started,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "retried": self.retried,
            "dead_lettered": self.dead_lettered,
            "latency_p50": self.percentile(0.5),
            "latency_p99": self.percentile(0.99),
        }


#: Statuses from which a run may start, and be cancelled (None: no record yet).
_STARTABLE = (None, TaskStatus.READY, TaskStatus.RUNNING)
_CANCELLABLE = (None, TaskStatus.READY)

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class _RequestContext:
    """Makes the app's :class:`Tasks` the current one during its requests, and records the
    request's id for the tasks it enqueues: they carry it in their labels, and each run's log
    lines name it. The id is the core's (:mod:`transom.logs`); with those ids turned off, a
    well-formed ``X-Request-ID`` header, else none. Ids are not made here."""

    def __init__(self, app: Any, tasks: Tasks) -> None:
        self.app = app
        self.tasks = tasks

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The app's request id (transom.logs) when it gives one, so the task's log lines and
        # the request's share it.
        rid = scope.get("transom.request_id")
        for name, value in () if rid else scope["headers"]:
            if name == b"x-request-id":
                text = value.decode("latin-1")
                # Into log lines and message labels: a bounded, plain token or nothing.
                rid = text if _REQUEST_ID.fullmatch(text) else None
                break
        tasks_token = _current.set(self.tasks)
        rid_token = request_id_var.set(rid)
        try:
            await self.app(scope, receive, send)
        finally:
            request_id_var.reset(rid_token)
            _current.reset(tasks_token)


class _Activation:
    def __init__(self, tasks: Tasks) -> None:
        self.tasks = tasks
        self.token: contextvars.Token[Tasks | None] | None = None

    def __enter__(self) -> Tasks:
        self.token = _current.set(self.tasks)
        return self.tasks

    def __exit__(self, *exc: object) -> None:
        assert self.token is not None
        _current.reset(self.token)


class Tasks(Battery):
    """Background and scheduled tasks: ``Tasks(app)`` installs it.

    In-process by default (tasks run on the app's loop after ``enqueue``);
    ``TRANSOM_TASKS_BROKER_URL=amqp://...`` or ``redis://...`` sends them to ``transom worker``;
    ``TasksConfig(eager=True)`` runs them inside ``enqueue`` (tests).

    Example:
        >>> from transom import App
        >>> tasks = Tasks(App(), TasksConfig(eager=True))
        >>> tasks.config.backend
        'eager'
    """

    name = "transom.tasks"
    #: The admin's tasks page (``tasks/admin.html``), when the admin is installed.
    template_packages = ("transom.tasks",)

    @overload
    def __init__(self, config: TasksConfig | None = None, /) -> None: ...
    @overload
    def __init__(self, app: App, config: TasksConfig | None = None, /) -> None: ...
    def __init__(self, target: Any = None, config: TasksConfig | None = None, /) -> None:
        super().__init__()
        app = None
        if isinstance(target, TasksConfig):
            config = target
        elif target is not None:
            app = target
        self.config = config or TasksConfig()
        self.stats = TasksStats()
        self.store: StateStore = self._make_store()
        self.transport: Transport = self._make_transport(None)
        self._started = False
        self._start_lock = asyncio.Lock()
        self._relay: Any = None
        _last.append(self)
        if app is not None:
            self.install(app)

    # -- set-up ----------------------------------------------------------------------------------
    def _make_store(self) -> StateStore:
        if self.config.backend in ("eager", "inprocess"):
            return MemoryStore()
        if self.config.state_url:
            return RedisStore(self.config.state_url, self.config.connect_timeout)
        return NoStore()

    def queues(self) -> list[str]:
        """Every queue the registered tasks use (the default one first)."""
        names = [self.config.default_queue]
        names += [t.queue for t in registry.values() if t.queue]
        return list(dict.fromkeys(names))

    def _make_transport(self, queues: list[str] | None) -> Transport:
        backend = self.config.backend
        if backend == "eager":
            return EagerTransport(self.run)
        if backend == "inprocess":
            return InProcessTransport(self.run)
        names = queues or self.queues()
        if backend == "amqp":
            return AmqpTransport(
                self.config.broker_url,
                self.config.prefix,
                names,
                self.config.prefetch,
                self.config.connect_timeout,
            )
        return RedisTransport(
            self.config.broker_url,
            self.config.prefix,
            names,
            self.config.prefetch,
            self.config.redeliver_after,
        )

    def setup(self, app: App) -> None:

        app.on_startup(self._start_serving)
        app.on_shutdown(self.close)
        app.add_middleware(_RequestContext, tasks=self)
        # At build time, whichever battery was installed first.
        app.add_check(self._add_admin_page)

        async def broker_unavailable(request: Request, exc: Exception) -> Response:
            from transom.exceptions import HTTPException

            # Logged with its cause: a 503 nobody can explain is an outage nobody sees.
            logger.warning("503 for %s %s: %s", request.method, request.url.path, exc)
            raise HTTPException(
                503,
                "The service is temporarily unavailable, try again shortly.",
                headers={"Retry-After": str(self.config.retry_after)},
            )

        app.exception_handler(BrokerUnavailable)(broker_unavailable)

    def _add_admin_page(self) -> None:
        site = sys.modules.get("transom.admin.site")  # not imported: no admin installed
        admin = self.app.batteries.find(site.Admin) if site is not None else None
        if admin is not None:
            from transom.tasks.admin import install_admin

            install_admin(self, admin)

    def activate(self) -> _Activation:
        """``with tasks.activate():`` enqueue through this battery (several apps, one process)."""
        return _Activation(self)

    async def _start_serving(self) -> None:
        # A broker that is down must not keep the app from serving its other pages: enqueue
        # connects again (and raises BrokerUnavailable, a 503, while it is still down).
        try:
            await self.start()
        except BrokerUnavailable as exc:
            logger.warning("task broker unavailable at start-up (%s): tasks answer 503", exc)

    async def start(self) -> None:
        """Connect to the broker (the app does it at start-up; ``enqueue`` does it if needed)."""
        async with self._start_lock:
            if self._started:
                return
            # A queue used by a task defined after this battery was made must exist too.
            if isinstance(self.transport, AmqpTransport | RedisTransport) and set(
                self.queues()
            ) - set(self.transport.queues):
                self.transport = self._make_transport(None)
            try:
                await asyncio.wait_for(self.transport.start(), self.config.connect_timeout)
            except (OSError, ConnectionError, TimeoutError) as exc:
                raise BrokerUnavailable(f"cannot reach the task broker: {exc!r}") from exc
            except Exception as exc:
                if type(exc).__module__.startswith(("aiormq", "aio_pika", "redis", "pamqp")):
                    raise BrokerUnavailable(f"cannot reach the task broker: {exc!r}") from exc
                raise
            self._started = True
        if self._relay is None and self.installed and self.config.backend != "eager":
            from transom.tasks.outbox import Relay

            self._relay = Relay.for_app(self)
            if self._relay is not None:
                self._relay.start()

    async def close(self) -> None:
        """Stop relaying the outbox, finish in-process tasks, close connections."""
        if self._relay is not None:
            await self._relay.stop()
            self._relay = None
        if self._started:
            self._started = False
            await self.transport.close()
        await self.store.close()

    # -- sending ---------------------------------------------------------------------------------
    def _key(self, kind: str, name: str) -> str:
        return f"{self.config.prefix}:{kind}:{name}"

    async def enqueue(
        self, task: Task[Any, Any], arguments: dict[str, Any], *, task_id: str | None = None
    ) -> TaskResult[Any]:
        """Send ``task`` with already validated (JSON) ``arguments``: ``task.enqueue`` calls it."""
        options = task.options
        delay = options.delay_seconds()
        envelope = Envelope(
            id=task_id or new_task_id(),
            task=task.name,
            arguments=arguments,
            queue=options.queue or self.config.default_queue,
            priority=options.priority,
            request_id=request_id_var.get(),
            key=options.key,
        )
        result: TaskResult[Any] = TaskResult(task, envelope.id, self)
        try:
            if options.key is not None:
                if not self.store.keeps:
                    raise ImproperlyConfigured(
                        "idempotency keys need a shared store: set TRANSOM_TASKS_RESULT_URL"
                    )
                existing = await self.store.claim(
                    self._key("key", options.key), envelope.id, self.config.dedup_ttl
                )
                if existing is not None:
                    logger.info("task %s key %r: duplicate of %s", task.name, options.key, existing)
                    return TaskResult(task, existing, self)
            await self._send(envelope, delay)
        except StoreUnavailable as exc:
            raise BrokerUnavailable(str(exc)) from exc
        self.stats.enqueued += 1
        return result

    async def _send(self, envelope: Envelope, delay: float | None) -> None:
        # No record is written here: a run with none is READY, so an enqueue costs only the
        # message the broker confirms. asyncio.timeout, not wait_for: no extra asyncio task.
        if not self._started:
            await self.start()
        try:
            async with asyncio.timeout(self.config.connect_timeout):
                await self.transport.send(envelope, delay)
        except (OSError, ConnectionError, TimeoutError, RuntimeError) as exc:
            await self._unclaim(envelope)
            raise BrokerUnavailable(f"task {envelope.task} not sent: {exc!r}") from exc
        except Exception as exc:
            if type(exc).__module__.startswith(("aiormq", "aio_pika", "redis", "pamqp")):
                await self._unclaim(envelope)
                raise BrokerUnavailable(f"task {envelope.task} not sent: {exc!r}") from exc
            raise

    async def _unclaim(self, envelope: Envelope) -> None:
        # Not sent: the idempotency key must not keep the next try out.
        if envelope.key:
            await self.store.delete(self._key("key", envelope.key))

    async def enqueue_on_commit(
        self, task: Task[Any, Any], session: Any, arguments: dict[str, Any]
    ) -> str:
        """Send ``task`` when ``session`` commits (never when it rolls back)."""
        from transom.tasks.outbox import enqueue_on_commit

        return await enqueue_on_commit(self, task, session, arguments)

    # -- results ---------------------------------------------------------------------------------
    async def record(self, task_id: str) -> dict[str, Any] | None:
        """The stored state of run ``task_id`` (``None``: not started yet, unknown or expired)."""
        try:
            return await self.store.get(self._key("run", task_id))
        except StoreUnavailable as exc:
            raise BrokerUnavailable(str(exc)) from exc

    async def _update(self, task_id: str, **fields: Any) -> None:
        if self.store.keeps:
            await self.store.update(self._key("run", task_id), fields, self.config.result_ttl)

    async def cancel(self, task_id: str) -> bool:
        """Cancel a task that has not started: True when it will not run."""
        try:
            refused = await self.store.transition(
                self._key("run", task_id),
                {"status": TaskStatus.CANCELLED, "finished_at": time.time()},
                self.config.result_ttl,
                _CANCELLABLE,
            )
        except StoreUnavailable as exc:
            raise BrokerUnavailable(str(exc)) from exc
        return self.store.keeps and refused is None

    # -- dead letters ----------------------------------------------------------------------------
    async def dead_letters(self) -> list[DeadLetter]:
        """Tasks that kept failing (oldest first)."""
        if not self._started:
            await self.start()
        return await self.transport.dead_letters()

    async def retry_dead(self, task_id: str) -> bool:
        """Send a dead-lettered task again (attempts counted from zero); False: not found."""
        if not self._started:
            await self.start()
        letter = await self.transport.take_dead(task_id)
        if letter is None:
            return False
        envelope = dataclasses.replace(letter.envelope, attempt=0, enqueued_at=time.time())
        await self._update(envelope.id, status=TaskStatus.READY, errors=[])
        await self._send(envelope, None)
        return True

    async def discard_dead(self, task_id: str) -> bool:
        """Forget a dead-lettered task; False: not found."""
        if not self._started:
            await self.start()
        return await self.transport.take_dead(task_id) is not None

    # -- running ---------------------------------------------------------------------------------
    def backoff(self, attempt: int) -> float:
        """Seconds before retry number ``attempt + 1``: exponential, capped, full jitter."""
        base = min(self.config.retry_backoff_max, self.config.retry_backoff * 2**attempt)
        return float(base / 2 + random.uniform(0, base / 2))

    async def run(self, envelope: Envelope) -> None:
        """Run one task (workers, the in-process and eager backends call this): status, logs,
        timeout, retries and dead letters. Never raises for the task's own failure."""
        task = registry.get(envelope.task)
        extra = {"task_id": envelope.id, "task": envelope.task, "request_id": envelope.request_id}
        if task is None:
            logger.error("unknown task %s (%s): dead-lettered", envelope.task, envelope.id)
            await self._dead(envelope, "unknown task (not imported by the worker?)")
            return
        started = time.time()
        # One atomic step: a cancelled run does not start, and a run that already succeeded or
        # failed (delivered twice: at-least-once brokers, the outbox relay) does not run again.
        refused = await self.store.transition(
            self._key("run", envelope.id),
            {
                "status": TaskStatus.RUNNING,
                "enqueued_at": envelope.enqueued_at,
                "started_at": started,
                "attempts": envelope.attempt + 1,
            },
            self.config.result_ttl,
            _STARTABLE,
        )
        if refused is not None:
            logger.info(
                "task %s %s is %s: not run", task.name, envelope.id, refused.lower(), extra=extra
            )
            return
        self.stats.started += 1
        self.stats.observe(max(0.0, started - envelope.enqueued_at))
        logger.info(
            "task %s %s started (attempt %d, request %s)",
            task.name,
            envelope.id,
            envelope.attempt + 1,
            envelope.request_id or "-",
            extra=extra,
        )
        failure: Exception | None = None
        try:
            value = await self._call(task, envelope)
        except Exception as exc:
            failure = exc
        if failure is not None:
            # Outside the except block: a retry run inline (eager) must not chain its error
            # to this one.
            await self._failed(task, envelope, failure, extra)
            return
        self.stats.succeeded += 1
        logger.info(
            "task %s %s succeeded in %.3f s (request %s)",
            task.name,
            envelope.id,
            time.time() - started,
            envelope.request_id or "-",
            extra=extra,
        )
        await self._update(
            envelope.id,
            status=TaskStatus.SUCCESSFUL,
            return_value=task.dump_result(value),
            finished_at=time.time(),
        )

    async def _call(self, task: Task[Any, Any], envelope: Envelope) -> Any:
        kwargs = task.load_arguments(envelope.arguments)
        if task.is_async:
            async with asyncio.timeout(task.timeout):
                return await task.func(**kwargs)
        from transom._concurrency import run_sync

        # A thread cannot be stopped: on timeout the run counts as failed, the thread finishes.
        return await asyncio.wait_for(run_sync(task.func, **kwargs), task.timeout)

    async def _failed(
        self, task: Task[Any, Any], envelope: Envelope, exc: Exception, extra: dict[str, Any]
    ) -> None:
        error = (
            f"timed out after {task.timeout} s"
            if isinstance(exc, TimeoutError)
            else "".join(traceback.format_exception_only(exc)).strip()
        )
        record = await self.store.get(self._key("run", envelope.id)) if self.store.keeps else None
        errors = [*(record or {}).get("errors", []), error]
        if envelope.attempt < task.retries:
            delay = self.backoff(envelope.attempt)
            self.stats.retried += 1
            logger.warning(
                "task %s %s failed (attempt %d of %d, request %s): %s; retried in %.1f s",
                task.name,
                envelope.id,
                envelope.attempt + 1,
                task.retries + 1,
                envelope.request_id or "-",
                error,
                delay,
                extra=extra,
            )
            await self._update(envelope.id, status=TaskStatus.READY, errors=errors)
            retry = dataclasses.replace(envelope, attempt=envelope.attempt + 1)
            if self.config.backend == "eager":
                await self.run(retry)  # eager: at once, no waiting in tests
            else:
                await self._send(retry, delay)
            return
        self.stats.failed += 1
        logger.error(
            "task %s %s failed (attempt %d of %d, request %s): %s; dead-lettered",
            task.name,
            envelope.id,
            envelope.attempt + 1,
            task.retries + 1,
            envelope.request_id or "-",
            error,
            exc_info=exc,
            extra=extra,
        )
        await self._update(
            envelope.id, status=TaskStatus.FAILED, errors=errors, finished_at=time.time()
        )
        await self._dead(envelope, error)

    async def _dead(self, envelope: Envelope, error: str) -> None:
        self.stats.dead_lettered += 1
        await self.transport.dead_letter(DeadLetter(envelope, error, time.time()))

    async def drain(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """In-process backend: wait for the tasks started so far (tests, scripts)."""
        if isinstance(self.transport, InProcessTransport):
            await self.transport.drain(timeout)

    def scheduled(self) -> Iterable[Task[Any, Any]]:
        """The tasks with a ``cron`` or ``every``."""
        return [t for t in registry.values() if t.cron or t.every]
