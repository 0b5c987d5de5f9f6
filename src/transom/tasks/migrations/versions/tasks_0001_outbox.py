"""The tasks battery's outbox: tasks written in the caller's transaction, relayed after it.

Revision ID: tasks_0001
Branch: tasks (applied with the project's migrations by ``transom db migrate``)
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import transom.db.types

revision: str = "tasks_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("tasks",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "transom_tasks_outbox",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("task", sa.String(length=255), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            transom.db.types.UTCDateTime(),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transom_tasks_outbox")),
    )
    op.create_index(
        op.f("ix_transom_tasks_outbox_created_at"),
        "transom_tasks_outbox",
        ["created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_transom_tasks_outbox_created_at"), table_name="transom_tasks_outbox")
    op.drop_table("transom_tasks_outbox")
