"""The admin's tasks page (the admin battery beside Tasks, on Redis): queued outbox rows and
dead letters listed, retry and discard, each guarded by the outbox model's permissions."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape
from redis.asyncio import Redis

from admin.models import Base, User  # tests/admin/models.py
from transom import App, Settings
from transom.admin import Admin, AdminConfig, SessionAuth
from transom.admin.history import LogEntry
from transom.db import Database, DatabaseConfig
from transom.security import Security
from transom.tasks import OutboxEntry, Tasks, TasksConfig
from transom.tasks.transports import DeadLetter, Envelope
from transom.testing import AsyncTestClient

from .conftest import REDIS_URL

pytestmark = pytest.mark.anyio

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def build(
    tmp_path: Path, config: TasksConfig, *, outbox_table: bool = True
) -> tuple[App, Tasks, Database]:
    database = Database(DatabaseConfig(url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"))
    async with database.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
        if outbox_table:
            await conn.run_sync(OutboxEntry.metadata.tables["transom_tasks_outbox"].create)
        await conn.run_sync(LogEntry.metadata.tables["transom_admin_log"].create)
    app = App(Settings(debug=True))
    app.install(Security())
    app.install(database)
    tasks = app.install(Tasks(config))
    app.install(Admin(AdminConfig(auth=SessionAuth(User), register_auth_models=False)))
    async with database.session() as db:
        for name, perms, superuser in [
            ("root", [], True),
            ("viewer", ["tasks.view_outboxentry"], False),
            ("stranger", [], False),
            (
                "operator",
                ["tasks.view_outboxentry", "tasks.change_outboxentry", "tasks.delete_outboxentry"],
                False,
            ),
        ]:
            user = User(
                username=name,
                email=f"{name}@example.com",
                is_staff=True,
                is_superuser=superuser,
                perms=perms,
            )
            user.set_password(PASSWORD)
            db.add(user)
        await db.commit()
    return app, tasks, database


@pytest.fixture
async def site(
    tmp_path: Path, prefix: str, redis_required: None
) -> AsyncIterator[tuple[App, Tasks, Database]]:
    config = TasksConfig(broker_url=REDIS_URL, prefix=prefix, result_url=REDIS_URL)
    app, tasks, database = await build(tmp_path, config)
    yield app, tasks, database
    await tasks.close()
    await database.dispose()


async def login(client: AsyncTestClient, username: str) -> None:
    page = await client.get("/admin/login")
    token = _CSRF.search(page.text)
    assert token is not None
    response = await client.post(
        "/admin/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)},
    )
    assert response.status_code == 303


async def post(client: AsyncTestClient, data: dict[str, str]) -> Any:
    page = await client.get("/admin")
    token = _CSRF.search(page.text)
    assert token is not None
    return await client.post("/admin/tasks", data={**data, "csrf_token": token.group(1)})


def envelope(task_id: str, tag: str) -> Envelope:
    return Envelope(id=task_id, task="t.record", arguments={"tag": tag}, queue="default")


async def seed(tasks: Tasks, database: Database) -> None:
    """One task left in the outbox (as after a crash), one dead letter."""
    if tasks._relay is not None:  # no relay running: the row stays queued
        await tasks._relay.stop()
        tasks._relay = None
    async with database.session() as db:
        queued = envelope("q" * 32, "queued")
        queued.request_id = "req-42"
        payload = json.dumps({"envelope": queued.__dict__, "not_before": None})
        db.add(OutboxEntry(id=queued.id, task=queued.task, payload=payload))
        await db.commit()
    with tasks.activate():
        await tasks.transport.dead_letter(DeadLetter(envelope("d" * 32, "dead"), "boom", 0.0))


async def stream_length(prefix: str) -> int:
    client = Redis.from_url(REDIS_URL)
    try:
        return int(await client.xlen(f"{prefix}:default"))
    finally:
        await client.aclose()


async def test_the_page_lists_the_outbox_and_the_dead_letters(
    site: tuple[App, Tasks, Database],
) -> None:
    app, tasks, database = site
    async with AsyncTestClient(app) as client:
        await seed(tasks, database)
        await login(client, "root")
        index = await client.get("/admin")
        assert "Queued tasks" in index.text  # the outbox model is on the dashboard
        page = await client.get("/admin/tasks")
        assert page.status_code == 200
        queued, dead = page.text.split('id="dead"')
        assert "q" * 32 in queued
        assert "req-42" in queued
        assert str(escape('{"tag":"queued"}')) in queued
        assert "d" * 32 in dead
        assert "boom" in dead
        assert 'value="retry"' in page.text
        assert 'value="discard"' in page.text


async def test_permissions_guard_the_page_and_each_action(
    site: tuple[App, Tasks, Database], prefix: str
) -> None:
    app, tasks, database = site
    async with AsyncTestClient(app) as client:
        await seed(tasks, database)
        await login(client, "stranger")
        assert (await client.get("/admin/tasks")).status_code == 403
    async with AsyncTestClient(app) as client:
        await login(client, "viewer")
        page = await client.get("/admin/tasks")
        assert page.status_code == 200
        assert "d" * 32 in page.text
        assert 'value="retry"' not in page.text
        assert 'value="discard"' not in page.text
        for verb in ("retry", "discard"):
            refused = await post(client, {"action": verb, "kind": "dead", "id": "d" * 32})
            assert refused.status_code == 403
        with tasks.activate():
            assert [d.envelope.id for d in await tasks.dead_letters()] == ["d" * 32]
        bad = await post(client, {"action": "explode", "kind": "dead", "id": "x"})
        assert bad.status_code == 400


async def test_retry_and_discard(site: tuple[App, Tasks, Database], prefix: str) -> None:
    app, tasks, database = site
    async with AsyncTestClient(app) as client:
        await seed(tasks, database)
        await login(client, "operator")
        before = await stream_length(prefix)
        done = await post(client, {"action": "retry", "kind": "dead", "id": "d" * 32})
        assert done.status_code == 303
        with tasks.activate():
            assert await tasks.dead_letters() == []
        assert await stream_length(prefix) == before + 1  # sent to the broker again
        done = await post(client, {"action": "retry", "kind": "outbox", "id": "q" * 32})
        assert done.status_code == 303
        assert await stream_length(prefix) == before + 2
        async with database.session() as db:
            assert await db.get(OutboxEntry, "q" * 32) is None
        # Discard: a new dead letter and a new row, gone without being sent.
        await seed(tasks, database)
        for kind, task_id in (("dead", "d" * 32), ("outbox", "q" * 32)):
            done = await post(client, {"action": "discard", "kind": kind, "id": task_id})
            assert done.status_code == 303
        assert await stream_length(prefix) == before + 2
        with tasks.activate():
            assert await tasks.dead_letters() == []
        async with database.session() as db:
            assert await db.get(OutboxEntry, "q" * 32) is None
        page = await client.get("/admin/tasks")
        assert "No task is waiting in the outbox." in page.text
        gone = await post(client, {"action": "discard", "kind": "dead", "id": "d" * 32})
        assert gone.status_code == 303
        assert "is no longer there" in (await client.get("/admin/tasks")).text


async def test_the_page_survives_a_broker_outage_and_a_missing_outbox_table(
    tmp_path: Path, prefix: str
) -> None:
    down = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    config = TasksConfig(broker_url=down, prefix=prefix, result_url=down, connect_timeout=1)
    app, tasks, database = await build(tmp_path, config, outbox_table=False)
    try:
        async with AsyncTestClient(app) as client:
            await login(client, "root")
            page = await client.get("/admin/tasks")
            assert page.status_code == 200
            assert "The task broker cannot be reached" in page.text
            assert "The outbox table cannot be read" in page.text
            refused = await post(client, {"action": "retry", "kind": "dead", "id": "d" * 32})
            assert refused.status_code == 303  # back to the page, which says why
            assert "try again shortly" in (await client.get("/admin/tasks")).text
    finally:
        await tasks.close()
        await database.dispose()
