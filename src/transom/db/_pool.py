"""The connection pool under PostgreSQL engines: SQLAlchemy's, plus a checkout for one statement.

A pooled checkout in SQLAlchemy runs in a greenlet (the pool may have to wait or connect) and
wraps the connection in a proxy whose return fires the checkout, reset and checkin machinery:
for a request that runs one ``SELECT`` by primary key, more CPU than the query. When a
connection is ready in the queue, none of that is needed to run one statement on it:
:meth:`TransomPool.borrow` takes it straight from the queue (or waits for one, with the pool's
timeout) in the caller's coroutine, and :meth:`TransomPool.give_back` returns it (closing it in
a greenlet when the pool has no room left for it, as SQLAlchemy's own checkin does).

Only a connection that SQLAlchemy's checkout would hand out as it is qualifies. One that must
reconnect, be recycled, or be pinged after sitting idle is handed to the ordinary checkout
instead (:meth:`TransomPool.hand_over`), which does all of that as usual. The shortcut is off
while anyone but Transom listens for checkouts, checkins or resets, with ``pre_ping``, a reset
other than rollback, or debug logging of the pool.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

from sqlalchemy import exc
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry
from sqlalchemy.pool.base import _ConnectionRecord, reset_rollback
from sqlalchemy.util import greenlet_spawn
from sqlalchemy.util.queue import Empty

from transom.db._listeners import changes, only_ours

__all__ = ["TransomPool", "mark_checked_in", "needs_ping"]

# ConnectionPoolEntry.info key: when the connection last went back to the pool.
_CHECKED_IN = "transom.checked_in"


def mark_checked_in(record: ConnectionPoolEntry) -> None:
    """Note that ``record`` just went back to the pool (for the idle ping)."""
    record.info[_CHECKED_IN] = time.monotonic()


def needs_ping(record: ConnectionPoolEntry, idle: float) -> bool:
    """True when ``record`` sat in the pool for more than ``idle`` seconds since its return."""
    since = record.info.get(_CHECKED_IN)
    return since is not None and time.monotonic() - since > idle


class _Waiter:
    """A task waiting for a connection, and when it gives up."""

    __slots__ = ("deadline", "expired", "task")

    def __init__(self, task: asyncio.Task[Any], deadline: float) -> None:
        self.task = task
        self.deadline = deadline
        self.expired = False


class TransomPool(AsyncAdaptedQueuePool):
    """``AsyncAdaptedQueuePool`` with a greenlet-free checkout of a ready connection.

    Attributes:
        ping_idle: Seconds after which a connection that sat in the pool is pinged on checkout
            (set by the engine set-up when it installs that ping), or ``None``.
    """

    ping_idle: float | None = None
    _handoff: _ConnectionRecord | None = None
    _watchdog: asyncio.TimerHandle | None = None
    _watchdog_loop: asyncio.AbstractEventLoop | None = None
    _listeners_seen: int | None = None  # changes() when _listeners_ok was worked out
    _listeners_ok = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._waiters: dict[_Waiter, None] = {}

    def recreate(self) -> TransomPool:
        pool = cast(TransomPool, super().recreate())
        pool.ping_idle = self.ping_idle
        return pool

    def borrowable(self) -> bool:
        """True when a checkout may skip SQLAlchemy's proxy and events (checked per borrow)."""
        if self._pre_ping or self._reset_on_return is not reset_rollback:
            return False
        if self._should_log_debug():
            return False
        # The listeners' verdict, kept until any listener anywhere changes.
        seen = changes()
        if self._listeners_seen != seen:
            dispatch = self.dispatch
            self._listeners_ok = (
                only_ours(dispatch.checkout) and only_ours(dispatch.checkin) and not dispatch.reset
            )
            self._listeners_seen = seen
        return self._listeners_ok

    async def borrow(self) -> tuple[_ConnectionRecord | None, bool]:
        """Take a pooled connection for one statement: ``(record, ready)``.

        ``ready`` means its ``dbapi_connection`` can run a statement now; otherwise the record
        (if any) must go through :meth:`hand_over` and the ordinary checkout. ``(None, False)``
        when the queue is empty but the pool may open another connection (the ordinary
        checkout does that). Raises SQLAlchemy's ``TimeoutError`` as the checkout would.
        """
        queue = self._pool
        try:
            record = cast(_ConnectionRecord, queue.get_nowait())
        except Empty:
            if self._max_overflow == -1 or self._overflow < self._max_overflow:
                return None, False
            record = await self._wait()
        return record, self._ready(record)

    async def _wait(self) -> _ConnectionRecord:
        # The asyncio.Queue inside SQLAlchemy's AsyncAdaptedQueue, awaited here directly.
        # With the pool exhausted nearly every request waits, so the timeout is not a timer
        # per waiter (asyncio.timeout: a timer handle made and cancelled each time) but one
        # timer per pool that cancels the waiters whose deadline has passed.
        waiting: asyncio.Queue[_ConnectionRecord] = self._pool._queue  # type: ignore[attr-defined]
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        waiter = _Waiter(task, loop.time() + self._timeout)
        self._waiters[waiter] = None
        if self._watchdog is None or self._watchdog_loop is not loop:
            self._arm(loop, waiter.deadline)
        try:
            return await waiting.get()
        except asyncio.CancelledError:
            # Ours (the deadline passed) unless someone else cancelled the task too.
            if not waiter.expired or task.uncancel() > 0:
                raise
        finally:
            self._waiters.pop(waiter, None)
        raise exc.TimeoutError(
            f"QueuePool limit of size {self.size()} overflow {self.overflow()} reached, "
            f"connection timed out, timeout {self._timeout:0.2f}",
            code="3o7r",
        )

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        self._watchdog = loop.call_at(when, self._expire)
        self._watchdog_loop = loop

    def _expire(self) -> None:
        """Cancel the waiters past their deadline, then sleep until the next one's."""
        self._watchdog = None
        loop = self._watchdog_loop
        assert loop is not None
        now = loop.time()
        expired = []
        # Insertion order is deadline order: every waiter waits the same pool timeout.
        for waiter in self._waiters:
            if waiter.deadline > now:
                self._arm(loop, waiter.deadline)
                break
            expired.append(waiter)
        for waiter in expired:
            del self._waiters[waiter]
            waiter.expired = True
            waiter.task.cancel()

    def _ready(self, record: _ConnectionRecord) -> bool:
        # What _ConnectionRecord.get_connection and Transom's idle ping would act on.
        if record.dbapi_connection is None:
            return False
        started = record.starttime
        if (
            (self._recycle > -1 and time.time() - started > self._recycle)
            or self._invalidate_time > started
            or record._soft_invalidate_time > started
        ):
            return False
        return self.ping_idle is None or not needs_ping(record, self.ping_idle)

    async def give_back(self, record: _ConnectionRecord) -> None:
        """Return a borrowed connection that is fine as it is (see :meth:`discard` otherwise).

        Into the queue, or to a waiter, when there is room: no I/O, no greenlet. When the
        queue is full (overflow connections came back meanwhile) this one is surplus, and
        SQLAlchemy closes it: on asyncpg an awaited goodbye to the server, which works only
        inside SQLAlchemy's greenlet (outside, the close fails with ``MissingGreenlet``, is
        logged as "Exception closing connection" and leaves the connection open).
        """
        if self.ping_idle is not None:
            mark_checked_in(record)
        if not self._pool.full():
            self._do_return_conn(record)
            return
        # Shielded: a request cancelled during the close (its client went away) must not
        # interrupt it half-way, which SQLAlchemy would log and leave the connection open.
        await asyncio.shield(greenlet_spawn(self._do_return_conn, record))

    def discard(self, record: _ConnectionRecord, error: BaseException) -> None:
        """Return a borrowed connection that may be broken or busy, closing it first.

        It goes back as an empty slot, which the next checkout refills. Synchronous, so it is
        safe in a cancelled task: outside a greenlet the invalidation terminates the
        connection at once (no waiting) and an empty slot has nothing left to close.
        """
        record.invalidate(error)
        self._do_return_conn(record)

    def hand_over(self, record: _ConnectionRecord) -> None:
        """Make the next ordinary checkout (in this greenlet, right now) take ``record``."""
        self._handoff = record

    def _do_get(self) -> ConnectionPoolEntry:
        record = self._handoff
        if record is not None:
            self._handoff = None
            return record
        return super()._do_get()
