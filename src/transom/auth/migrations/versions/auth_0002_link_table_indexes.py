"""An index on each foreign key of the link tables (group and user permissions, user groups).

Plain ``Table``s on the models' metadata now get foreign-key indexes like models do.

Revision ID: auth_0002
Revises: auth_0001
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from transom.auth.migrations import builtin_user_in_use

revision: str = "auth_0002"
down_revision: str | None = "auth_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, the table its foreign key points at)
_GROUP_LINKS = [
    ("transom_auth_group_permissions", "group_id", "transom_auth_group"),
    ("transom_auth_group_permissions", "permission_id", "transom_auth_permission"),
]
_USER_LINKS = [
    ("transom_auth_user_groups", "user_id", "transom_auth_user"),
    ("transom_auth_user_groups", "group_id", "transom_auth_group"),
    ("transom_auth_user_permissions", "user_id", "transom_auth_user"),
    ("transom_auth_user_permissions", "permission_id", "transom_auth_permission"),
]


def _links() -> list[tuple[str, str, str]]:
    return _GROUP_LINKS + (_USER_LINKS if builtin_user_in_use() else [])


def upgrade() -> None:
    for table, column, _target in _links():
        op.create_index(op.f(f"ix_{table}_{column}"), table, [column], unique=False)


def downgrade() -> None:
    mysql = op.get_context().dialect.name in ("mysql", "mariadb")
    for table, column, target in reversed(_links()):
        # MySQL/MariaDB let the foreign key adopt the new index (and dropped the one they had
        # made for it), then refuse to drop it (error 1553): drop the key around it, and its
        # re-creation makes their own index again. The second column of the primary key is the
        # one affected; the first is served by the primary key.
        second = column != "user_id" and not (
            table.endswith("group_permissions") and column == "group_id"
        )
        if mysql and second:
            fk = op.f(f"fk_{table}_{column}_{target}")
            op.drop_constraint(fk, table, type_="foreignkey")
            op.drop_index(op.f(f"ix_{table}_{column}"), table_name=table)
            op.create_foreign_key(fk, table, target, [column], ["id"], ondelete="CASCADE")
        else:
            op.drop_index(op.f(f"ix_{table}_{column}"), table_name=table)
