#!/usr/bin/env python3
"""The tasks battery's costs on RabbitMQ and Redis: enqueue from a handler, and end-to-end
throughput of no-op tasks with one ``transom worker`` process.

``python bench/tasks.py [--tasks 2000] [--requests 2000] [--concurrency 50]`` (RabbitMQ on
127.0.0.1:5672 guest/guest, Redis on 6379; results kept in Redis). Prints, per broker: handler
requests/s with and without an enqueue (in-process ASGI calls, one at a time) and the enqueue's
cost per request derived from them; tasks/s from the first enqueue to the last finish; p50/p99
enqueue-to-start latency (from the result records). Queues and keys use a unique prefix and are
removed afterwards. Celery is not measured yet.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src")]
os.environ.setdefault("TRANSOM_SECRET_KEY", "bench")

import orjson  # noqa: E402
from redis.asyncio import Redis  # noqa: E402

from transom import App  # noqa: E402
from transom.tasks import Tasks, TasksConfig, task  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/0"
BROKERS = {"rabbitmq": "amqp://guest:guest@127.0.0.1:5672/", "redis": REDIS_URL}
WORKER_APP = """
from transom import App
from transom.tasks import Tasks, task

app = App()
Tasks(app)


@task(name="bench.noop")
async def noop() -> None:
    return None
"""


@task(name="bench.noop")
async def noop() -> None:
    return None


async def handler_rates(tasks: Tasks, requests: int) -> tuple[float, float]:
    app = App()
    app.install(tasks)

    @app.post("/plain")
    async def plain() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/enqueue")
    async def enqueue() -> dict[str, bool]:
        await noop.enqueue()
        return {"ok": True}

    rates = []
    async with app.async_test_client() as client:
        for path in ("/plain", "/enqueue"):
            for _ in range(50):
                await client.post(path)
            start = time.perf_counter()
            for _ in range(requests):
                await client.post(path)
            rates.append(requests / (time.perf_counter() - start))
    return rates[0], rates[1]


async def cleanup(prefix: str) -> None:
    import aio_pika

    client = Redis.from_url(REDIS_URL)
    keys = [k async for k in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
    connection = await aio_pika.connect(BROKERS["rabbitmq"])
    channel = await connection.channel()
    for name in (f"{prefix}.default", f"{prefix}.default.delay", f"{prefix}.dead"):
        await channel.queue_delete(name)
    await channel.exchange_delete(f"{prefix}.tasks")
    await connection.close()


async def run(broker: str, url: str, args: argparse.Namespace) -> dict[str, float]:
    prefix = f"transom-bench-{uuid.uuid4().hex[:8]}"
    config = TasksConfig(broker_url=url, prefix=prefix, result_url=REDIS_URL)
    tasks = Tasks(config)
    try:
        plain, with_enqueue = await handler_rates(tasks, args.requests)
        await tasks.close()
        tasks = Tasks(config)
        with tasks.activate():
            folder = Path(tempfile.mkdtemp())
            (folder / "bench_worker.py").write_text(WORKER_APP)
            env = {
                **os.environ,
                "TRANSOM_TASKS_BROKER_URL": url,
                "TRANSOM_TASKS_PREFIX": prefix,
                "TRANSOM_TASKS_RESULT_URL": REDIS_URL,
                "TRANSOM_TASKS_PREFETCH": str(args.concurrency),
            }
            worker = await asyncio.create_subprocess_exec(
                sys.executable,
                *("-m", "transom.cli", "--app", "bench_worker:app", "worker"),
                *("-c", str(args.concurrency)),
                cwd=folder,
                env=env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            try:
                await asyncio.sleep(3)  # the worker connects and declares its queue
                start = time.perf_counter()
                ids = [(await noop.enqueue()).id for _ in range(args.tasks)]
                client = Redis.from_url(REDIS_URL)
                keys = [f"{prefix}:result:{i}" for i in ids]
                deadline = time.monotonic() + 300
                while True:
                    records = [orjson.loads(r) for r in await client.mget(keys) if r]
                    if sum(r["status"] == "SUCCESSFUL" for r in records) == len(ids):
                        break
                    if time.monotonic() > deadline:
                        raise SystemExit(f"{broker}: tasks not finished in 300 s")
                    await asyncio.sleep(0.2)
                await client.aclose()
                finished = max(r["finished_at"] for r in records)
                first = min(r["enqueued_at"] for r in records)
                latencies = sorted(r["started_at"] - r["enqueued_at"] for r in records)
                elapsed = time.perf_counter() - start
            finally:
                worker.terminate()
                await asyncio.wait_for(worker.wait(), 30)
        return {
            "plain_rps": plain,
            "enqueue_rps": with_enqueue,
            "enqueue_ms": (1 / with_enqueue - 1 / plain) * 1000,
            "tasks_per_s": len(ids) / (finished - first),
            "wall_s": elapsed,
            "p50_ms": latencies[len(latencies) // 2] * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        }
    finally:
        await tasks.close()
        await cleanup(prefix)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--only", choices=sorted(BROKERS), default=None)
    args = parser.parse_args()
    print(
        f"{'broker':<9} {'handler req/s':>14} {'+enqueue req/s':>15} {'enqueue ms':>11} "
        f"{'tasks/s':>8} {'p50 ms':>8} {'p99 ms':>8}"
    )
    for broker, url in BROKERS.items():
        if args.only and broker != args.only:
            continue
        r = asyncio.run(run(broker, url, args))
        print(
            f"{broker:<9} {r['plain_rps']:>14.0f} {r['enqueue_rps']:>15.0f} "
            f"{r['enqueue_ms']:>11.3f} {r['tasks_per_s']:>8.0f} {r['p50_ms']:>8.1f} "
            f"{r['p99_ms']:>8.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
