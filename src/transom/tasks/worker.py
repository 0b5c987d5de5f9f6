"""``transom worker``: runs tasks from the broker with taskiq's receiver.

Acknowledgement comes after the task finished (taskiq's ``WHEN_EXECUTED``), so a worker that
dies mid-task leaves the message to another worker: RabbitMQ redelivers it when the connection
drops, Redis when it was pending longer than ``redeliver_after``. SIGTERM/SIGINT stop taking
new tasks, finish the running ones (up to ``grace`` seconds) and return the prefetched ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from transom.tasks.core import registry
from transom.tasks.transports import AmqpTransport, Envelope, RedisTransport

if TYPE_CHECKING:
    from transom.tasks.battery import Tasks

__all__ = ["run_worker"]

logger = logging.getLogger("transom.tasks")

_message: contextvars.ContextVar[Any] = contextvars.ContextVar("transom_tasks_message")


def _middleware() -> Any:
    from taskiq import TaskiqMiddleware

    class _Labels(TaskiqMiddleware):
        """Hands the received message (id, labels) to the task's runner."""

        def pre_execute(self, message: Any) -> Any:
            _message.set(message)
            return message

    return _Labels()


def _runner(tasks: Tasks) -> Any:
    async def run(*args: Any, **kwargs: Any) -> None:
        await tasks.run(Envelope.from_message(_message.get()))

    return run


async def run_worker(
    tasks: Tasks,
    queues: list[str] | None = None,
    concurrency: int = 10,
    grace: float = 30.0,
    stop: asyncio.Event | None = None,
) -> None:
    """Take tasks from ``queues`` (default: every queue of the registered tasks) until ``stop``
    is set or SIGTERM/SIGINT; at most ``concurrency`` at a time."""
    from taskiq.acks import AcknowledgeType
    from taskiq.receiver import Receiver

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
    broker.add_middlewares(_middleware())
    runner = _runner(tasks)
    for name in registry:
        broker.register_task(runner, task_name=name)
    broker.is_worker_process = True
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
    with ThreadPoolExecutor(max_workers=concurrency) as executor:
        receiver = Receiver(
            broker,
            executor=executor,
            validate_params=False,
            max_async_tasks=concurrency,
            run_startup=True,
            ack_type=AcknowledgeType.WHEN_EXECUTED,
            wait_tasks_timeout=grace,
        )
        logger.info("worker listening on %s (concurrency %d)", ", ".join(names), concurrency)
        print(f"transom worker: listening on {', '.join(names)}", flush=True)
        try:
            await receiver.listen(stop)
        finally:
            if pump is not None:
                pump.cancel()
            if relay is not None:
                await relay.stop()
            await broker.shutdown()
            await tasks.close()
    logger.info("worker stopped")


async def _pump(transport: RedisTransport, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await transport.pump()
        except Exception as exc:
            logger.warning("delayed tasks: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)
