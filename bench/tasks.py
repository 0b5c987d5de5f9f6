#!/usr/bin/env python3
"""The tasks battery beside Celery, on RabbitMQ and on Redis: enqueue from a handler, no-op
tasks/s with one worker process, and enqueue-to-start latency.

``python bench/tasks.py [--quick] [--only rabbitmq|redis] [--engines transom,celery]``
(RabbitMQ on 127.0.0.1:5672 guest/guest, Redis on 6379). Per broker and engine:

* **handler**: requests/s of a Transom handler that enqueues one task, one request at a time
  (``seq``) and 50 at a time (``c50``), in process (no HTTP server), beside the same handler
  without the enqueue; the enqueue's cost per request is the difference of the two times.
  No worker runs: only the sending side is measured.
* **tasks/s**: ``--tasks`` no-op tasks queued (50 enqueues at a time) before one worker process
  (50 concurrent tasks) starts; tasks/s from the first finish to the last, so the worker's
  start-up and the producer are not counted.
* **CPU ms/task**: the worker process's CPU time (user + system, from ``/proc``) from the first
  finished task to the last, per task: steadier than tasks/s on a busy machine, where the
  worker waits for a CPU as much as it runs.
* **p50/p99**: enqueue-to-start latency (the task returns ``time.time() - t``, ``t`` taken just
  before the enqueue) of ``--paced`` tasks sent at ``--rate`` per second, one worker running:
  the latency of a system that is not saturated.

Same durability on both engines: persistent messages on durable queues, publisher confirms on
RabbitMQ (Celery: ``confirm_publish``), acknowledgement after the task ran (Celery:
``acks_late``), prefetch = concurrency (Celery: multiplier 1, thread pool of 50 in one
process), both workers logging at WARNING (no line per task). Celery's handler task ignores
its result (else ``delay`` subscribes to the result channel); the measured tasks keep it in
Redis on both. Queues and keys use a unique prefix and are removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src")]
os.environ.setdefault("TRANSOM_SECRET_KEY", "bench")

import orjson  # noqa: E402
from redis.asyncio import Redis  # noqa: E402

from transom import App  # noqa: E402
from transom.tasks import Tasks, TasksConfig, task  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/0"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
BROKERS = {"rabbitmq": AMQP_URL, "redis": REDIS_URL}
CONCURRENCY = 50

TRANSOM_WORKER = """
import time

from transom import App
from transom.tasks import Tasks, task

app = App()
Tasks(app)


@task(name="bench.noop")
async def noop(t: float) -> float:
    return time.time() - t
"""

CELERY_APP = """
import os
import time

from celery import Celery

prefix = os.environ["BENCH_PREFIX"]
broker = os.environ["BENCH_BROKER"]
app = Celery("bench", broker=broker, backend=os.environ["BENCH_RESULTS"])
transport = {"confirm_publish": True} if broker.startswith("amqp") else {}
if broker.startswith("redis"):
    transport["global_keyprefix"] = prefix
app.conf.update(
    task_default_queue=prefix,
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    broker_transport_options=transport,
    result_backend_transport_options={"global_keyprefix": prefix},
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)


@app.task(name="bench.noop")
def noop(t):
    return time.time() - t


@app.task(name="bench.fire", ignore_result=True)
def fire():
    return None
"""


@task(name="bench.noop")
async def noop(t: float) -> float:
    return time.time() - t


@task(name="bench.fire")
async def fire() -> None:
    return None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def concurrently(make: Callable[[], Awaitable[Any]], n: int) -> list[Any]:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one() -> Any:
        async with gate:
            return await make()

    return await asyncio.gather(*(one() for _ in range(n)))


async def handler_rates(app: App, requests: int) -> dict[str, float]:
    """Requests/s of /plain and /enqueue, one at a time and 50 at a time."""
    out: dict[str, float] = {}
    async with app.async_test_client() as client:
        for path in ("/plain", "/enqueue"):
            for _ in range(50):
                await client.post(path)
            start = time.perf_counter()
            for _ in range(requests):
                assert (await client.post(path)).status_code == 200
            out[f"{path[1:]}_seq"] = requests / (time.perf_counter() - start)
            start = time.perf_counter()
            await concurrently(lambda p=path: client.post(p), requests)
            out[f"{path[1:]}_c50"] = requests / (time.perf_counter() - start)
    for mode in ("seq", "c50"):
        out[f"cost_{mode}"] = (1 / out[f"enqueue_{mode}"] - 1 / out[f"plain_{mode}"]) * 1000
    return out


def handler_app(enqueue: Callable[[], Any], is_async: bool) -> App:
    app = App()

    @app.post("/plain")
    async def plain() -> dict[str, bool]:
        return {"ok": True}

    if is_async:

        @app.post("/enqueue")
        async def enqueue_async() -> dict[str, bool]:
            await enqueue()
            return {"ok": True}

    else:
        # Celery's delay() blocks: a sync handler, run in the thread pool.
        @app.post("/enqueue")
        def enqueue_sync() -> dict[str, bool]:
            enqueue()
            return {"ok": True}

    return app


async def start_worker(
    argv: list[str], folder: Path, env: dict[str, str], src: Path = ROOT / "src"
) -> Any:
    return await asyncio.create_subprocess_exec(
        *argv,
        cwd=folder,
        env={**os.environ, "PYTHONPATH": f"{folder}:{src}", **env},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def stop_worker(worker: Any) -> None:
    if worker.returncode is not None:
        raise SystemExit(f"the worker exited early ({worker.returncode})")
    worker.terminate()
    try:
        await asyncio.wait_for(worker.wait(), 30)
    except TimeoutError:
        worker.kill()
        await worker.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process ``pid`` so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def wait_all(
    count: Callable[[], Awaitable[int]], n: int, what: str, pid: int | None = None
) -> float:
    """Wait for ``n`` finished tasks; the CPU ms per task of the worker ``pid`` from the first
    one seen finished to the last (NaN without ``pid``)."""
    deadline = time.monotonic() + 300
    first: tuple[int, float] | None = None
    while (done := await count()) < n:
        if pid is not None and first is None and done > 0:
            first = (done, cpu_seconds(pid))
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: tasks not finished in 300 s")
        await asyncio.sleep(0.1)
    if pid is None or first is None or first[0] >= n:
        return float("nan")
    return (cpu_seconds(pid) - first[1]) / (n - first[0]) * 1000


# -- Transom --------------------------------------------------------------------------------------
async def transom_run(url: str, args: argparse.Namespace) -> dict[str, float]:
    prefix = f"transom-bench-{uuid.uuid4().hex[:8]}"
    config = TasksConfig(broker_url=url, prefix=prefix, result_url=REDIS_URL)
    client = Redis.from_url(REDIS_URL)
    tasks = Tasks(config)
    try:
        app = handler_app(fire.enqueue, True)
        app.install(tasks)
        out = await handler_rates(app, args.requests)
        await tasks.close()
        await cleanup(prefix)
        tasks = Tasks(config)
        folder = Path(tempfile.mkdtemp())
        (folder / "bench_worker.py").write_text(TRANSOM_WORKER)
        env = {
            "TRANSOM_TASKS_BROKER_URL": url,
            "TRANSOM_TASKS_PREFIX": prefix,
            "TRANSOM_TASKS_RESULT_URL": REDIS_URL,
            "TRANSOM_TASKS_PREFETCH": str(CONCURRENCY),
        }
        # WARNING, as Celery's below: neither worker logs a line per task.
        argv = [sys.executable, "-m", "transom.cli", "--app", "bench_worker:app", "worker"]
        argv += ["--loglevel", "WARNING"]

        async def finished(ids: list[str]) -> list[dict[str, Any]]:
            pipe = client.pipeline(transaction=False)
            for i in ids:
                pipe.hmget(f"{prefix}:run:{i}", "status", "return_value", "finished_at")
                pipe.get(f"{prefix}:result:{i}")  # the records of versions before 2026-12
            rows = await pipe.execute()
            out = []
            for fields, old in zip(rows[::2], rows[1::2], strict=True):
                if fields[0] == b'"SUCCESSFUL"':
                    out.append({"value": orjson.loads(fields[1]), "at": orjson.loads(fields[2])})
                elif old and (record := orjson.loads(old))["status"] == "SUCCESSFUL":
                    out.append({"value": record["return_value"], "at": record["finished_at"]})
            return out

        with tasks.activate():
            await tasks.start()
            # Queued before the worker starts: tasks/s is the worker's alone.
            sent = await concurrently(lambda: noop.enqueue(time.time()), args.tasks)
            ids = [r.id for r in sent]
            worker = await start_worker(
                [*argv, "-c", str(CONCURRENCY)], folder, env, args.worker_src
            )
            try:
                out["cpu_ms"] = await wait_all(
                    lambda: _len(finished(ids)), len(ids), "transom", worker.pid
                )
                done = sorted(r["at"] for r in await finished(ids))
                out["tasks_per_s"] = (len(done) - 1) / (done[-1] - done[0])
                paced = await pace(lambda: noop.enqueue(time.time()), args)
                ids = [r.id for r in paced]
                await wait_all(lambda: _len(finished(ids)), len(ids), "transom")
                latencies = [r["value"] for r in await finished(ids)]
            finally:
                await stop_worker(worker)
        out["p50_ms"] = percentile(latencies, 0.5) * 1000
        out["p99_ms"] = percentile(latencies, 0.99) * 1000
        return out
    finally:
        await tasks.close()
        await client.aclose()
        await cleanup(prefix)


async def _len(rows: Awaitable[list[Any]]) -> int:
    return len(await rows)


async def pace(send: Callable[[], Awaitable[Any]], args: argparse.Namespace) -> list[Any]:
    sent: list[Any] = []
    gap = 1 / args.rate
    start = time.perf_counter()
    for i in range(args.paced):
        await asyncio.sleep(max(0.0, start + i * gap - time.perf_counter()))
        sent.append(await send())
    return sent


# -- Celery ---------------------------------------------------------------------------------------
async def celery_run(url: str, args: argparse.Namespace) -> dict[str, float]:
    prefix = f"celery-bench-{uuid.uuid4().hex[:8]}"
    folder = Path(tempfile.mkdtemp())
    (folder / "bench_celery.py").write_text(CELERY_APP)
    env = {"BENCH_PREFIX": prefix, "BENCH_BROKER": url, "BENCH_RESULTS": REDIS_URL}
    os.environ.update(env)
    sys.path.insert(0, str(folder))
    sys.modules.pop("bench_celery", None)
    import bench_celery  # type: ignore[import-not-found]

    celery = bench_celery.app
    client = Redis.from_url(REDIS_URL)
    try:
        app = handler_app(bench_celery.fire.delay, False)
        out = await handler_rates(app, args.requests)
        await purge_celery(prefix, url)

        def send() -> Any:
            return bench_celery.noop.delay(time.time())

        async def asend() -> Any:
            return await asyncio.to_thread(send)

        async def finished(ids: list[str]) -> list[dict[str, Any]]:
            raw = await client.mget([f"{prefix}_celery-task-meta-{i}" for i in ids])
            return [m for m in (orjson.loads(r) for r in raw if r) if m["status"] == "SUCCESS"]

        import datetime as dt

        def done_at(meta: dict[str, Any]) -> float:
            when = dt.datetime.fromisoformat(meta["date_done"])
            return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).timestamp()

        # Queued before the worker starts: tasks/s is the worker's alone.
        sent = await concurrently(asend, args.tasks)
        ids = [r.id for r in sent]
        worker = await start_worker(
            [
                *(sys.executable, "-m", "celery", "-A", "bench_celery", "worker"),
                *("--pool", "threads", "--concurrency", str(CONCURRENCY), "-Q", prefix),
                *("--without-heartbeat", "--without-gossip", "--without-mingle"),
                *("--loglevel", "WARNING"),
            ],
            folder,
            env,
        )
        try:
            out["cpu_ms"] = await wait_all(
                lambda: _len(finished(ids)), len(ids), "celery", worker.pid
            )
            done = sorted(done_at(m) for m in await finished(ids))
            out["tasks_per_s"] = (len(done) - 1) / (done[-1] - done[0])
            paced = await pace(asend, args)
            ids = [r.id for r in paced]
            await wait_all(lambda: _len(finished(ids)), len(ids), "celery")
            latencies = [m["result"] for m in await finished(ids)]
        finally:
            await stop_worker(worker)
        out["p50_ms"] = percentile(latencies, 0.5) * 1000
        out["p99_ms"] = percentile(latencies, 0.99) * 1000
        return out
    finally:
        celery.close()
        await client.aclose()
        await purge_celery(prefix, url, delete=True)
        sys.path.remove(str(folder))


async def purge_celery(prefix: str, url: str, delete: bool = False) -> None:
    client = Redis.from_url(REDIS_URL)
    keys = [k async for k in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
    if url.startswith("amqp"):
        import aio_pika

        connection = await aio_pika.connect(AMQP_URL)
        channel = await connection.channel()
        if delete:
            await channel.queue_delete(prefix)
            await channel.exchange_delete(prefix)  # Celery declares one named as the queue
        else:
            queue = await channel.declare_queue(prefix, passive=True)
            await queue.purge()
        await connection.close()


async def cleanup(prefix: str) -> None:
    import aio_pika

    client = Redis.from_url(REDIS_URL)
    keys = [k async for k in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
    connection = await aio_pika.connect(AMQP_URL)
    channel = await connection.channel()
    for name in (f"{prefix}.default", f"{prefix}.default.delay", f"{prefix}.dead"):
        await channel.queue_delete(name)
    await channel.exchange_delete(f"{prefix}.tasks")
    await connection.close()


ENGINES = {"transom": transom_run, "celery": celery_run}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--paced", type=int, default=500, help="tasks of the latency run")
    parser.add_argument("--rate", type=float, default=100.0, help="their rate per second")
    parser.add_argument("--quick", action="store_true", help="500 tasks, 300 requests")
    parser.add_argument("--only", choices=sorted(BROKERS), default=None)
    parser.add_argument("--engines", default="transom,celery")
    parser.add_argument(
        "--worker-src",
        type=Path,
        default=ROOT / "src",
        help="the Transom source the worker runs (default: this checkout's src/); to compare "
        "two versions' workers, run the script with each in turn",
    )
    args = parser.parse_args()
    if args.quick:
        args.tasks, args.requests, args.paced = 500, 300, 200
    print(
        f"{'broker':<9} {'engine':<8} {'req/s seq':>10} {'+enq seq':>9} {'ms/enq':>7} "
        f"{'req/s c50':>10} {'+enq c50':>9} {'ms/enq':>7} {'tasks/s':>8} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'CPU ms/task':>11}"
    )
    for broker, url in BROKERS.items():
        if args.only and broker != args.only:
            continue
        for engine in args.engines.split(","):
            r = asyncio.run(ENGINES[engine](url, args))
            print(
                f"{broker:<9} {engine:<8} {r['plain_seq']:>10.0f} {r['enqueue_seq']:>9.0f} "
                f"{r['cost_seq']:>7.3f} {r['plain_c50']:>10.0f} {r['enqueue_c50']:>9.0f} "
                f"{r['cost_c50']:>7.3f} {r['tasks_per_s']:>8.0f} {r['p50_ms']:>7.1f} "
                f"{r['p99_ms']:>7.1f} {r['cpu_ms']:>11.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
