"""``transom db ...``: migrations from the command line.

Registered through the ``transom.commands`` entry point, so ``transom db --help`` lists them:
``makemigrations``, ``migrate``, ``downgrade``, ``history``, ``current``, ``check``, ``stamp``.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from transom.db.engine import Database, get_database

__all__ = ["db", "load_database"]

F = TypeVar("F", bound=Callable[..., Any])


def _load_app(ctx: click.Context) -> Any | None:
    """The user's app, or None for a project that has models but no app module."""
    try:
        from transom.cli import load_app
    except ImportError:  # pragma: no cover - the core CLI ships with transom
        return None
    try:
        return load_app(ctx)
    except click.UsageError as exc:
        if "Could not find an app" in str(exc):
            return None
        raise


def load_database(ctx: click.Context) -> Database:
    """The app's :class:`Database` (its models imported), for commands that need one."""
    app = _load_app(ctx)
    database = get_database(app) if app is not None else Database()
    for module in database.config.models:
        importlib.import_module(module)
    return database


_NOISE = (
    "Context impl",
    "Will assume",
    "setting up autogenerate plugin",
    "Detected sequence named",  # PostgreSQL SERIAL columns: informational only
)


@contextmanager
def _alembic_logging() -> Iterator[None]:
    # Alembic reports what it detects and runs ("Detected added table 'article'", "Running
    # upgrade ...") through logging; show those lines plainly, as Django's commands do.
    logger = logging.getLogger("alembic")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("  %(message)s"))
    handler.addFilter(lambda record: not record.getMessage().startswith(_NOISE))
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def _migrations(ctx: click.Context) -> Any:
    from transom.db.migrations import Migrations

    options = ctx.find_object(_Options)
    directory = options.directory if options is not None else None
    return Migrations(load_database(ctx), directory, stdout=sys.stdout)


class _Options:
    def __init__(self, directory: Path | None) -> None:
        self.directory = directory


def _friendly_errors(func: F) -> F:
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from transom.db.migrations import MigrationError

        try:
            with _alembic_logging():
                return func(*args, **kwargs)
        except MigrationError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


@click.group()
@click.option(
    "--directory",
    "-d",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Migrations directory [default: ./migrations, or TRANSOM_DATABASE_MIGRATIONS_DIR].",
)
@click.pass_context
def db(ctx: click.Context, directory: Path | None) -> None:
    """Database migrations (Alembic underneath), for the app's DATABASE_URL."""
    ctx.obj = _Options(directory)


@db.command()
@click.option("-m", "--message", default="auto", show_default=True, help="What it does.")
@click.option("--empty", is_flag=True, help="Write an empty migration (for data migrations).")
@click.pass_context
@_friendly_errors
def makemigrations(ctx: click.Context, message: str, empty: bool) -> None:
    """Write a migration for the changes made to the models since the last one."""
    migrations = _migrations(ctx)
    script = migrations.make(message, empty=empty)
    if script is None:
        click.echo("No changes detected.")
        return
    click.echo(f"Created {os.path.relpath(script.path)}")


@db.command()
@click.argument("revision", default="head")
@click.option("--sql", is_flag=True, help="Print the SQL instead of running it.")
@click.pass_context
@_friendly_errors
def migrate(ctx: click.Context, revision: str, sql: bool) -> None:
    """Apply migrations, up to REVISION (default: all of them)."""
    migrations = _migrations(ctx)
    migrations.upgrade(revision, sql=sql)
    if not sql:
        click.echo(f"Database is at {_describe(migrations.current_revisions())}.")


@db.command()
@click.argument("revision", default="-1")
@click.option("--sql", is_flag=True, help="Print the SQL instead of running it.")
@click.pass_context
@_friendly_errors
def downgrade(ctx: click.Context, revision: str, sql: bool) -> None:
    """Revert migrations down to REVISION (default: -1, the last one; `base`: all)."""
    migrations = _migrations(ctx)
    migrations.downgrade(revision, sql=sql)
    if not sql:
        click.echo(f"Database is at {_describe(migrations.current_revisions())}.")


@db.command()
@click.option("-v", "--verbose", is_flag=True, help="Show full details.")
@click.pass_context
@_friendly_errors
def history(ctx: click.Context, verbose: bool) -> None:
    """List the migrations, newest first."""
    _migrations(ctx).history(verbose=verbose)


@db.command()
@click.pass_context
@_friendly_errors
def current(ctx: click.Context) -> None:
    """Show the migration the database is at."""
    migrations = _migrations(ctx)
    revisions = migrations.current_revisions()
    heads = migrations.heads()
    state = "up to date" if revisions == heads else f"latest is {_describe(heads)}"
    click.echo(f"{_describe(revisions)} ({state})")


@db.command()
@click.pass_context
@_friendly_errors
def check(ctx: click.Context) -> None:
    """Exit non-zero if the models and the migrations disagree (for CI).

    The database must be at the latest migration; on a fresh CI database run
    `transom db migrate` first.
    """
    from transom.db.migrations import NotUpToDate

    migrations = _migrations(ctx)
    try:
        diffs = migrations.check()
    except NotUpToDate as exc:
        raise click.ClickException(str(exc)) from exc
    if diffs:
        click.echo("Models and migrations disagree; run `transom db makemigrations`:", err=True)
        for diff in diffs:
            click.echo(f"  {diff!r}"[:300], err=True)
        ctx.exit(1)
    click.echo("Models and migrations agree.")


@db.command()
@click.argument("revision", default="head")
@click.pass_context
@_friendly_errors
def stamp(ctx: click.Context, revision: str) -> None:
    """Record REVISION as applied without running it (adopting an existing database)."""
    migrations = _migrations(ctx)
    migrations.stamp(revision)
    click.echo(f"Database is at {_describe(migrations.current_revisions())}.")


def _describe(revisions: set[str]) -> str:
    return ", ".join(sorted(revisions)) or "no migration (empty)"


if __name__ == "__main__":  # pragma: no cover
    db()
