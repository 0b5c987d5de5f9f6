#!/usr/bin/env python3
"""CPU per enqueue beside the raw floor of its engine: what the battery adds to a publish.

``python bench/tasks_enqueue.py [--enqueues 2000] [--rounds 3]`` (RabbitMQ on 127.0.0.1:5672
guest/guest, Redis on 6379). In this process, no handler, no worker: user + system CPU time
per call, one call at a time and 50 in flight, best of ``--rounds`` (rounds alternate the
candidates, so a busy machine disturbs them alike):

* ``transom``: ``task.enqueue(i, "x")`` of a two-argument task (arguments checked, the taskiq
  message written, published);
* ``raw aio-pika``: ``default_exchange.publish(Message(body, persistent))`` of a body of the
  same size on a channel with publisher confirms, to a durable queue: what the battery's
  RabbitMQ enqueue does underneath, with no framework at all (and without confirms, for scale);
* ``raw redis-py``: one ``XADD`` of the same body with redis-py's asyncio client.

One at a time, a publish is at least one ``send()`` and one wait for the broker's answer: on
loopback the kernel does the receiving side's TCP work inside the sender's ``send()``, so a
good part of this floor is the kernel's, not Python's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src")]
os.environ.setdefault("TRANSOM_SECRET_KEY", "bench")

import aio_pika  # noqa: E402
from redis.asyncio import Redis  # noqa: E402

from transom.tasks import Tasks, TasksConfig, task  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/0"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
IN_FLIGHT = 50
BODY = (
    b'{"task_id":"0123456789abcdef0123456789abcdef","task_name":"bench:noop","labels":{},'
    b'"args":[],"kwargs":{"a":1,"b":"x"}}'
)

Publish = Callable[[int], Awaitable[object]]


@task()
async def noop(a: int, b: str) -> None:
    """Never run here: only enqueued."""


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(publish: Publish, n: int, in_flight: int) -> float:
    """CPU milliseconds per call of ``publish``, ``in_flight`` calls at a time."""
    for i in range(100):  # warm: connections, caches, prepared paths
        await publish(i)
    began = cpu()
    if in_flight == 1:
        for i in range(n):
            await publish(i)
    else:
        for start in range(0, n, in_flight):
            await asyncio.gather(*(publish(i) for i in range(start, start + in_flight)))
    return (cpu() - began) / n * 1e3


async def main(n: int, rounds: int) -> None:
    prefix = f"transom-bench-enqueue-{uuid.uuid4().hex[:8]}"
    results: dict[tuple[str, int], list[float]] = {}
    connection = await aio_pika.connect_robust(AMQP_URL)
    confirmed = await connection.channel(publisher_confirms=True)
    unconfirmed = await connection.channel(publisher_confirms=False)
    queue = await confirmed.declare_queue(f"{prefix}-raw", durable=True)
    redis = Redis.from_url(REDIS_URL)

    def aio_pika_publish(channel: aio_pika.abc.AbstractChannel) -> Publish:
        async def publish(_i: int) -> object:
            message = aio_pika.Message(BODY, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            return await channel.default_exchange.publish(message, routing_key=queue.name)

        return publish

    async def xadd(_i: int) -> object:
        return await redis.xadd(f"{prefix}-raw-stream", {"data": BODY})

    async def enqueue(i: int) -> object:
        return await noop.enqueue(i, "x")

    batteries = {
        "rabbitmq": Tasks(TasksConfig(broker_url=AMQP_URL, prefix=prefix, result_url=REDIS_URL)),
        "redis": Tasks(TasksConfig(broker_url=REDIS_URL, prefix=prefix, result_url=REDIS_URL)),
    }
    candidates: list[tuple[str, Callable[[], Publish], Tasks | None]] = [
        ("RabbitMQ: transom", lambda: enqueue, batteries["rabbitmq"]),
        ("RabbitMQ: raw aio-pika, confirmed", lambda: aio_pika_publish(confirmed), None),
        ("RabbitMQ: raw aio-pika, no confirm", lambda: aio_pika_publish(unconfirmed), None),
        ("Redis: transom", lambda: enqueue, batteries["redis"]),
        ("Redis: raw redis-py XADD", lambda: xadd, None),
    ]
    try:
        for _ in range(rounds):
            for name, make, battery in candidates:
                for in_flight in (1, IN_FLIGHT):
                    if battery is not None:
                        with battery.activate():
                            ms = await measure(make(), n, in_flight)
                    else:
                        ms = await measure(make(), n, in_flight)
                    results.setdefault((name, in_flight), []).append(ms)
    finally:
        for battery in batteries.values():
            await battery.close()
        await queue.delete(if_unused=False, if_empty=False)
        # The battery's queues and exchange (declared at its start), with what was enqueued.
        cleanup = await connection.channel()
        for name in (f"{prefix}.default", f"{prefix}.default.delay", f"{prefix}.dead"):
            await cleanup.queue_delete(name)
        await cleanup.exchange_delete(f"{prefix}.tasks")
        await connection.close()
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()

    load = os.getloadavg()
    print(f"## CPU ms per enqueue, best of {rounds} rounds of {n} (load {load[0]:.1f})\n")
    print(f"| | one at a time | {IN_FLIGHT} in flight |")
    print("|---|---|---|")
    for name, _make, _battery in candidates:
        one = min(results[(name, 1)])
        many = min(results[(name, IN_FLIGHT)])
        print(f"| {name} | {one:.3f} | {many:.3f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enqueues", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.enqueues, args.rounds))
