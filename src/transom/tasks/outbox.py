"""``enqueue_on_commit``: a task sent if and only if the database transaction commits.

With a broker, the task is a row of the outbox table (``transom_tasks_outbox``) written in the
caller's transaction: a rollback removes it with the data, a commit keeps it even if the
process dies the next instant. A relay sends the rows to the broker and deletes them: at once
after the commit (in the committing process), and every ``outbox_interval`` seconds in the app
and in ``transom worker`` for rows a crash left behind. Delivery is at least once: a crash
between sending and deleting sends a row again, with the same task id, and a worker skips a
task id that already finished (when results are kept).

The in-process and eager backends need no table: the task is started by the commit itself.
Both use :meth:`transom.db.DbSession.on_commit`, so a task enqueued inside a savepoint that
is rolled back is never sent, and one in a released savepoint waits for the outer commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import time
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from transom.db import Model, UTCDateTime, utcnow
from transom.tasks.core import Task, new_task_id
from transom.tasks.transports import Envelope

if TYPE_CHECKING:
    from transom.db import Database
    from transom.tasks.battery import Tasks

__all__ = ["OutboxEntry", "Relay", "enqueue_on_commit"]

logger = logging.getLogger("transom.tasks")


class OutboxEntry(Model):
    """A task waiting to be relayed to the broker (written in the caller's transaction)."""

    __tablename__ = "transom_tasks_outbox"
    #: Permission codenames ``tasks.view_outboxentry``... (the admin's tasks page uses them).
    __app_label__ = "tasks"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    task: Mapped[str] = mapped_column(sa.String(255))
    #: The :class:`~transom.tasks.transports.Envelope` as JSON, plus ``not_before``.
    payload: Mapped[str] = mapped_column(sa.Text())
    created_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime(), default=utcnow, server_default=sa.func.now(), index=True
    )


async def enqueue_on_commit(
    tasks: Tasks, task: Task[Any, Any], session: Any, arguments: dict[str, Any]
) -> str:
    """Send ``task`` when ``session`` commits; returns the task id (see the module doc)."""
    from transom.tasks.battery import request_id_var

    options = task.options
    delay = options.delay_seconds()
    envelope = Envelope(
        id=new_task_id(),
        task=task.name,
        arguments=arguments,
        queue=options.queue or tasks.config.default_queue,
        priority=options.priority,
        request_id=request_id_var.get(),
        key=options.key,
    )
    on_commit = getattr(session, "on_commit", None)
    if on_commit is None:
        raise TypeError(
            f"enqueue_on_commit needs a transom.db session (DbSession), not {type(session)!r}"
        )
    if tasks.config.backend in ("eager", "inprocess"):
        # No broker: the commit starts the task (eager: at once, in-process: soon).
        on_commit(functools.partial(_send_now, tasks, task, envelope))
        return envelope.id
    not_before = time.time() + delay if delay else None
    payload = {"envelope": envelope.__dict__, "not_before": not_before}
    session.add(OutboxEntry(id=envelope.id, task=task.name, payload=orjson.dumps(payload).decode()))
    database = session.database
    # The row is in the transaction; once it commits, the relay sends it without waiting for
    # its next sweep (a rollback takes the row back, and no wake is needed).
    on_commit(lambda: Relay.get(tasks, database).wake())
    return envelope.id


async def _send_now(tasks: Tasks, task: Task[Any, Any], envelope: Envelope) -> None:
    try:
        await tasks.enqueue(task.using(), envelope.arguments, task_id=envelope.id)
    except Exception:
        logger.exception("task %s %s: sending after commit failed", task.name, envelope.id)


class Relay:
    """Sends outbox rows to the broker: woken by commits, and sweeping every interval."""

    _relays: dict[tuple[int, int], Relay] = {}

    def __init__(self, tasks: Tasks, database: Database) -> None:
        self.tasks = tasks
        self.database = database
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self.sent = 0

    @classmethod
    def get(cls, tasks: Tasks, database: Database) -> Relay:
        """The relay of this battery and database in this process (started on first use)."""
        key = (id(tasks), id(database))
        relay = cls._relays.get(key)
        if relay is None:
            relay = cls._relays[key] = Relay(tasks, database)
            tasks._relay = tasks._relay or relay
        relay.start()
        return relay

    @classmethod
    def for_app(cls, tasks: Tasks) -> Relay | None:
        """The relay of the app's database, if the app has one attached."""
        from transom.db import EXTENSION_KEY, get_database

        if not tasks.installed or EXTENSION_KEY not in tasks.app.extensions:
            return None
        return cls.get(tasks, get_database(tasks.app))

    def start(self) -> None:
        if self._loop is None or self._loop.done():
            self._loop = asyncio.get_running_loop().create_task(self._run())

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        """Stop sweeping (after one last sweep of what is due)."""
        self._relays.pop((id(self.tasks), id(self.database)), None)
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None

    async def _run(self) -> None:
        while True:
            try:
                while await self.sweep():
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The broker or the database is down: the rows stay, the next sweep sends them.
                logger.warning(
                    "outbox relay: %s; retrying in %s s", exc, self.tasks.config.outbox_interval
                )
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.tasks.config.outbox_interval)

    async def sweep(self, batch: int = 100) -> int:
        """Send up to ``batch`` due rows and delete them; how many were sent."""
        now = time.time()
        sent = 0
        async with self.database.session() as session, session.begin():
            rows = (
                await session.scalars(
                    sa.select(OutboxEntry)
                    .order_by(OutboxEntry.created_at)
                    .limit(batch)
                    # Several relays (app processes, workers): each row goes to one of them.
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for row in rows:
                await self.send(self.tasks, row, now)
                await session.delete(row)
                sent += 1
        self.sent += sent
        return sent

    @staticmethod
    async def send(tasks: Tasks, row: OutboxEntry, now: float | None = None) -> None:
        """Send one row's task to the broker (the caller deletes the row)."""
        now = time.time() if now is None else now
        data = orjson.loads(row.payload)
        not_before = data.get("not_before")
        delay = not_before - now if not_before and not_before > now + 1 else None
        await tasks._send(Envelope(**data["envelope"]), delay)
