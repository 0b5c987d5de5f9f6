"""Fixtures for the tasks battery: a unique prefix per test (queues, streams, keys), removed
afterwards, and worker / scheduler processes started from the tests and always killed."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests/_services.py

from _services import remove_redis_keys, require_service

HERE = Path(__file__).resolve().parent
REDIS_URL = "redis://127.0.0.1:6379/0"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def prefix() -> str:
    return f"transom-test-tasks-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def redis_required() -> None:
    require_service("Redis", "127.0.0.1", 6379)


@pytest.fixture
def amqp_required() -> None:
    require_service("RabbitMQ", "127.0.0.1", 5672)


async def remove_amqp(prefix: str, queues: list[str]) -> None:
    import aio_pika

    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        names = [f"{prefix}.dead"]
        for queue in queues:
            names += [f"{prefix}.{queue}", f"{prefix}.{queue}.delay"]
        for name in names:
            await channel.queue_delete(name)
        await channel.exchange_delete(f"{prefix}.tasks")
    finally:
        await connection.close()


@pytest.fixture(params=["amqp", "redis"])
async def broker(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[str]:
    """The broker URL of this test run (RabbitMQ, then Redis); everything removed after."""
    require_service("Redis", "127.0.0.1", 6379)  # the tasks report to Redis in both cases
    if request.param == "amqp":
        require_service("RabbitMQ", "127.0.0.1", 5672)
    yield AMQP_URL if request.param == "amqp" else REDIS_URL
    if request.param == "amqp":
        await remove_amqp(prefix, ["default", "other"])
    await remove_redis_keys(prefix)


class Process:
    """A ``transom`` subprocess whose output is collected by a thread (never blocks)."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "transom.cli", "--app", "worker_app:app", *args],
            cwd=HERE,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for raw in self.popen.stdout:
            self.lines.append(raw.decode(errors="replace"))

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if self.popen.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{text!r} not seen within {timeout} s; output:\n{self.output}")
            time.sleep(0.05)

    def stop(self, timeout: float = 20) -> int:
        if self.popen.poll() is None:
            self.popen.terminate()
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait()


Spawn = Callable[..., Process]


@pytest.fixture
def spawn(prefix: str) -> Iterator[Spawn]:
    """``spawn("worker", "-c", "4", broker_url=...)``: a process killed after the test."""
    started: list[Process] = []

    def start(*args: str, broker_url: str, **env: str) -> Process:
        environment = {
            **os.environ,
            "TRANSOM_SECRET_KEY": "tasks-test",
            "TRANSOM_TASKS_BROKER_URL": broker_url,
            "TRANSOM_TASKS_PREFIX": prefix,
            "TRANSOM_TASKS_RESULT_URL": REDIS_URL,
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        process = Process(list(args), environment)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.popen.poll() is None:
            process.popen.kill()
            process.popen.wait()
