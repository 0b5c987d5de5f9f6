"""Cron and interval schedules, and ``transom scheduler``.

Every scheduler computes the same ticks (cron ticks in the task's time zone; intervals counted
from the Unix epoch) and sends a tick's run with the idempotency key ``<task>@<tick>``: when
several schedulers run, the first to claim a tick sends it, the others see the key and send
nothing, so each tick runs once. The claim needs the shared store (Redis: the broker, or
``TRANSOM_TASKS_RESULT_URL`` with RabbitMQ).

Missed ticks are not replayed: a tick that passed while no scheduler was running is skipped,
and a scheduler that starts runs the next tick to come.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import time
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from transom.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from transom.tasks.battery import Tasks
    from transom.tasks.core import Task

__all__ = ["next_tick", "run_scheduler", "validate_cron"]

logger = logging.getLogger("transom.tasks")


def validate_cron(expression: str, tz: str) -> None:
    """Raise ``ImproperlyConfigured`` for a bad cron expression or time zone."""
    from croniter import croniter  # type: ignore[import-untyped]

    try:
        ZoneInfo(tz)
    except Exception as exc:
        raise ImproperlyConfigured(f"unknown time zone {tz!r}") from exc
    if not croniter.is_valid(expression):
        raise ImproperlyConfigured(f"invalid cron expression {expression!r}")


def next_tick(task: Task[Any, Any], after: float) -> float:
    """The first tick of ``task``'s schedule strictly after ``after`` (a Unix time)."""
    if task.every:
        return (math.floor(after / task.every) + 1) * task.every
    from croniter import croniter

    assert task.cron is not None
    start = dt.datetime.fromtimestamp(after, ZoneInfo(task.tz))
    following: dt.datetime = croniter(task.cron, start).get_next(dt.datetime)
    return following.timestamp()


async def run_scheduler(tasks: Tasks, stop: asyncio.Event | None = None) -> None:
    """Send the scheduled tasks at their ticks until ``stop`` is set (or SIGTERM/SIGINT)."""
    import signal

    if tasks.config.backend not in ("eager", "inprocess") and not tasks.store.keeps:
        raise ImproperlyConfigured(
            "the scheduler needs a shared store to run each tick once: set "
            "TRANSOM_TASKS_RESULT_URL=redis://..."
        )
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await tasks.start()
    scheduled = list(tasks.scheduled())
    now = time.time()
    due = {task.name: next_tick(task, now) for task in scheduled}
    names = ", ".join(t.name for t in scheduled) or "nothing"
    print(f"transom scheduler: {names}", flush=True)
    pump = getattr(tasks.transport, "pump", None)
    try:
        while not stop.is_set():
            now = time.time()
            for task in scheduled:
                tick = due[task.name]
                if tick <= now:
                    try:
                        await task.using(key=f"tick:{task.name}@{tick:.0f}").enqueue()
                    except Exception as exc:
                        logger.error("scheduler: %s at %s not sent: %s", task.name, tick, exc)
                    due[task.name] = next_tick(task, now)
            if pump is not None:
                try:
                    await pump()
                except Exception as exc:
                    logger.warning("delayed tasks: %s", exc)
            wait = min([*(t - time.time() for t in due.values()), 0.5])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.01, wait))
    finally:
        await tasks.close()
