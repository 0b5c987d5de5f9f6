"""Tasks and their results: ``@task``, ``enqueue``, ``TaskResult`` (Django 6's concepts).

A :class:`Task` validates its arguments through the function's type hints when it is enqueued
and sends them as JSON (never pickle); the worker validates them again into the hinted types.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import enum
import inspect
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, cast, get_type_hints, overload

from pydantic import ConfigDict, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from transom.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from transom.tasks.battery import Tasks

__all__ = [
    "BrokerUnavailable",
    "InvalidTaskArguments",
    "ResultUnavailable",
    "Task",
    "TaskError",
    "TaskResult",
    "TaskStatus",
    "registry",
    "task",
]

P = ParamSpec("P")
R = TypeVar("R")


class TaskError(Exception):
    """Base class of the tasks battery's errors."""


class BrokerUnavailable(TaskError):
    """The broker (or the store of keys) could not take the task: nothing was sent.

    A handler that does not catch it answers 503 with ``Retry-After``.
    """


class InvalidTaskArguments(TaskError, TypeError):
    """The arguments do not match the task's signature or type hints (raised at enqueue)."""


class ResultUnavailable(TaskError):
    """The result is not known (yet, or any more, or no result store is configured)."""


class TaskStatus(enum.StrEnum):
    """Where a task is (the names of Django 6's ``TaskResultStatus``, plus ``CANCELLED``)."""

    READY = "READY"
    RUNNING = "RUNNING"
    SUCCESSFUL = "SUCCESSFUL"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


FINISHED = frozenset({TaskStatus.SUCCESSFUL, TaskStatus.FAILED, TaskStatus.CANCELLED})

_current_tasks: Callable[[], Tasks] | None = None

#: Every task by name: the worker finds the function a message names here.
registry: dict[str, Task[Any, Any]] = {}


@dataclasses.dataclass(frozen=True)
class Options:
    """How one enqueue is sent (``task.using(...)``)."""

    queue: str | None = None
    priority: int | None = None
    delay: float | None = None
    eta: dt.datetime | None = None
    key: str | None = None

    def delay_seconds(self) -> float | None:
        if self.eta is not None:
            if self.eta.tzinfo is None:
                raise ValueError("eta must be timezone-aware (datetime.now(UTC) + ...)")
            return max(0.0, (self.eta - dt.datetime.now(dt.UTC)).total_seconds())
        if self.delay is not None and self.delay < 0:
            raise ValueError("delay must be >= 0")
        return self.delay


class Task(Generic[P, R]):
    """A function that can run later, elsewhere: made by :func:`task`.

    ``await t.enqueue(*args)`` sends it and returns a :class:`TaskResult`; ``t(*args)`` still
    calls the function directly.
    """

    def __init__(
        self,
        func: Callable[P, Awaitable[R]] | Callable[P, R],
        *,
        name: str | None = None,
        queue: str | None = None,
        priority: int | None = None,
        retries: int = 0,
        timeout: float | None = None,
        cron: str | None = None,
        every: float | dt.timedelta | None = None,
        tz: str = "UTC",
        options: Options | None = None,
    ) -> None:
        self.func = func
        self.name = name or f"{func.__module__}.{func.__qualname__}"
        self.queue = queue
        self.priority = priority
        if retries < 0:
            raise ValueError("retries must be >= 0")
        self.retries = retries
        self.timeout = timeout
        self.cron = cron
        self.every = every.total_seconds() if isinstance(every, dt.timedelta) else every
        self.tz = tz
        self.options = options or Options(queue=queue, priority=priority)
        self.is_async = inspect.iscoroutinefunction(func)
        self.signature = inspect.signature(func)
        hints = get_type_hints(func)
        parameters = self.signature.parameters.values()
        variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        by_name = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        # What binding needs, precomputed: enqueue binds arguments itself on the common path
        # (no *args/**kwargs, a valid call) and leaves inspect's bind to explain errors.
        self._variadic = any(p.kind in variadic for p in parameters)
        self._positional = tuple(p.name for p in parameters if p.kind in positional)
        self._keywords = frozenset(p.name for p in parameters if p.kind in by_name)
        self._required = frozenset(
            p.name
            for p in parameters
            if p.default is inspect.Parameter.empty and p.kind not in variadic
        )
        # One compiled adapter for all the arguments (a TypedDict of the hinted parameters):
        # one validation and one dump per enqueue instead of two per argument. Unknown names
        # (a message from another version of the task) fail the run instead of being dropped.
        fields = {p.name: hints.get(p.name, Any) for p in parameters if p.kind not in variadic}
        make_typed_dict: Any = TypedDict  # the functional form, with names known at run time
        arguments: Any = make_typed_dict(f"{self.name}.arguments", fields, total=False)
        arguments.__pydantic_config__ = ConfigDict(extra="forbid")
        self._arguments: TypeAdapter[Any] = TypeAdapter(arguments)
        self._returns: TypeAdapter[Any] = TypeAdapter(hints.get("return", Any))
        if cron is not None:
            from transom.tasks.schedule import validate_cron

            validate_cron(cron, tz)
        if (cron or every) and any(
            p.default is inspect.Parameter.empty for p in self.signature.parameters.values()
        ):
            raise ImproperlyConfigured(f"scheduled task {self.name} must take no arguments")

    def __repr__(self) -> str:
        return f"<Task {self.name}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R] | R:
        """Call the function now, here (not a task run)."""
        return self.func(*args, **kwargs)

    def using(
        self,
        *,
        queue: str | None = None,
        priority: int | None = None,
        delay: float | dt.timedelta | None = None,
        eta: dt.datetime | None = None,
        key: str | None = None,
    ) -> Task[P, R]:
        """The same task with other sending options (Django 6's ``task.using(...)``).

        Args:
            queue: The queue to send to (workers choose theirs with ``--queue``).
            priority: 0-9, higher first (RabbitMQ queues are declared with priorities).
            delay: Seconds (or a timedelta) before it may run.
            eta: When it may run (timezone-aware); wins over ``delay``.
            key: Idempotency key: while a task with this key is known (``dedup_ttl``), enqueuing
                again returns its result instead of sending another.
        """
        seconds = delay.total_seconds() if isinstance(delay, dt.timedelta) else delay
        base = self.options
        clone = cast("Task[P, R]", object.__new__(Task))
        clone.__dict__.update(self.__dict__)
        clone.options = Options(
            queue=queue if queue is not None else base.queue,
            priority=priority if priority is not None else base.priority,
            delay=seconds if seconds is not None else base.delay,
            eta=eta if eta is not None else base.eta,
            key=key if key is not None else base.key,
        )
        return clone

    # -- arguments ------------------------------------------------------------------------------
    def dump_arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Validate the arguments by the type hints and return them as JSON-ready values."""
        bound = self._bind(args, kwargs)
        adapter = self._arguments
        try:
            dumped: dict[str, Any] = adapter.dump_python(
                adapter.validate_python(bound, strict=True), mode="json"
            )
            return dumped
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            where = error["loc"][0] if error["loc"] else "?"
            raise InvalidTaskArguments(
                f"{self.name}: argument {where!r}: {error['msg']} "
                f"(got {type(bound.get(str(where))).__name__})"
            ) from None
        except ValueError as exc:  # serialisation (pydantic's PydanticSerializationError)
            raise InvalidTaskArguments(f"{self.name}: arguments: {exc}") from None

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The arguments by parameter name (defaults not filled in: the worker's call does)."""
        positional = self._positional
        if not self._variadic and len(args) <= len(positional):
            bound = dict(zip(positional, args, strict=False))
            for name, value in kwargs.items():
                if name in bound or name not in self._keywords:
                    break
                bound[name] = value
            else:
                if self._required.issubset(bound):
                    return bound
        # Not the plain case: inspect says what is wrong, or binds *args / **kwargs.
        try:
            arguments = self.signature.bind(*args, **kwargs).arguments
        except TypeError as exc:
            raise InvalidTaskArguments(f"{self.name}: {exc}") from None
        for name in arguments:
            if self.signature.parameters[name].kind in (
                inspect.Parameter.VAR_POSITIONAL,
                inspect.Parameter.VAR_KEYWORD,
            ):
                raise InvalidTaskArguments(f"{self.name}: *args and **kwargs cannot be sent")
        return dict(arguments)

    def load_arguments(self, data: dict[str, Any]) -> dict[str, Any]:
        """The JSON values of :meth:`dump_arguments` back as the hinted types."""
        loaded: dict[str, Any] = self._arguments.validate_python(data)
        return loaded

    def dump_result(self, value: Any) -> Any:
        return self._returns.dump_python(value, mode="json")

    def load_result(self, value: Any) -> Any:
        return self._returns.validate_python(value)

    # -- sending ----------------------------------------------------------------------------------
    def _tasks(self) -> Tasks:
        # battery imports this module: imported on first use, then a global lookup per call.
        global _current_tasks
        if _current_tasks is None:
            from transom.tasks.battery import current_tasks

            _current_tasks = current_tasks
        return _current_tasks()

    async def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> TaskResult[R]:
        """Send the task; returns its :class:`TaskResult` (status ``READY``).

        Raises:
            InvalidTaskArguments: The arguments do not fit the signature or its type hints.
            BrokerUnavailable: The broker did not take it (nothing was sent).
        """
        return await self._tasks().enqueue(self, self.dump_arguments(args, kwargs))

    async def enqueue_on_commit(self, session: Any, /, *args: P.args, **kwargs: P.kwargs) -> str:
        """Send the task if and only if ``session``'s transaction commits; returns the task id.

        With a broker the task is written to the outbox table in that same transaction and
        relayed after the commit (also when the process dies right after it).
        """
        return await self._tasks().enqueue_on_commit(
            self, session, self.dump_arguments(args, kwargs)
        )

    def result(self, task_id: str) -> TaskResult[R]:
        """A handle on the result of the run ``task_id`` (Django's ``get_result``)."""
        return TaskResult(self, task_id, self._tasks())


class TaskResult(Generic[R]):
    """What became of one enqueued task: ``status``, ``return_value``, ``errors``.

    ``await result.wait(timeout=5)`` waits for it to finish and returns its value.
    """

    def __init__(self, task: Task[Any, R], task_id: str, tasks: Tasks) -> None:
        self.task = task
        self.id = task_id
        self._tasks = tasks
        self.status = TaskStatus.READY
        self.errors: list[str] = []
        self.attempts = 0
        self.enqueued_at: float | None = None
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self._value: Any = None

    def __repr__(self) -> str:
        return f"<TaskResult {self.task.name} {self.id} {self.status}>"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED

    @property
    def return_value(self) -> R:
        """The task's return value (``ResultUnavailable`` until it succeeded)."""
        if self.status != TaskStatus.SUCCESSFUL:
            raise ResultUnavailable(f"task {self.id} is {self.status}, it has no return value")
        return cast("R", self._value)

    async def refresh(self) -> TaskResult[R]:
        """Read the current state from the result store (Django's ``arefresh``)."""
        record = await self._tasks.record(self.id)
        if record is not None:
            self.status = TaskStatus(record["status"])
            self.errors = list(record.get("errors", []))
            self.attempts = int(record.get("attempts", 0))
            self.enqueued_at = record.get("enqueued_at")
            self.started_at = record.get("started_at")
            self.finished_at = record.get("finished_at")
            if self.status == TaskStatus.SUCCESSFUL:
                self._value = self.task.load_result(record.get("return_value"))
        return self

    # The timeout is the API (Django's and the issue's), not an anyio cancel scope.
    async def wait(self, timeout: float = 30.0, poll: float = 0.05) -> R:  # noqa: ASYNC109
        """Wait (at most ``timeout`` seconds) for the task to finish; return its value.

        Raises:
            TimeoutError: Still not finished after ``timeout``.
            TaskError: The task failed (``errors`` says why) or was cancelled.
            ResultUnavailable: No result store is configured.
        """
        if not self._tasks.store.keeps:
            raise ResultUnavailable(
                "results are not kept: set TRANSOM_TASKS_RESULT_URL=redis://... to await them"
            )
        deadline = time.monotonic() + timeout
        while True:
            await self.refresh()
            if self.is_finished:
                break
            if time.monotonic() >= deadline:
                raise TimeoutError(f"task {self.id} still {self.status} after {timeout} s")
            await asyncio.sleep(min(poll, max(0.0, deadline - time.monotonic())))
            poll = min(poll * 1.5, 1.0)
        if self.status != TaskStatus.SUCCESSFUL:
            raise TaskError(f"task {self.id} {self.status}: {'; '.join(self.errors)}")
        return cast("R", self._value)

    async def cancel(self) -> bool:
        """Cancel the task if it has not started: True when it will not run."""
        return await self._tasks.cancel(self.id)


def new_task_id() -> str:
    return uuid.uuid4().hex


@overload
def task(func: Callable[P, Awaitable[R]], /) -> Task[P, R]: ...
@overload
def task(func: Callable[P, R], /) -> Task[P, R]: ...
@overload
def task(
    *,
    name: str | None = None,
    queue: str | None = None,
    priority: int | None = None,
    retries: int = 0,
    timeout: float | None = None,
    cron: str | None = None,
    every: float | dt.timedelta | None = None,
    tz: str = "UTC",
) -> Callable[[Callable[P, Any]], Task[P, Any]]: ...
def task(func: Any = None, /, **options: Any) -> Any:
    """Make a function a task (sync or async).

    Args:
        name: Its name on the wire (default ``module.qualname``).
        queue: Default queue; priority: default priority (0-9).
        retries: Runs after the first failure, with exponential backoff and jitter; then the
            task is dead-lettered.
        timeout: Seconds a run may take (then it fails, and may be retried).
        cron: A cron expression (``"0 3 * * *"``) for ``transom scheduler``; every: an
            interval; tz: the time zone of ``cron``.

    Example:
        >>> @task(retries=3)
        ... async def send_welcome(user_id: int) -> None: ...
        >>> send_welcome.name.endswith("send_welcome")
        True
    """

    def wrap(function: Callable[..., Any]) -> Task[Any, Any]:
        made: Task[Any, Any] = Task(function, **options)
        registry[made.name] = made
        return made

    if func is not None:
        return wrap(func)
    return wrap
