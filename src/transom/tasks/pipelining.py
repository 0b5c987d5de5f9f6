"""Group commit for Redis: the commands of concurrent callers go out in one pipeline.

An enqueue's ``XADD``, a worker's start and finish records and its stream ``XACK`` are each
one small command whose reply the caller awaits. Sent one by one, every command costs a
connection checkout, a write, a read and a wake-up of the Redis server (on a busy machine,
a context switch each): most of the CPU of an enqueue and of a no-op task. A
:class:`Pipeliner` sends the commands that arrive while a batch is on the wire together in the
next batch, as a database's group commit does. Every caller still waits for its own reply, so
nothing is acknowledged earlier than before: an enqueue returns once its entry is in the
stream, a task is acknowledged once it finished. A command alone goes out at once as a plain
call (a pipeline of one costs about as much again in redis-py), so it waits no round trip more.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

__all__ = ["Pipeliner"]


class Pipeliner:
    """Runs ``execute_command`` calls of concurrent callers in shared pipelines of ``client``
    (a ``redis.asyncio.Redis``), one pipeline in flight at a time; not transactions (each
    command stands alone, as it would if sent by itself)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._direct = False  # a lone command is on the wire, sent without a pipeline

    async def execute(self, *args: Any) -> Any:
        """Send the command ``args`` (``"XADD", stream, "*", ...``) and return its reply;
        raises what the command (or the connection) raised."""
        if self._flusher is None and not self._direct:
            # Alone: the command goes out at once, as a plain call (no pipeline object, no
            # task, no extra turn of the loop); what arrives meanwhile waits for it and then
            # goes out in one batch.
            self._direct = True
            try:
                return await self.client.execute_command(*args)
            finally:
                self._direct = False
                if self._pending and self._flusher is None:
                    self._flusher = asyncio.get_running_loop().create_task(self._flush())
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((args, future))
        return await future

    async def _flush(self) -> None:
        batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        try:
            while self._pending:
                # A caller cancelled (timed out) before its batch left: its command is not sent.
                batch = [entry for entry in self._pending if not entry[1].done()]
                self._pending = []
                if not batch:
                    continue
                pipe = self.client.pipeline(transaction=False)
                for args, _ in batch:
                    pipe.execute_command(*args)
                try:
                    replies = await pipe.execute(raise_on_error=False)
                except Exception as exc:  # the connection: every command of the batch failed
                    replies = [exc] * len(batch)
                for (_, future), reply in zip(batch, replies, strict=True):
                    if future.done():
                        continue
                    if isinstance(reply, BaseException):
                        future.set_exception(reply)
                    else:
                        future.set_result(reply)
                batch = []
        finally:
            # Closed (cancelled) mid-batch: nobody waits forever for a reply.
            self._flusher = None
            for _, future in [*batch, *self._pending]:
                if not future.done():
                    future.set_exception(ConnectionError("the Redis pipeline was closed"))
            self._pending = []

    async def close(self) -> None:
        """Stop the batch in flight (its callers get a ``ConnectionError``)."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
