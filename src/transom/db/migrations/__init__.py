"""Migrations for Transom projects: Alembic underneath, Django's commands on top.

The project's ``migrations/`` directory (created by the first ``makemigrations``) holds a
two-line ``env.py``, the script template and ``versions/``; there is no ``alembic.ini``.
"""

from transom.db.migrations.commands import (
    MigrationError,
    Migrations,
    NotUpToDate,
    run_on_connection,
)
from transom.db.migrations.operations import microsecond_datetimes, sqlite_autoincrement
from transom.db.migrations.runner import migration_options, run_migrations

__all__ = [
    "MigrationError",
    "Migrations",
    "NotUpToDate",
    "microsecond_datetimes",
    "migration_options",
    "run_migrations",
    "run_on_connection",
    "sqlite_autoincrement",
]
