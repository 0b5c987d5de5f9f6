"""The app the tests' worker and scheduler processes load (``--app worker_app:app``).

Tasks report what they did to Redis lists under ``$TRANSOM_TASKS_PREFIX``, which the tests
read. Task names are explicit: the tests import this module as ``tasks.worker_app``, the
processes as ``worker_app``.
"""

from __future__ import annotations

import asyncio
import os

from redis.asyncio import Redis

from transom import App
from transom.tasks import Tasks, task

app = App()
tasks = Tasks(app)

PREFIX = os.environ.get("TRANSOM_TASKS_PREFIX", "transom")
REDIS_URL = "redis://127.0.0.1:6379/0"


async def report(kind: str, value: str) -> None:
    client = Redis.from_url(REDIS_URL)
    try:
        await client.rpush(f"{PREFIX}:report:{kind}", value)
    finally:
        await client.aclose()


@task(name="t.record")
async def record(tag: str) -> str:
    await report("done", tag)
    return tag.upper()


@task(name="t.record_sync", queue="other")
def record_sync(tag: str) -> str:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.rpush(f"{PREFIX}:report:done", f"sync:{tag}")
    client.close()
    return tag


@task(name="t.slow_record")
async def slow_record(tag: str, seconds: float) -> None:
    await report("started", f"{tag}:{os.getpid()}")
    await asyncio.sleep(seconds)
    await report("done", tag)


@task(name="t.fails", retries=2)
async def fails(tag: str) -> None:
    await report("attempt", tag)
    raise RuntimeError(f"failing {tag}")


@task(name="t.tick", every=1.0)
async def tick() -> None:
    await report("tick", "x")


if os.environ.get("TRANSOM_TEST_DB_URL"):
    # The worker relays the outbox of the app's database (rows a crashed process left).
    from transom.db import Database, DatabaseConfig

    app.install(Database(DatabaseConfig(url=os.environ["TRANSOM_TEST_DB_URL"])))
