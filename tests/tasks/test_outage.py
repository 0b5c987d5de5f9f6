"""The broker going away: enqueue raises BrokerUnavailable, a handler answers 503 with
Retry-After (logged), and across an outage every 2xx-acknowledged task runs exactly once."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from transom import App
from transom.tasks import BrokerUnavailable, Tasks, TasksConfig, TaskStatus

from . import worker_app
from .conftest import REDIS_URL, Process, Spawn
from .test_worker import reported, until

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _services import TcpProxy

pytestmark = pytest.mark.anyio


def through(url: str, proxy: TcpProxy) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


async def test_broker_down_is_a_clear_error_and_a_503(
    broker: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    target = urlsplit(broker)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 0)
    await proxy.start()
    await proxy.cut()  # down before the app ever reached it
    app = App()
    config = TasksConfig(
        broker_url=through(broker, proxy), prefix=prefix, result_url=REDIS_URL, connect_timeout=1
    )
    tasks = Tasks(app, config)

    @app.post("/send")
    async def send() -> dict[str, str]:
        result = await worker_app.record.enqueue("x")
        return {"id": result.id}

    with tasks.activate(), pytest.raises(BrokerUnavailable, match="cannot reach the task broker"):
        await worker_app.record.enqueue("direct")
    caplog.set_level(logging.WARNING, "transom.tasks")
    async with app.async_test_client() as client:
        response = await client.post("/send")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert any("503 for POST /send" in r.getMessage() for r in caplog.records)
    await tasks.close()


async def test_every_acknowledged_enqueue_runs_once_across_an_outage(
    broker: str, prefix: str, spawn: Spawn
) -> None:
    target = urlsplit(broker)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 0)
    await proxy.start()
    app = App()
    config = TasksConfig(
        broker_url=through(broker, proxy), prefix=prefix, result_url=REDIS_URL, connect_timeout=1
    )
    tasks = Tasks(app, config)

    @app.post("/send/{n}")
    async def send(n: int) -> dict[str, str]:
        await worker_app.record.enqueue(f"n{n}")
        return {"sent": f"n{n}"}

    acknowledged: list[str] = []
    statuses: Counter[int] = Counter()
    async with app.async_test_client() as client:
        deadline = time.monotonic() + 60
        n = 0
        while n < 60 or acknowledged[-1] != f"n{n - 1}":
            if n == 20:
                await proxy.cut()
            if n == 35:
                await proxy.restore()
            response = await client.post(f"/send/{n}")
            n += 1
            statuses[response.status_code] += 1
            if response.status_code == 200:
                acknowledged.append(response.json()["sent"])
            else:
                assert response.status_code == 503
                await asyncio.sleep(0.1)  # the client backs off, as Retry-After asks
            assert time.monotonic() < deadline, statuses
    assert statuses[503] > 0  # the outage was seen
    assert acknowledged[:20] == [f"n{n}" for n in range(20)]
    assert statuses[200] >= 40  # and the app recovered by itself
    worker = spawn("worker", broker_url=broker)  # straight to the broker

    async def all_done() -> bool:
        return set(acknowledged) <= set(await reported(prefix, "done"))

    await until(all_done, timeout=60)
    done = Counter(await reported(prefix, "done"))
    assert all(done[tag] == 1 for tag in acknowledged), done
    worker.stop()
    await tasks.close()


async def test_a_message_rabbitmq_cannot_route_is_not_acknowledged(
    amqp_required: None, redis_required: None, prefix: str
) -> None:
    """Publisher confirms alone would acknowledge a message dropped for want of a queue: the
    enqueue checks the broker's answer and raises instead of losing the task silently."""
    import aio_pika

    from .conftest import AMQP_URL, remove_amqp

    tasks = Tasks(TasksConfig(broker_url=AMQP_URL, prefix=prefix, result_url=REDIS_URL))
    try:
        with tasks.activate():
            await worker_app.record.enqueue("routed")  # declares the queue; it arrives
            connection = await aio_pika.connect(AMQP_URL)
            try:
                channel = await connection.channel()
                queue = await channel.declare_queue(f"{prefix}.default", passive=True)
                assert queue.declaration_result.message_count == 1
                await channel.queue_delete(f"{prefix}.default")  # an operator's mistake
            finally:
                await connection.close()
            with pytest.raises(BrokerUnavailable, match="did not take the message"):
                await worker_app.record.enqueue("lost")
    finally:
        await tasks.close()
        await remove_amqp(prefix, ["default", "other"])


async def test_a_worker_rides_out_a_lost_rabbitmq_connection(
    amqp_required: None, redis_required: None, prefix: str, spawn: Spawn
) -> None:
    """The worker's consumers come back by themselves after the connection to RabbitMQ was
    lost (aio-pika's robust channel), and the task running at the time is not interrupted:
    it finishes, its acknowledgement is lost with the connection, and the copy RabbitMQ
    delivers again finds it finished and does not run it a second time."""
    from .conftest import AMQP_URL, remove_amqp

    proxy = TcpProxy("127.0.0.1", 5672)
    await proxy.start()
    tasks = Tasks(TasksConfig(broker_url=AMQP_URL, prefix=prefix, result_url=REDIS_URL))
    worker = spawn("worker", "-c", "2", broker_url=through(AMQP_URL, proxy))

    async def seen(text: str) -> bool:
        # Not worker.wait_for: it would block this loop, which runs the proxy.
        return text in worker.output

    try:
        with tasks.activate():
            await until(lambda: seen("listening"))
            running = await worker_app.slow_record.enqueue("long", 1.0)
            await until(lambda: _reported(prefix, "started", 1))
            await proxy.cut()  # mid-task
            # The task finishes while the connection is down (its acknowledgement is lost).
            await until(lambda: _succeeded(running))
            await proxy.restore()
            after = await worker_app.record.enqueue("after")
            assert await after.wait(timeout=30) == "AFTER"
            await running.wait(timeout=30)
            await until(lambda: seen(f"task t.slow_record {running.id} is successful: not run"))
            assert len(await reported(prefix, "started")) == 1
            assert sorted(await reported(prefix, "done")) == ["after", "long"]
        worker.popen.terminate()  # and wait without blocking the proxy's loop
        await until(lambda: _exited(worker))
        assert worker.popen.returncode == 0
    finally:
        await tasks.close()
        await proxy.cut()
        await remove_amqp(prefix, ["default", "other"])


async def _reported(prefix: str, kind: str, n: int) -> bool:
    return len(await reported(prefix, kind)) >= n


async def _exited(process: Process) -> bool:
    return process.popen.poll() is not None


async def _succeeded(result: Any) -> bool:
    return bool((await result.refresh()).status == TaskStatus.SUCCESSFUL)
