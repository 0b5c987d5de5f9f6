"""The start-up check of the database battery: are the migrations applied?

Run by ``app.build()`` (a check the :class:`~transom.db.Database` battery registers), so an app
whose database lags behind its migrations says so when it starts, with the command to run,
instead of answering its first request with a 500 ``no such column``. In debug mode the
message is logged at ERROR, in production at WARNING; the app starts either way.

It is cheap: the migration scripts' heads are read from disk and the database is asked one
query (``alembic_version``). It runs only when there is something to compare: a project
migrations folder, or the migration branches of batteries whose tables the models include.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

from transom.db.config import is_memory_sqlite

if TYPE_CHECKING:
    from transom.db.engine import Database

__all__ = ["check_migrations", "migration_status"]

logger = logging.getLogger("transom.db")


def migration_status(database: Database) -> str | None:
    """What is wrong between ``database`` and its migrations, with the command that fixes it,
    or ``None`` when nothing is (or there is nothing to check).

    Raises:
        Exception: whatever connecting to the database raised (unreachable, refused).
    """
    from transom.db.migrations.commands import Migrations

    migrations = Migrations(database)
    if not migrations.has_own and not migrations.batteries:
        return None
    heads = migrations.heads()
    current = migrations.current_revisions()
    if current != heads:
        unknown = current - {s.revision for s in migrations.scripts().walk_revisions() if s}
        if unknown:
            return (
                f"the database is at {', '.join(sorted(unknown))}, which no migration script "
                f"in {migrations.directory} knows: check out the branch that wrote it, or "
                "`transom db stamp` the right revision"
            )
        return (
            "the database has unapplied migrations (it is at "
            f"{', '.join(sorted(current)) or 'no migration'}, the latest is "
            f"{', '.join(sorted(heads))}): run `transom db migrate`"
        )
    if not migrations.has_own and _own_tables(database):
        return (
            f"models have tables that no migration creates ({migrations.directory} does not "
            'exist): run `transom db makemigrations -m "initial"`, then `transom db migrate`'
        )
    return None


def _own_tables(database: Database) -> list[str]:
    from transom.db.migrations.commands import battery_migrations

    prefixes = tuple(b.table_prefix for b in battery_migrations())
    return sorted(
        name
        for md in database.metadatas
        for name in md.tables
        if not (prefixes and name.startswith(prefixes))
    )


def check_migrations(database: Database, *, debug: bool) -> None:
    """Log (ERROR in debug mode, WARNING otherwise) when the migrations are not applied.

    Never fails start-up: an unreachable database is logged (a WARNING) and skipped, since
    the app may start before its database (containers) and the pool's error handling answers
    503 meanwhile.
    """
    url = make_url(database.config.url)
    if is_memory_sqlite(url):
        return  # a fresh database every connection: nothing was migrated, by design
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        # Built inside a running event loop (a server worker's start-up, a test client): the
        # check is a blocking query, which would stall the loop, and deadlock it when the
        # database is reached through something that loop serves. `transom run`, `app.run()`
        # and `app.build()` in a script build before any loop runs, and check there.
        logger.debug("Migration check skipped: the app is built inside a running event loop")
        return
    try:
        problem = migration_status(database)
    except Exception as exc:
        logger.warning(
            "Could not check the database migrations (%s: %s); skipped",
            type(exc).__name__,
            getattr(exc, "orig", None) or exc,
        )
        return
    if problem is not None:
        logger.log(logging.ERROR if debug else logging.WARNING, "Database: %s", problem)
