"""The admin's tasks page, added when the admin battery is installed beside :class:`Tasks`.

``/admin/tasks`` lists what the battery records: tasks waiting in the outbox (committed, not
yet relayed to the broker) and dead-lettered tasks (failed every attempt), with **retry** and
**discard** buttons. The outbox model is also registered (``Queued tasks`` on the dashboard).
Permissions are the outbox model's: ``tasks.view_outboxentry`` to see the page,
``tasks.change_outboxentry`` to retry, ``tasks.delete_outboxentry`` to discard (superusers
hold them all).

Nothing here is imported unless the admin battery is installed.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from transom.admin import ModelAdmin, action
from transom.exceptions import HTTPException
from transom.forms import flash
from transom.responses import RedirectResponse, Response
from transom.tasks.core import BrokerUnavailable
from transom.tasks.outbox import OutboxEntry, Relay

if TYPE_CHECKING:
    from transom.admin import Admin
    from transom.admin.site import Ctx
    from transom.tasks.battery import Tasks

__all__ = ["OutboxAdmin", "install_admin"]

logger = logging.getLogger("transom.tasks")

#: Rows of each section shown on the page (the oldest first: they are the stuck ones).
PAGE_ROWS = 200


class OutboxAdmin(ModelAdmin):
    """Tasks committed with ``enqueue_on_commit`` and not relayed yet: normally for an instant,
    longer while the broker is down. Discard deletes them; *Send now* relays them."""

    verbose_name = "Queued task"
    verbose_name_plural = "Queued tasks"
    list_display = ["id", "task", "created_at"]
    ordering = ["created_at"]
    search_fields = ["id", "task"]

    async def has_permission(self, request: Any, db: Any, user: Any, action: str) -> bool:
        # Rows come from enqueue_on_commit only: a hand-made row would be a malformed task.
        if action == "add":
            return False
        return await super().has_permission(request, db, user, action)

    @action(description="Send now")
    async def send_now(self, request: Any, db: Any, objects: list[OutboxEntry]) -> str:
        tasks = _tasks_of(request)
        for row in objects:
            await send_row(tasks, db, row)
        return f"{len(objects)} task(s) sent to the broker."

    actions = [send_now]


def _tasks_of(request: Any) -> Tasks:
    from transom.tasks.battery import Tasks

    return Tasks.of(request.app)


async def send_row(tasks: Tasks, db: Any, row: OutboxEntry) -> None:
    """Relay one outbox row now (in ``db``'s transaction: the row goes when it commits)."""
    await Relay.send(tasks, row)
    await db.delete(row)


def install_admin(tasks: Tasks, admin: Admin) -> None:
    """Register the outbox model and add the tasks page to ``admin`` (once)."""
    if admin.admin_for(OutboxEntry) is None:
        admin.register(OutboxEntry, OutboxAdmin)
    name = "admin_tasks"
    if any(getattr(r, "name", None) == name for r in tasks.app.iter_routes()):
        return

    async def tasks_page(ctx: Ctx) -> Response:
        """Queued, failed and dead-lettered tasks, with retry and discard."""
        return await page(ctx, tasks)

    tasks.app.add_route(
        f"{admin.prefix}/tasks",
        admin._wrap(tasks_page),
        ["GET", "POST"],
        name=name,
        include_in_schema=False,
    )


async def page(ctx: Ctx, tasks: Tasks) -> Response:
    from transom.templating import render

    site, request, db = ctx.site, ctx.request, ctx.db
    outbox = site.admin_for(OutboxEntry)
    assert outbox is not None
    await ctx.require(outbox, "view")
    if request.method == "POST":
        return await _act(ctx, tasks, outbox)
    may = await outbox.permissions(request, db, ctx.user)
    queued: list[dict[str, Any]] = []
    outbox_error = ""
    try:
        rows = (
            await db.scalars(
                sa.select(OutboxEntry).order_by(OutboxEntry.created_at).limit(PAGE_ROWS)
            )
        ).all()
        queued = [_outbox_view(row) for row in rows]
    except sa.exc.DBAPIError as exc:
        # No outbox table yet (the tasks migrations not run): the rest of the page still works.
        await db.rollback()
        logger.warning("admin tasks page: the outbox cannot be read: %s", exc)
        outbox_error = "The outbox table cannot be read: run `transom db migrate`."
    dead: list[dict[str, Any]] = []
    broker_error = ""
    try:
        dead = [_dead_view(letter) for letter in (await tasks.dead_letters())[:PAGE_ROWS]]
    except BrokerUnavailable as exc:
        # The page still shows the outbox, which lives in the database.
        logger.warning("admin tasks page: %s", exc)
        broker_error = "The task broker cannot be reached: dead letters are not shown."
    return render(
        "tasks/admin.html",
        **site.context(
            request,
            ctx.username,
            title="Tasks",
            breadcrumbs=[("Tasks", None)],
        ),
        queued=queued,
        dead=dead,
        broker_error=broker_error,
        outbox_error=outbox_error,
        can_retry=may["change"],
        can_discard=may["delete"],
        outbox_url=site.model_url(outbox),
        stats=tasks.stats.as_dict(),
        page_url=request.url.path,
    )


async def _act(ctx: Ctx, tasks: Tasks, outbox: ModelAdmin) -> Response:
    request, db = ctx.request, ctx.db
    form = await request.form()
    verb = str(form.get("action") or "")
    kind = str(form.get("kind") or "")
    task_id = str(form.get("id") or "")
    if verb not in ("retry", "discard") or kind not in ("outbox", "dead") or not task_id:
        raise HTTPException(400, "Unknown action")
    await ctx.require(outbox, "change" if verb == "retry" else "delete")
    try:
        done = await _apply(tasks, db, verb, kind, task_id)
    except BrokerUnavailable as exc:
        logger.warning("admin tasks page: %s %s: %s", verb, task_id, exc)
        await flash(request, "The task broker cannot be reached: try again shortly.", "error")
        return RedirectResponse(request.url.path, 303)
    if done:
        past = "sent again" if verb == "retry" else "discarded"
        await flash(request, f"Task {task_id} {past}.", "success")
    else:
        await flash(request, f"Task {task_id} is no longer there.", "warning")
    return RedirectResponse(request.url.path, 303)


async def _apply(tasks: Tasks, db: Any, verb: str, kind: str, task_id: str) -> bool:
    if kind == "dead":
        if verb == "retry":
            return await tasks.retry_dead(task_id)
        return await tasks.discard_dead(task_id)
    row = await db.get(OutboxEntry, task_id)
    if row is None:
        return False
    if verb == "retry":
        await send_row(tasks, db, row)
    else:
        await db.delete(row)
    await db.commit()
    return True


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _outbox_view(row: OutboxEntry) -> dict[str, Any]:
    data = orjson.loads(row.payload)
    envelope = data.get("envelope", {})
    return {
        "id": row.id,
        "task": row.task,
        "queue": envelope.get("queue", ""),
        "arguments": orjson.dumps(envelope.get("arguments", {})).decode(),
        "request_id": envelope.get("request_id") or "",
        "created": row.created_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "not_before": _when(data.get("not_before")),
    }


def _dead_view(letter: Any) -> dict[str, Any]:
    envelope = letter.envelope
    return {
        "id": envelope.id,
        "task": envelope.task,
        "queue": envelope.queue,
        "arguments": orjson.dumps(envelope.arguments).decode(),
        "request_id": envelope.request_id or "",
        "attempts": envelope.attempt + 1,
        "error": letter.error,
        "failed": _when(letter.failed_at),
    }
