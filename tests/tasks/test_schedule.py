"""Schedules: cron ticks in a time zone, intervals, and two schedulers running each tick once."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from redis.asyncio import Redis

from transom.tasks import task
from transom.tasks.schedule import next_tick

from .conftest import REDIS_URL, Spawn
from .test_worker import reported, until

pytestmark = pytest.mark.anyio


@task(name="t.nightly", cron="0 3 * * *", tz="Europe/Paris")
async def nightly() -> None: ...


@task(name="t.every", every=dt.timedelta(minutes=15))
async def quarterly() -> None: ...


def test_cron_ticks_in_the_task_time_zone() -> None:
    paris = ZoneInfo("Europe/Paris")
    now = dt.datetime(2026, 3, 28, 12, 0, tzinfo=paris).timestamp()
    first = next_tick(nightly, now)
    assert dt.datetime.fromtimestamp(first, paris) == dt.datetime(2026, 3, 29, 3, 0, tzinfo=paris)
    # 03:00 in Paris is 01:00 UTC after the switch to summer time that night.
    assert dt.datetime.fromtimestamp(first, dt.UTC).hour == 1
    second = next_tick(nightly, first)
    assert second - first == 24 * 3600


def test_intervals_count_from_the_epoch_so_every_scheduler_agrees() -> None:
    assert next_tick(quarterly, 1000.0) == 1800.0
    assert next_tick(quarterly, 1800.0) == 2700.0


async def tick_keys(prefix: str) -> list[str]:
    client = Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        return [str(k) async for k in client.scan_iter(match=f"{prefix}:key:tick:t.tick@*")]
    finally:
        await client.aclose()


async def test_two_schedulers_run_each_tick_once(broker: str, prefix: str, spawn: Spawn) -> None:
    worker = spawn("worker", broker_url=broker)
    schedulers = [spawn("scheduler", broker_url=broker) for _ in range(2)]
    for process in schedulers:
        process.wait_for("transom scheduler:")
    worker.wait_for("listening")

    async def three_ticks() -> bool:
        return len(await tick_keys(prefix)) >= 3

    await until(three_ticks, timeout=30)
    for process in schedulers:
        assert process.popen.poll() is None  # both alive all along
        assert process.stop() == 0
    ticks = len(await tick_keys(prefix))

    async def all_ran() -> bool:
        return len(await reported(prefix, "tick")) >= ticks

    await until(all_ran, timeout=30)
    assert len(await reported(prefix, "tick")) == ticks  # one run per tick, not two
    worker.stop()
