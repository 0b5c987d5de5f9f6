"""The admin battery's history table.

Revision ID: admin_0001
Branch: admin (applied with the project's migrations by ``transom db migrate``)
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import transom.db.types

revision: str = "admin_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("admin",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "transom_admin_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("action_time", transom.db.types.UTCDateTime(), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("user_repr", sa.String(length=200), nullable=False),
        sa.Column("model_key", sa.String(length=200), nullable=False),
        sa.Column("object_id", sa.String(length=200), nullable=False),
        sa.Column("object_repr", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transom_admin_log")),
    )
    with op.batch_alter_table("transom_admin_log", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_transom_admin_log_action_time"), ["action_time"], unique=False
        )
        batch_op.create_index(
            "ix_transom_admin_log_object", ["model_key", "object_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_transom_admin_log_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_table("transom_admin_log")
