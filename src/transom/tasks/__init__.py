"""The tasks battery: background and scheduled tasks, in-process or on RabbitMQ / Redis.

::

    from transom.tasks import Tasks, task

    tasks = Tasks(app)        # in-process; TRANSOM_TASKS_BROKER_URL=amqp://... for a worker

    @task(retries=5, timeout=30)
    async def send_welcome(user_id: int) -> None: ...

    await send_welcome.enqueue(user.id)
    await send_welcome.enqueue_on_commit(db, user.id)   # if and only if the commit happens

Built on taskiq's brokers and message format; see ``docs/tasks.md``.
"""

from __future__ import annotations

from transom.tasks.battery import Tasks, TasksStats, current_tasks
from transom.tasks.config import TasksConfig
from transom.tasks.core import (
    BrokerUnavailable,
    InvalidTaskArguments,
    ResultUnavailable,
    Task,
    TaskError,
    TaskResult,
    TaskStatus,
    task,
)
from transom.tasks.outbox import OutboxEntry
from transom.tasks.transports import DeadLetter

__all__ = [
    "BrokerUnavailable",
    "DeadLetter",
    "InvalidTaskArguments",
    "OutboxEntry",
    "ResultUnavailable",
    "Task",
    "TaskError",
    "TaskResult",
    "TaskStatus",
    "Tasks",
    "TasksConfig",
    "TasksStats",
    "current_tasks",
    "task",
]
