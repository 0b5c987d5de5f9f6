"""Timestamps keep microseconds on MySQL/MariaDB (``DATETIME(6)``), as on PostgreSQL and SQLite.

Revision ID: auth_0003
Revises: auth_0002
"""

from __future__ import annotations

from collections.abc import Sequence

from transom.auth.migrations import builtin_user_in_use
from transom.db.migrations.operations import microsecond_datetimes

revision: str = "auth_0003"
down_revision: str | None = "auth_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (column, nullable, defaults to CURRENT_TIMESTAMP)
_TOKEN = [("created_at", False, True), ("last_used_at", True, False), ("expires_at", True, False)]
_USER = [("last_login", True, False), ("date_joined", False, True)]


def upgrade() -> None:
    microsecond_datetimes("transom_auth_api_token", _TOKEN)
    if builtin_user_in_use():
        microsecond_datetimes("transom_auth_user", _USER)


def downgrade() -> None:
    microsecond_datetimes("transom_auth_api_token", _TOKEN, downgrade=True)
    if builtin_user_in_use():
        microsecond_datetimes("transom_auth_user", _USER, downgrade=True)
