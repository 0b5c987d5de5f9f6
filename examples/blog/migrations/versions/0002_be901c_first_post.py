"""first post

Revision ID: 0002_be901c
Revises: 0001_e3f9da
Create Date: 2026-11-24 11:57:47.040491
"""

import datetime
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_be901c"
down_revision: str | Sequence[str] | None = "0001_e3f9da"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# A data migration: it describes the table as it is at this point of history (not the model,
# which will change), and inserts the blog's first post.
post = sa.table(
    "post",
    sa.column("slug", sa.String),
    sa.column("title", sa.String),
    sa.column("body", sa.Text),
    sa.column("published", sa.Date),
)


def upgrade() -> None:
    op.bulk_insert(
        post,
        [
            {
                "slug": "hello-transom",
                "title": "Hello, Transom",
                "body": "A framework that grows with your app.",
                "published": datetime.date(2026, 11, 24),
            }
        ],
    )


def downgrade() -> None:
    op.execute(post.delete().where(post.c.slug == "hello-transom"))
