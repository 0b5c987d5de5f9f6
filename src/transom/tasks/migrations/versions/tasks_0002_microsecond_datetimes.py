"""The outbox's times keep microseconds on MySQL/MariaDB (``DATETIME(6)``): relay order is by time.

Revision ID: tasks_0002
Revises: tasks_0001
"""

from __future__ import annotations

from collections.abc import Sequence

from transom.db.migrations.operations import microsecond_datetimes

revision: str = "tasks_0002"
down_revision: str | None = "tasks_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    microsecond_datetimes("transom_tasks_outbox", [("created_at", False, True)])


def downgrade() -> None:
    microsecond_datetimes("transom_tasks_outbox", [("created_at", False, True)], downgrade=True)
