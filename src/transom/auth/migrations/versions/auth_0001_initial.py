"""The auth battery's tables: users, groups, permissions, API and refresh tokens.

The built-in user's tables only when the project uses it (not its own ``user_model``).

Revision ID: auth_0001
Branch: auth (applied with the project's migrations by ``transom db migrate``)
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import transom.db.types
from transom.auth.migrations import builtin_user_in_use

revision: str = "auth_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("auth",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "transom_auth_api_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            transom.db.types.UTCDateTime(),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column("last_used_at", transom.db.types.UTCDateTime(), nullable=True),
        sa.Column("expires_at", transom.db.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transom_auth_api_token")),
        sa.UniqueConstraint("prefix", name=op.f("uq_transom_auth_api_token_prefix")),
    )
    op.create_index(
        op.f("ix_transom_auth_api_token_user_id"),
        "transom_auth_api_token",
        ["user_id"],
        unique=False,
    )
    op.create_table(
        "transom_auth_group",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=150), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transom_auth_group")),
        sa.UniqueConstraint("name", name=op.f("uq_transom_auth_group_name")),
    )
    op.create_table(
        "transom_auth_permission",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("codename", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transom_auth_permission")),
        sa.UniqueConstraint("codename", name=op.f("uq_transom_auth_permission_codename")),
    )
    op.create_table(
        "transom_auth_refresh_token",
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("family", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.Column("used", sa.Boolean(), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_transom_auth_refresh_token")),
    )
    op.create_index(
        op.f("ix_transom_auth_refresh_token_family"),
        "transom_auth_refresh_token",
        ["family"],
        unique=False,
    )
    op.create_index(
        op.f("ix_transom_auth_refresh_token_user_id"),
        "transom_auth_refresh_token",
        ["user_id"],
        unique=False,
    )
    op.create_table(
        "transom_auth_revoked_token",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transom_auth_revoked_token")),
    )
    op.create_index(
        op.f("ix_transom_auth_revoked_token_expires_at"),
        "transom_auth_revoked_token",
        ["expires_at"],
        unique=False,
    )
    op.create_table(
        "transom_auth_social_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=50), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transom_auth_social_account")),
        sa.UniqueConstraint(
            "provider", "subject", name=op.f("uq_transom_auth_social_account_provider_subject")
        ),
    )
    op.create_index(
        op.f("ix_transom_auth_social_account_user_id"),
        "transom_auth_social_account",
        ["user_id"],
        unique=False,
    )
    op.create_table(
        "transom_auth_group_permissions",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("permission_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["transom_auth_group.id"],
            name=op.f("fk_transom_auth_group_permissions_group_id_transom_auth_group"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["permission_id"],
            ["transom_auth_permission.id"],
            name=op.f("fk_transom_auth_group_permissions_permission_id_transom_auth_permission"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "group_id", "permission_id", name=op.f("pk_transom_auth_group_permissions")
        ),
    )
    if not builtin_user_in_use():
        return  # the project's own user model: its migrations create its tables
    op.create_table(
        "transom_auth_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=150), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password", sa.String(length=255), nullable=False),
        sa.Column("first_name", sa.String(length=150), nullable=False),
        sa.Column("last_name", sa.String(length=150), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("is_staff", sa.Boolean(), nullable=False),
        sa.Column("is_superuser", sa.Boolean(), nullable=False),
        sa.Column("email_verified", sa.Boolean(), nullable=False),
        sa.Column("last_login", transom.db.types.UTCDateTime(), nullable=True),
        sa.Column(
            "date_joined",
            transom.db.types.UTCDateTime(),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transom_auth_user")),
        sa.UniqueConstraint("username", name=op.f("uq_transom_auth_user_username")),
    )
    op.create_index(
        op.f("ix_transom_auth_user_email"), "transom_auth_user", ["email"], unique=False
    )
    op.create_table(
        "transom_auth_user_groups",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["transom_auth_group.id"],
            name=op.f("fk_transom_auth_user_groups_group_id_transom_auth_group"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["transom_auth_user.id"],
            name=op.f("fk_transom_auth_user_groups_user_id_transom_auth_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "group_id", name=op.f("pk_transom_auth_user_groups")),
    )
    op.create_table(
        "transom_auth_user_permissions",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("permission_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["permission_id"],
            ["transom_auth_permission.id"],
            name=op.f("fk_transom_auth_user_permissions_permission_id_transom_auth_permission"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["transom_auth_user.id"],
            name=op.f("fk_transom_auth_user_permissions_user_id_transom_auth_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "user_id", "permission_id", name=op.f("pk_transom_auth_user_permissions")
        ),
    )


def downgrade() -> None:
    if builtin_user_in_use():
        op.drop_table("transom_auth_user_permissions")
        op.drop_table("transom_auth_user_groups")
        op.drop_index(op.f("ix_transom_auth_user_email"), table_name="transom_auth_user")
        op.drop_table("transom_auth_user")
    op.drop_table("transom_auth_group_permissions")
    op.drop_index(
        op.f("ix_transom_auth_social_account_user_id"), table_name="transom_auth_social_account"
    )
    op.drop_table("transom_auth_social_account")
    op.drop_index(
        op.f("ix_transom_auth_revoked_token_expires_at"), table_name="transom_auth_revoked_token"
    )
    op.drop_table("transom_auth_revoked_token")
    op.drop_index(
        op.f("ix_transom_auth_refresh_token_user_id"), table_name="transom_auth_refresh_token"
    )
    op.drop_index(
        op.f("ix_transom_auth_refresh_token_family"), table_name="transom_auth_refresh_token"
    )
    op.drop_table("transom_auth_refresh_token")
    op.drop_table("transom_auth_permission")
    op.drop_table("transom_auth_group")
    op.drop_index(op.f("ix_transom_auth_api_token_user_id"), table_name="transom_auth_api_token")
    op.drop_table("transom_auth_api_token")
