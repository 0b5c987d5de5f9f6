"""SQLite's history table never reuses a deleted entry's id (``AUTOINCREMENT``).

Revision ID: admin_0003
Revises: admin_0002
"""

from __future__ import annotations

from collections.abc import Sequence

from transom.db.migrations.operations import sqlite_autoincrement

revision: str = "admin_0003"
down_revision: str | None = "admin_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    sqlite_autoincrement("transom_admin_log")


def downgrade() -> None:
    sqlite_autoincrement("transom_admin_log", downgrade=True)
