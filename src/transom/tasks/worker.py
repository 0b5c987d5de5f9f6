"""``transom worker``: runs tasks from taskiq's brokers.

Acknowledgement comes after the task finished, so a worker that
dies mid-task leaves the message to another worker: RabbitMQ redelivers it when the connection
drops, Redis when it was pending longer than ``redeliver_after``. SIGTERM/SIGINT stop taking
new tasks, finish the running ones (up to ``grace`` seconds) and return the prefetched ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from transom.tasks.transports import AmqpTransport, Envelope, RedisTransport

if TYPE_CHECKING:
    from transom.tasks.battery import Tasks

__all__ = ["run_worker"]

logger = logging.getLogger("transom.tasks")


async def run_worker(
    tasks: Tasks,
    queues: list[str] | None = None,
    concurrency: int = 10,
    grace: float = 30.0,
    stop: asyncio.Event | None = None,
) -> None:
    """Take tasks from ``queues`` (default: every queue of the registered tasks) until ``stop``
    is set or SIGTERM/SIGINT; at most ``concurrency`` at a time."""
    if tasks.config.backend not in ("amqp", "redis"):
        raise SystemExit("transom worker needs TRANSOM_TASKS_BROKER_URL (amqp:// or redis://)")
    await tasks.start()  # the sending side: retries, dead letters, results
    transport = tasks.transport
    assert isinstance(transport, AmqpTransport | RedisTransport)
    names = queues or tasks.queues()
    prefetch = min(tasks.config.prefetch, concurrency)
    if isinstance(transport, AmqpTransport):
        # The broker declares the queues and holds the robust connections; the worker
        # consumes on its read channel itself (_consume_amqp), not through its listen().
        broker = transport.make_broker(names, prefetch, 5.0)
    else:
        broker = RedisTransport(
            tasks.config.broker_url,
            tasks.config.prefix,
            names,
            tasks.config.prefetch,
            tasks.config.redeliver_after,
        ).broker
    broker.is_worker_process = True
    from transom._concurrency import configure_thread_pool

    # Sync tasks run in the framework's thread pool: as many threads as tasks may run at once
    # (takes effect when this process has not used the pool yet, as a fresh worker has not).
    configure_thread_pool(concurrency)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)
    pump: asyncio.Task[None] | None = None
    if isinstance(transport, RedisTransport):
        pump = loop.create_task(_pump(transport, stop))
    from transom.tasks.outbox import Relay

    relay = Relay.for_app(tasks)
    try:
        await broker.startup()
        if isinstance(transport, AmqpTransport):
            await _consume_amqp(transport, broker, names, prefetch, tasks, concurrency, grace, stop)
        else:
            logger.info("worker listening on %s (concurrency %d)", ", ".join(names), concurrency)
            print(f"transom worker: listening on {', '.join(names)}", flush=True)
            await _consume(broker, tasks, concurrency, grace, stop)
    finally:
        if pump is not None:
            pump.cancel()
        if relay is not None:
            await relay.stop()
        await broker.shutdown()
        await tasks.close()
    logger.info("worker stopped")


async def _consume(
    broker: Any, tasks: Tasks, concurrency: int, grace: float, stop: asyncio.Event
) -> None:
    """Run the messages of taskiq's ``broker.listen()`` (its public consuming side; the Redis
    stream broker), at most ``concurrency`` at a time, each acknowledged after its run, until
    ``stop``.

    This is taskiq's receiver cut to what the battery uses (the run itself, its statuses,
    retries and timeouts are :meth:`Tasks.run`'s): a message goes from the broker's iterator
    to its run in one asyncio task. The receiver's prefetcher made two more tasks and two
    ``asyncio.wait`` per message, and parsed it into a pydantic model, which on a loaded
    machine was most of a no-op task's time.
    """
    loop = asyncio.get_running_loop()
    runs = _Runs(tasks, concurrency)

    async def read() -> None:
        async for message in broker.listen():
            await runs.slots.acquire()
            runs.start(message.data, message.ack)

    reader = loop.create_task(read())
    stopper = loop.create_task(stop.wait())
    try:
        await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        # Stop taking messages; the ones taken and not started are not acknowledged, so the
        # broker gives them to another worker (after redeliver_after).
        reader.cancel()
        stopper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stopper
        failure: BaseException | None = None
        try:
            await reader
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            failure = exc
        await runs.finish(grace)
    if failure is not None:
        raise failure


async def _consume_amqp(
    transport: AmqpTransport,
    broker: Any,
    names: list[str],
    prefetch: int,
    tasks: Tasks,
    concurrency: int,
    grace: float,
    stop: asyncio.Event,
) -> None:
    """Run the deliveries of aio-pika's consumers on the worker broker's robust read channel
    (see :meth:`AmqpTransport.consume`), at most ``concurrency`` at a time, each acknowledged
    after its run, until ``stop``.

    aio-pika's consumer callback hands each delivery to its run: no queue iterator, no merged
    iterator, no queue in between. The run is a task of the worker's own, not the callback's:
    aiormq cancels a channel's callbacks when the channel closes, and a connection lost for a
    second must not interrupt the tasks running (their acknowledgement then fails and RabbitMQ
    delivers them again, as before).
    """
    runs = _Runs(tasks, concurrency)

    async def deliver(message: Any) -> None:
        if not runs.stopping:
            # Prefetch is per queue: with several queues more than `concurrency` may arrive.
            await runs.slots.acquire()
            if not runs.stopping:
                runs.start(message.body, message.ack)
                return
            runs.slots.release()
        # Arrived or waited past the stop: back to the queue at once, for another worker.
        with contextlib.suppress(Exception):
            await message.reject(requeue=True)

    cancel = await transport.consume(broker.read_channel, names, prefetch, deliver)
    logger.info("worker listening on %s (concurrency %d)", ", ".join(names), concurrency)
    print(f"transom worker: listening on {', '.join(names)}", flush=True)
    try:
        await stop.wait()
    finally:
        runs.stopping = True
        try:
            await cancel()
        except Exception as exc:  # the connection is down: nothing more arrives anyway
            logger.warning("stopping the consumers: %s", exc)
        await runs.finish(grace)


class _Runs:
    """A worker's runs: at most ``concurrency`` at once, each acknowledged after it ran."""

    def __init__(self, tasks: Tasks, concurrency: int) -> None:
        self.tasks = tasks
        self.slots = asyncio.Semaphore(concurrency)
        self.running: set[asyncio.Task[None]] = set()
        self.stopping = False

    def start(self, data: bytes, ack: Callable[[], Any]) -> None:
        """Run the message ``data`` (a slot taken), then call ``ack``."""
        run = asyncio.get_running_loop().create_task(self._handle(data, ack))
        self.running.add(run)
        run.add_done_callback(self.running.discard)

    async def _handle(self, data: bytes, ack: Callable[[], Any]) -> None:
        try:
            try:
                envelope = Envelope.from_body(data)
            except Exception as exc:
                # What taskiq's receiver did with it: logged and acknowledged, not retried
                # forever by every worker.
                logger.error("unreadable task message dropped: %r (%s)", data[:200], exc)
            else:
                try:
                    await self.tasks.run(envelope)
                except Exception:
                    # run() handles the task's own failures; this is the store or broker
                    # failing around it. Acknowledged as taskiq's receiver did.
                    logger.exception("task %s %s: run failed", envelope.task, envelope.id)
            # After the run: a worker killed before this line leaves the task to another.
            acked = ack()
            if inspect.isawaitable(acked):
                await acked
        except Exception:
            logger.exception("task message not acknowledged")
        finally:
            self.slots.release()

    async def finish(self, grace: float) -> None:
        """Wait up to ``grace`` s for the running tasks, then cancel the rest (not
        acknowledged, so run again elsewhere)."""
        if self.running:
            logger.info("waiting for %d running task(s)", len(self.running))
            await asyncio.wait(set(self.running), timeout=grace)
        for run in list(self.running):
            run.cancel()
        if self.running:
            await asyncio.wait(set(self.running), timeout=5)


async def _pump(transport: RedisTransport, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await transport.pump()
        except Exception as exc:
            logger.warning("delayed tasks: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)
