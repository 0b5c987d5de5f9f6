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
    if isinstance(transport, AmqpTransport):
        broker = transport.make_broker(names, min(tasks.config.prefetch, concurrency), 5.0)
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
    """Run the messages of taskiq's ``broker.listen()`` (its public consuming side), at most
    ``concurrency`` at a time, each acknowledged after its run, until ``stop``.

    This is taskiq's receiver cut to what the battery uses (the run itself, its statuses,
    retries and timeouts are :meth:`Tasks.run`'s): a message goes from the broker's iterator
    to its run in one asyncio task. The receiver's prefetcher made two more tasks and two
    ``asyncio.wait`` per message, and parsed it into a pydantic model, which on a loaded
    machine was most of a no-op task's time.
    """
    loop = asyncio.get_running_loop()
    slots = asyncio.Semaphore(concurrency)
    running: set[asyncio.Task[None]] = set()

    async def handle(message: Any) -> None:
        try:
            try:
                envelope = Envelope.from_body(message.data)
            except Exception as exc:
                # What taskiq's receiver did with it: logged and acknowledged, not retried
                # forever by every worker.
                logger.error("unreadable task message dropped: %r (%s)", message.data[:200], exc)
            else:
                try:
                    await tasks.run(envelope)
                except Exception:
                    # run() handles the task's own failures; this is the store or broker
                    # failing around it. Acknowledged as taskiq's receiver did.
                    logger.exception("task %s %s: run failed", envelope.task, envelope.id)
            # After the run: a worker killed before this line leaves the task to another.
            acked = message.ack()
            if inspect.isawaitable(acked):
                await acked
        except Exception:
            logger.exception("task message not acknowledged")
        finally:
            slots.release()

    async def read() -> None:
        async for message in broker.listen():
            await slots.acquire()
            run = loop.create_task(handle(message))
            running.add(run)
            run.add_done_callback(running.discard)

    reader = loop.create_task(read())
    stopper = loop.create_task(stop.wait())
    try:
        await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        # Stop taking messages; the ones taken and not started are not acknowledged, so the
        # broker gives them to another worker (RabbitMQ when the channel closes, Redis after
        # redeliver_after).
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
        if running:
            logger.info("waiting for %d running task(s)", len(running))
            await asyncio.wait(set(running), timeout=grace)
        for run in list(running):
            # Past the grace period: not acknowledged, so run again elsewhere.
            run.cancel()
        if running:
            await asyncio.wait(set(running), timeout=5)
    if failure is not None:
        raise failure


async def _pump(transport: RedisTransport, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await transport.pump()
        except Exception as exc:
            logger.warning("delayed tasks: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)
