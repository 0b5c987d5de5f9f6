"""Tasks in-process and eager: the API (validation, results, retries, dead letters, keys)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from transom import App
from transom.exceptions import ImproperlyConfigured
from transom.tasks import (
    InvalidTaskArguments,
    ResultUnavailable,
    TaskError,
    Tasks,
    TasksConfig,
    TaskStatus,
    task,
)

pytestmark = pytest.mark.anyio

calls: list[object] = []


class Point(BaseModel):
    x: int
    y: int


@task
async def add(a: int, b: int) -> int:
    calls.append(("add", a, b))
    return a + b


@task
def shout(word: str) -> str:  # a sync task: runs in the thread pool
    return word.upper()


@task
async def norm(p: Point, when: dt.datetime) -> float:
    assert isinstance(p, Point)
    assert isinstance(when, dt.datetime)
    return float(p.x**2 + p.y**2)


failures = {"n": 0}


@task(retries=2)
async def flaky() -> str:
    failures["n"] += 1
    if failures["n"] < 3:
        raise RuntimeError(f"boom {failures['n']}")
    return "ok"


@task(retries=1)
async def always_fails() -> None:
    raise ValueError("nope")


@task(timeout=0.05)
async def slow() -> None:
    await asyncio.sleep(5)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()
    failures["n"] = 0


def eager() -> Tasks:
    return Tasks(TasksConfig(eager=True, broker_url=""))


async def test_eager_runs_inside_enqueue_and_keeps_the_result() -> None:
    tasks = eager()
    with tasks.activate():
        result = await add.enqueue(2, 3)
    assert calls == [("add", 2, 3)]
    assert result.status == TaskStatus.READY  # the handle as returned; refresh reads the store
    result = await result.refresh()
    assert await result.wait(timeout=1) == 5
    assert result.status == TaskStatus.SUCCESSFUL
    assert result.return_value == 5
    assert result.attempts == 1


async def test_arguments_are_validated_at_enqueue_and_sent_as_json() -> None:
    tasks = eager()
    with tasks.activate():
        with pytest.raises(InvalidTaskArguments, match="argument 'a'"):
            await add.enqueue("2", 3)  # type: ignore[arg-type]
        with pytest.raises(InvalidTaskArguments, match="missing a required argument"):
            await add.enqueue(2)  # type: ignore[call-arg]
        with pytest.raises(InvalidTaskArguments, match="unexpected keyword"):
            await add.enqueue(2, 3, c=4)  # type: ignore[call-arg]
        assert calls == []
        when = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
        result = await norm.enqueue(Point(x=3, y=4), when)
        assert await result.wait(1) == 25.0
    assert norm.dump_arguments((Point(x=1, y=2), when), {}) == {
        "p": {"x": 1, "y": 2},
        "when": "2030-01-01T00:00:00Z",
    }


def test_arguments_bind_as_a_call_would() -> None:
    """enqueue binds arguments itself on the plain path: each way a call can be wrong is
    still refused, and defaults are left to the worker's call."""

    @task(name="tests.binding")
    def binding(a: int, /, b: str = "b", *, c: bool = False) -> None: ...

    @task(name="tests.variadic")
    def variadic(a: int, *rest: int, **named: int) -> None: ...

    assert binding.dump_arguments((1,), {}) == {"a": 1}  # defaults are not sent
    assert binding.dump_arguments((1, "x"), {"c": True}) == {"a": 1, "b": "x", "c": True}
    assert binding.dump_arguments((1,), {"b": "y"}) == {"a": 1, "b": "y"}
    refused: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        ((), {"a": 1}),  # positional-only given by name
        ((1, "x", True), {}),  # keyword-only given by position
        ((1, "x"), {"b": "y"}),  # twice
        ((1,), {"d": 1}),  # unknown
        ((), {}),  # missing
    ]
    for args, kwargs in refused:
        with pytest.raises(InvalidTaskArguments, match=r"tests\.binding: "):
            binding.dump_arguments(args, kwargs)
    with pytest.raises(InvalidTaskArguments, match="argument 'c'"):
        binding.dump_arguments((1,), {"c": "yes"})
    assert variadic.dump_arguments((1,), {}) == {"a": 1}
    for args, kwargs in (((1, 2), {}), ((1,), {"x": 2})):
        with pytest.raises(InvalidTaskArguments, match="cannot be sent"):
            variadic.dump_arguments(args, kwargs)
    # The worker's side: hinted types back, and a name the task does not have (a message of
    # another version of it) fails the run instead of being dropped.
    assert binding.load_arguments({"a": "7"}) == {"a": 7}
    with pytest.raises(ValidationError):
        binding.load_arguments({"a": 1, "z": 2})


async def test_in_process_runs_after_enqueue_returns_sync_in_a_thread() -> None:
    tasks = Tasks(TasksConfig(broker_url=""))
    with tasks.activate():
        result = await add.enqueue(1, 1)
        loud = await shout.enqueue("hi")
        assert await result.wait(2) == 2
        assert await loud.wait(2) == "HI"
    await tasks.close()


async def test_delay_and_eta_in_process() -> None:
    tasks = Tasks(TasksConfig(broker_url=""))
    with tasks.activate():
        later = await add.using(delay=0.2).enqueue(1, 2)
        await asyncio.sleep(0.05)
        assert (await later.refresh()).status == TaskStatus.READY
        assert await later.wait(3) == 3
        eta = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.1)
        assert await add.using(eta=eta).enqueue(2, 2) is not None
        with pytest.raises(ValueError, match="timezone-aware"):
            await add.using(eta=dt.datetime.now()).enqueue(1, 1)
    await tasks.close()


async def test_retries_then_success(caplog: pytest.LogCaptureFixture) -> None:
    tasks = eager()
    caplog.set_level(logging.INFO, "transom.tasks")
    with tasks.activate():
        result = await flaky.enqueue()
    assert await result.wait(1) == "ok"
    assert result.attempts == 3
    assert result.errors == ["RuntimeError: boom 1", "RuntimeError: boom 2"]
    assert tasks.stats.retried == 2
    assert any(
        result.id in r.getMessage() and "retried in" in r.getMessage() for r in caplog.records
    )


async def test_exhausted_retries_dead_letter_visible_and_rerunnable() -> None:
    tasks = eager()
    with tasks.activate():
        result = await always_fails.enqueue()
        with pytest.raises(TaskError, match="FAILED: ValueError: nope; ValueError: nope"):
            await result.wait(1)
        dead = await tasks.dead_letters()
        assert [d.envelope.id for d in dead] == [result.id]
        assert dead[0].error == "ValueError: nope"
        assert await tasks.retry_dead(result.id)
        assert len(await tasks.dead_letters()) == 1  # it failed again, twice, and is back
        assert await tasks.discard_dead(result.id)
        assert await tasks.dead_letters() == []
        assert not await tasks.discard_dead(result.id)
    assert tasks.stats.dead_lettered == 2


async def test_timeout_fails_the_run() -> None:
    tasks = eager()
    with tasks.activate():
        result = await slow.enqueue()
    await result.refresh()
    assert result.status == TaskStatus.FAILED
    assert result.errors == ["timed out after 0.05 s"]


async def test_idempotency_key_sends_once() -> None:
    tasks = eager()
    with tasks.activate():
        first = await add.using(key="once").enqueue(1, 2)
        second = await add.using(key="once").enqueue(1, 2)
    assert second.id == first.id
    assert calls == [("add", 1, 2)]


async def test_cancel_before_start() -> None:
    tasks = Tasks(TasksConfig(broker_url=""))
    with tasks.activate():
        result = await add.using(delay=0.1).enqueue(5, 5)
        assert await result.cancel()
        await asyncio.sleep(0.2)
        await tasks.drain()
        assert calls == []
        assert (await result.refresh()).status == TaskStatus.CANCELLED
        assert not await result.cancel()
        with pytest.raises(TaskError, match="CANCELLED"):
            await result.wait(1)
        with pytest.raises(ResultUnavailable):
            _ = result.return_value
    await tasks.close()


def test_the_battery_shape() -> None:
    app = App()
    tasks = Tasks(app, TasksConfig(eager=True))
    assert Tasks.of(app) is tasks
    assert app.extensions["transom.tasks"] is tasks
    other = App()
    installed = other.install(Tasks(TasksConfig(eager=True)))
    assert Tasks.of(other) is installed
    with pytest.raises(ImproperlyConfigured, match="already installed"):
        Tasks(app)


def test_broker_url_scheme_is_checked() -> None:
    with pytest.raises(ValueError, match="use amqp://, redis://"):
        _ = TasksConfig(broker_url="kafka://x").backend


def test_scheduled_tasks_take_no_arguments_and_check_cron() -> None:
    with pytest.raises(ImproperlyConfigured, match="no arguments"):

        @task(cron="* * * * *")
        async def bad(x: int) -> None: ...

    with pytest.raises(ImproperlyConfigured, match="invalid cron"):

        @task(cron="61 * * * *")
        async def worse() -> None: ...

    with pytest.raises(ImproperlyConfigured, match="unknown time zone"):

        @task(cron="0 3 * * *", tz="Mars/Olympus")
        async def worst() -> None: ...


def test_eager_in_the_test_client() -> None:
    app = App()
    Tasks(app, TasksConfig(eager=True))

    @app.post("/add")
    async def handler() -> dict[str, object]:
        result = await add.enqueue(20, 22)
        return {"id": result.id, "value": await result.wait(1)}

    with app.test_client() as client:
        response = client.post("/add", headers={"X-Request-ID": "req-123"})
    assert response.status_code == 200
    assert response.json()["value"] == 42
    assert calls == [("add", 20, 22)]
