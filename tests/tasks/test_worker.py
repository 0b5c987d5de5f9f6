"""Worker processes on the live RabbitMQ and Redis: run, results, retries and dead letters,
SIGKILL mid-task, graceful stop."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from transom.tasks import Tasks, TasksConfig, TaskStatus

from . import worker_app
from .conftest import REDIS_URL, Spawn

pytestmark = pytest.mark.anyio


@pytest.fixture
async def tasks(broker: str, prefix: str) -> AsyncIterator[Tasks]:
    made = Tasks(
        TasksConfig(broker_url=broker, prefix=prefix, result_url=REDIS_URL, retry_backoff=0.2)
    )
    with made.activate():
        yield made
    await made.close()


async def reported(prefix: str, kind: str) -> list[str]:
    client = Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        return [str(v) for v in await client.lrange(f"{prefix}:report:{kind}", 0, -1)]
    finally:
        await client.aclose()


async def until(check: object, timeout: float = 30) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not await check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"not true within {timeout} s")
        await asyncio.sleep(0.05)


async def test_worker_runs_tasks_and_results_come_back(
    tasks: Tasks, broker: str, prefix: str, spawn: Spawn
) -> None:
    worker = spawn("worker", "-c", "4", broker_url=broker)
    # Enqueued before the worker listens: durable queues keep them.
    first = await worker_app.record.enqueue("a")
    other = await worker_app.record_sync.enqueue("b")
    worker.wait_for("listening")
    assert await first.wait(timeout=30) == "A"
    assert await other.wait(timeout=30) == "b"
    later = await worker_app.record.using(delay=0.3).enqueue("later")
    assert await later.wait(timeout=30) == "LATER"
    assert sorted(await reported(prefix, "done")) == ["a", "later", "sync:b"]
    assert f"task t.record {first.id} succeeded" in worker.output
    assert worker.stop() == 0


async def test_retries_then_dead_letter_then_rerun(
    tasks: Tasks, broker: str, prefix: str, spawn: Spawn
) -> None:
    worker = spawn("worker", broker_url=broker, TRANSOM_TASKS_RETRY_BACKOFF="0.2")
    worker.wait_for("listening")
    result = await worker_app.fails.enqueue("x")
    with pytest.raises(Exception, match="FAILED: RuntimeError: failing x"):
        await result.wait(timeout=30)
    assert await reported(prefix, "attempt") == ["x", "x", "x"]  # 1 run + 2 retries
    assert result.errors == ["RuntimeError: failing x"] * 3
    dead = await tasks.dead_letters()
    assert [d.envelope.id for d in dead] == [result.id]
    assert await tasks.retry_dead(result.id)
    await until(lambda: _count(prefix, "attempt", 6))
    await until(lambda: _dead_count(tasks, 1))
    assert await tasks.discard_dead(result.id)
    assert await tasks.dead_letters() == []
    worker.stop()


async def _count(prefix: str, kind: str, n: int) -> bool:
    return len(await reported(prefix, kind)) >= n


async def _dead_count(tasks: Tasks, n: int) -> bool:
    return len(await tasks.dead_letters()) == n


async def test_a_worker_killed_mid_task_leaves_it_to_another(
    tasks: Tasks, broker: str, prefix: str, spawn: Spawn
) -> None:
    env = {"TRANSOM_TASKS_REDELIVER_AFTER": "2"}
    first = spawn("worker", "-c", "1", broker_url=broker, **env)
    first.wait_for("listening")
    result = await worker_app.slow_record.enqueue("long", 1.5)
    await until(lambda: _count(prefix, "started", 1))
    os.kill(first.popen.pid, signal.SIGKILL)
    first.popen.wait(timeout=10)
    assert await reported(prefix, "done") == []
    second = spawn("worker", "-c", "1", broker_url=broker, **env)
    await result.wait(timeout=40)
    started = await reported(prefix, "started")
    assert len(started) == 2
    assert started[1].endswith(f":{second.popen.pid}")
    assert await reported(prefix, "done") == ["long"]
    second.stop()


async def test_sigterm_finishes_the_running_task(
    tasks: Tasks, broker: str, prefix: str, spawn: Spawn
) -> None:
    worker = spawn("worker", "-c", "1", broker_url=broker)
    worker.wait_for("listening")
    result = await worker_app.slow_record.enqueue("graceful", 1.0)
    await until(lambda: _count(prefix, "started", 1))
    worker.popen.send_signal(signal.SIGTERM)
    assert worker.popen.wait(timeout=30) == 0
    assert await reported(prefix, "done") == ["graceful"]
    assert (await result.refresh()).status == TaskStatus.SUCCESSFUL


async def test_a_run_delivered_twice_runs_once_and_a_cancelled_one_never(
    tasks: Tasks, broker: str, prefix: str, spawn: Spawn
) -> None:
    """At-least-once delivery (a redelivery, the outbox relay sending a row again) meets the
    run's record: a run that finished is not run again, a cancelled one never starts."""
    from transom.tasks.transports import Envelope

    done = await worker_app.record.enqueue("once")
    cancelled = await worker_app.record.enqueue("cancelled")
    assert await cancelled.cancel()
    worker = spawn("worker", "-c", "1", broker_url=broker)
    worker.wait_for("listening")
    assert await done.wait(timeout=30) == "ONCE"
    # The same run again, as a broker redelivering it would.
    await tasks._send(
        Envelope(id=done.id, task="t.record", arguments={"tag": "once"}, queue="default"), None
    )
    last = await worker_app.record.enqueue("last")
    assert await last.wait(timeout=30) == "LAST"  # one consumer, one queue: after the copy
    assert sorted(await reported(prefix, "done")) == ["last", "once"]
    await cancelled.refresh()
    assert cancelled.status == TaskStatus.CANCELLED
    assert f"task t.record {done.id} is successful: not run" in worker.output
    assert f"task t.record {cancelled.id} is cancelled: not run" in worker.output
    assert worker.stop() == 0


async def test_runs_log_the_task_id_and_the_enqueuing_request_id(
    tasks: Tasks, broker: str, prefix: str, spawn: Spawn
) -> None:
    """The request's id (the core's, returned in X-Request-ID) travels in the task's labels to
    the worker, whose start, finish and failure lines name it; a client's own X-Request-ID is
    not trusted (no trusted proxy here): the core's id replaces it."""
    from transom import App

    app = App()
    app.install(tasks)

    @app.post("/send/{tag}")
    async def send(tag: str) -> dict[str, str]:
        task = worker_app.fails if tag == "bad" else worker_app.record
        return {"id": (await task.enqueue(tag)).id}

    sent: dict[str, tuple[str, str]] = {}
    async with app.async_test_client() as client:
        for tag, header in [("good", None), ("bad", None), ("forged", "forged-id")]:
            headers = {"X-Request-ID": header} if header else {}
            response = await client.post(f"/send/{tag}", headers=headers)
            sent[tag] = (response.json()["id"], response.headers["x-request-id"])
    assert len({rid for _, rid in sent.values()}) == 3  # one id per request
    worker = spawn("worker", "-c", "4", broker_url=broker)
    worker.wait_for("listening")
    for tag in ("good", "forged"):
        assert await worker_app.record.result(sent[tag][0]).wait(timeout=30)
    bad_id, bad_rid = sent["bad"]
    worker.wait_for(f"task t.fails {bad_id} failed (attempt 3 of 3, request {bad_rid})")
    output = worker.output
    good_id, good_rid = sent["good"]
    assert f"task t.record {good_id} started (attempt 1, request {good_rid})" in output
    assert f"task t.record {good_id} succeeded in" in output
    assert f"(request {good_rid})" in output
    assert f"task t.fails {bad_id} failed (attempt 1 of 3, request {bad_rid})" in output
    forged_id, forged_rid = sent["forged"]
    assert forged_rid != "forged-id"
    assert f"task t.record {forged_id} started (attempt 1, request {forged_rid})" in output
    assert "forged-id" not in output
    assert worker.stop() == 0


async def test_an_unreadable_message_is_dropped_and_the_worker_goes_on(
    tasks: Tasks, broker: str, prefix: str, spawn: Spawn
) -> None:
    await tasks.start()  # queues and streams declared
    if broker.startswith("amqp"):
        import aio_pika

        connection = await aio_pika.connect(broker)
        try:
            channel = await connection.channel()
            exchange = await channel.get_exchange(f"{prefix}.tasks")
            await exchange.publish(aio_pika.Message(b"not json {"), f"{prefix}.default")
        finally:
            await connection.close()
    else:
        client = Redis.from_url(REDIS_URL)
        try:
            await client.xadd(f"{prefix}:default", {b"data": b"not json {"})
        finally:
            await client.aclose()
    worker = spawn("worker", "-c", "2", broker_url=broker)
    worker.wait_for("unreadable task message dropped")
    after = await worker_app.record.enqueue("after")
    assert await after.wait(timeout=30) == "AFTER"
    if not broker.startswith("amqp"):
        client = Redis.from_url(REDIS_URL)
        try:
            pending = await client.xpending(f"{prefix}:default", f"{prefix}-workers")
        finally:
            await client.aclose()
        assert pending["pending"] == 0  # acknowledged, not left for redelivery
    assert worker.stop() == 0
