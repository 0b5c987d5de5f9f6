"""SQLite tables never reuse a deleted row's id (``AUTOINCREMENT``), as on PostgreSQL and MariaDB.

Users, groups, permissions, API tokens and social accounts made before Transom 0.2 hand a
deleted row's id to the next row on SQLite, so whatever still names it (the admin's history,
a link in an e-mail) would mean someone else. The tables are rebuilt with their rows, ids,
indexes and foreign keys; other engines are left alone.

Revision ID: auth_0004
Revises: auth_0003
"""

from __future__ import annotations

from collections.abc import Sequence

from transom.auth.migrations import USER_TABLE, builtin_user_in_use
from transom.db.migrations.operations import sqlite_autoincrement

revision: str = "auth_0004"
down_revision: str | None = "auth_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = [
    "transom_auth_api_token",
    "transom_auth_group",
    "transom_auth_permission",
    "transom_auth_social_account",
]


def _tables() -> list[str]:
    return _TABLES + ([USER_TABLE] if builtin_user_in_use() else [])


def upgrade() -> None:
    for table in _tables():
        sqlite_autoincrement(table)


def downgrade() -> None:
    for table in reversed(_tables()):
        sqlite_autoincrement(table, downgrade=True)
