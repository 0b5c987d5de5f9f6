"""History times keep microseconds on MySQL/MariaDB (``DATETIME(6)``), as on the other engines.

Revision ID: admin_0002
Revises: admin_0001
"""

from __future__ import annotations

from collections.abc import Sequence

from transom.db.migrations.operations import microsecond_datetimes

revision: str = "admin_0002"
down_revision: str | None = "admin_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    microsecond_datetimes("transom_admin_log", [("action_time", False, False)])


def downgrade() -> None:
    microsecond_datetimes("transom_admin_log", [("action_time", False, False)], downgrade=True)
