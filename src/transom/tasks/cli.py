"""``transom worker`` and ``transom scheduler`` (registered through ``transom.commands``)."""

from __future__ import annotations

import asyncio
import logging

import click

__all__ = ["scheduler", "worker"]


def _tasks(ctx: click.Context) -> object:
    from transom.cli import load_app
    from transom.tasks.battery import Tasks

    app = load_app(ctx)
    app.batteries.install_requirements()
    return Tasks.of(app)


@click.command()
@click.option("-q", "--queue", "queues", multiple=True, help="Queue to take tasks from (repeat).")
@click.option("-c", "--concurrency", default=10, show_default=True, help="Tasks run at once.")
@click.option(
    "--grace", default=30.0, show_default=True, help="Seconds to finish running tasks on stop."
)
@click.option(
    "--loglevel",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    help="INFO logs each task's start and finish; WARNING only retries and failures.",
)
@click.pass_context
def worker(
    ctx: click.Context, queues: tuple[str, ...], concurrency: int, grace: float, loglevel: str
) -> None:
    """Run the app's tasks from the broker (TRANSOM_TASKS_BROKER_URL)."""
    from transom.tasks.battery import Tasks
    from transom.tasks.worker import run_worker

    logging.basicConfig(
        level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    tasks = _tasks(ctx)
    assert isinstance(tasks, Tasks)
    if tasks.config.backend not in ("amqp", "redis"):
        raise click.UsageError("set TRANSOM_TASKS_BROKER_URL to amqp://... or redis://...")
    asyncio.run(run_worker(tasks, list(queues) or None, concurrency, grace))


@click.command()
@click.pass_context
def scheduler(ctx: click.Context) -> None:
    """Send the app's cron and interval tasks at their ticks (one run per tick)."""
    from transom.tasks.battery import Tasks
    from transom.tasks.schedule import run_scheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    tasks = _tasks(ctx)
    assert isinstance(tasks, Tasks)
    asyncio.run(run_scheduler(tasks))
