"""enqueue_on_commit: sent if and only if the transaction commits, also when the process dies
right after the commit (the outbox row is relayed by a worker). PostgreSQL and SQLite."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from transom.db import Database, DatabaseConfig
from transom.tasks import OutboxEntry, Tasks, TasksConfig, TaskStatus

from . import worker_app
from .conftest import HERE, REDIS_URL, Spawn
from .test_core import add, calls
from .test_worker import reported, until

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _services import require_service

pytestmark = pytest.mark.anyio
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'outbox.sqlite3'}"
        return
    require_service("PostgreSQL", "127.0.0.1", 5432)
    name = f"transom_test_tasks_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN.replace("postgresql://", "postgresql+psycopg://"))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
async def database(db_url: str) -> AsyncIterator[Database]:
    database = Database(DatabaseConfig(url=db_url), metadata=OutboxEntry.metadata)
    await database.create_all()
    try:
        yield database
    finally:
        await database.dispose()


async def outbox_rows(database: Database) -> int:
    async with database.session() as session:
        return int(await session.scalar(sa.select(sa.func.count()).select_from(OutboxEntry)) or 0)


async def test_eager_runs_on_commit_and_never_on_rollback(database: Database) -> None:
    tasks = Tasks(TasksConfig(eager=True))
    calls.clear()
    with tasks.activate():
        async with database.session() as session:
            async with session.begin():
                await add.enqueue_on_commit(session, 1, 2)
            # rolled back: nothing
            await session.begin()
            await add.enqueue_on_commit(session, 3, 4)
            await session.rollback()
        await until(lambda: _called())
    assert calls == [("add", 1, 2)]
    assert await outbox_rows(database) == 0  # no broker: no outbox row


async def test_savepoints_rolled_back_send_nothing_released_wait_for_the_commit(
    database: Database,
) -> None:
    tasks = Tasks(TasksConfig(eager=True))
    calls.clear()
    with tasks.activate():
        async with database.session() as session:
            await session.begin()
            await add.enqueue_on_commit(session, 1, 1)
            with contextlib.suppress(ValueError):
                async with session.begin_nested():
                    await add.enqueue_on_commit(session, 2, 2)
                    raise ValueError("roll this savepoint back")
            async with session.begin_nested():
                await add.enqueue_on_commit(session, 3, 3)
            await asyncio.sleep(0.05)
            assert calls == []  # a savepoint's release is not the commit
            await session.commit()  # returns once the eager runs are done
            assert calls == [("add", 1, 1), ("add", 3, 3)]


async def test_enqueue_on_commit_needs_a_transom_session() -> None:
    from sqlalchemy.ext.asyncio import AsyncSession

    with Tasks(TasksConfig(eager=True)).activate(), pytest.raises(TypeError, match="DbSession"):
        await add.enqueue_on_commit(AsyncSession(), 1, 2)


async def test_broker_rollback_sends_nothing_commit_sends(
    database: Database, broker: str, prefix: str, spawn: Spawn
) -> None:
    tasks = Tasks(TasksConfig(broker_url=broker, prefix=prefix, result_url=REDIS_URL))
    try:
        with tasks.activate():
            async with database.session() as session:
                await session.begin()
                await worker_app.record.enqueue_on_commit(session, "rolled-back")
                await session.rollback()
                assert await outbox_rows(database) == 0
                async with session.begin():
                    task_id = await worker_app.record.enqueue_on_commit(session, "committed")
            worker = spawn("worker", broker_url=broker)
            assert await worker_app.record.result(task_id).wait(timeout=30) == "COMMITTED"
            assert await reported(prefix, "done") == ["committed"]
            assert await outbox_rows(database) == 0
            worker.stop()
    finally:
        await tasks.close()


CRASH = textwrap.dedent(
    """
    import asyncio, os, sys
    from transom.db import Database, DatabaseConfig
    from transom.tasks import OutboxEntry, Tasks, TasksConfig
    import worker_app

    async def main():
        database = Database(DatabaseConfig(url=sys.argv[1]), metadata=OutboxEntry.metadata)
        tasks = Tasks(TasksConfig())
        with tasks.activate():
            async with database.session() as session, session.begin():
                task_id = await worker_app.record.enqueue_on_commit(session, "after-crash")
            print(task_id, flush=True)
            os._exit(0)  # dies right after the commit, before anything is relayed

    asyncio.run(main())
    """
)


async def test_crash_right_after_commit_still_sends(
    database: Database, db_url: str, broker: str, prefix: str, spawn: Spawn
) -> None:
    env = {
        **os.environ,
        "TRANSOM_TASKS_BROKER_URL": broker,
        "TRANSOM_TASKS_PREFIX": prefix,
        "TRANSOM_TASKS_RESULT_URL": REDIS_URL,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CRASH, db_url, cwd=HERE, env=env, stdout=asyncio.subprocess.PIPE
    )
    stdout, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0
    task_id = stdout.decode().strip().splitlines()[-1]
    assert await outbox_rows(database) == 1  # committed, never relayed
    tasks = Tasks(TasksConfig(broker_url=broker, prefix=prefix, result_url=REDIS_URL))
    try:
        with tasks.activate():
            worker = spawn("worker", broker_url=broker, TRANSOM_TEST_DB_URL=db_url)
            assert await worker_app.record.result(task_id).wait(timeout=30) == "AFTER-CRASH"
            await until(lambda: _empty(database))
            record = await worker_app.record.result(task_id).refresh()
            assert record.status == TaskStatus.SUCCESSFUL
            assert await reported(prefix, "done") == ["after-crash"]
            worker.stop()
    finally:
        await tasks.close()


async def _called() -> bool:
    return bool(calls)


async def _empty(database: Database) -> bool:
    return await outbox_rows(database) == 0
