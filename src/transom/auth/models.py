"""The auth tables: users, groups, permissions, API tokens, refresh tokens, revocations.

Every table is named ``transom_auth_*`` and created by the battery's own migrations. Tables
that point at "a user" (tokens, social accounts) store the user's primary key as text without
a foreign key, so they work unchanged with a project's own user model.

The built-in :class:`User` is mapped only when something imports it (``from transom.auth
import User``, or ``AuthConfig()`` without a ``user_model``): a project with its own user
model (Django's ``AUTH_USER_MODEL``) gets neither its class in the registry nor its tables.
"""

from __future__ import annotations

import datetime as dt
import warnings
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import (
    Boolean,
    Column,
    Double,
    ForeignKey,
    Integer,
    String,
    Table,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship

from transom._concurrency import run_sync
from transom.auth import hashers as _hashing
from transom.auth.hashers import PasswordHashers, current_hashers, make_unusable_password
from transom.db import Model, UTCDateTime, utcnow

if TYPE_CHECKING:
    from transom.auth.user import User
    from transom.db import DbSession

__all__ = [
    "APIToken",
    "AbstractUser",
    "Group",
    "Permission",
    "PermissionsMixin",
    "RefreshToken",
    "RevokedToken",
    "SocialAccount",
    "User",
    "auth_tables",
    "get_hashers",
    "set_hashers",
]


def get_hashers() -> PasswordHashers:
    """The password hashers in effect here (:func:`~transom.auth.hashers.current_hashers`):
    the app's inside its requests, the defaults elsewhere."""
    return current_hashers()


def set_hashers(hashers: PasswordHashers) -> None:
    """Deprecated: hashers are per app now (``AuthConfig(hashers=...)``).

    Sets the hashers used *outside* any app (no request, no ``with auth.activate():``), in
    the whole process, as before; apps keep their own.
    """
    warnings.warn(
        "set_hashers() is deprecated: hashers belong to an app, "
        "app.install(Auth(AuthConfig(hashers=...))); outside a request use "
        "`with Auth.of(app).activate():`",
        DeprecationWarning,
        stacklevel=2,
    )
    _hashing._fallback[:] = [hashers]


class Permission(Model):
    """A permission codename such as ``"blog.change_article"``."""

    __tablename__ = "transom_auth_permission"
    __app_label__ = "auth"

    id: Mapped[int] = mapped_column(primary_key=True)
    codename: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(255), default="")

    def __str__(self) -> str:
        return self.codename


group_permissions = Table(
    "transom_auth_group_permissions",
    Model.metadata,
    Column(
        "group_id",
        Integer,
        ForeignKey("transom_auth_group.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "permission_id",
        Integer,
        ForeignKey("transom_auth_permission.id", ondelete="CASCADE"),
        primary_key=True,
    ),
)


class Group(Model):
    """A named set of permissions; users in the group hold them all."""

    __tablename__ = "transom_auth_group"
    __app_label__ = "auth"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(150), unique=True)
    permissions: Mapped[list[Permission]] = relationship(
        secondary=group_permissions, lazy="selectin"
    )

    def __str__(self) -> str:
        return self.name


def _link_table(user_table: str, kind: str, target: str, target_col: str) -> Table:
    name = f"{user_table}_{kind}"
    existing = Model.metadata.tables.get(name)
    if existing is not None:
        return existing
    return Table(
        name,
        Model.metadata,
        Column(
            "user_id",
            Integer,
            ForeignKey(f"{user_table}.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        Column(
            target_col,
            Integer,
            ForeignKey(f"{target}.id", ondelete="CASCADE"),
            primary_key=True,
        ),
    )


class PermissionsMixin:
    """Groups and direct permissions for a user model (integer primary key ``id``).

    Creates ``<user table>_groups`` and ``<user table>_permissions`` link tables.
    """

    __tablename__: ClassVar[Any]

    @declared_attr
    def groups(cls) -> Mapped[list[Group]]:
        table = _link_table(str(cls.__tablename__), "groups", "transom_auth_group", "group_id")
        return relationship(Group, secondary=table, lazy="selectin")

    @declared_attr
    def user_permissions(cls) -> Mapped[list[Permission]]:
        table = _link_table(
            str(cls.__tablename__), "permissions", "transom_auth_permission", "permission_id"
        )
        return relationship(Permission, secondary=table, lazy="selectin")


class AbstractUser:
    """Columns and behaviour of a user; mix into your own model to replace :class:`User`.

    Pass that model as ``AuthConfig(user_model=...)``. To log in by email, make the email
    column unique and name it the :attr:`USERNAME_FIELD` (see "Your own user model" in
    ``docs/auth.md``).

    Example:
        >>> class Member(AbstractUser, PermissionsMixin, Model):  # doctest: +SKIP
        ...     __tablename__ = "member"
        ...     id: Mapped[int] = mapped_column(primary_key=True)
    """

    #: The attribute people log in with.
    USERNAME_FIELD: ClassVar[str] = "username"
    #: The attribute holding the email address.
    EMAIL_FIELD: ClassVar[str] = "email"
    #: The attribute holding the password hash (the admin hides it).
    PASSWORD_FIELD: ClassVar[str] = "password"

    username: Mapped[str] = mapped_column(String(150), unique=True)
    email: Mapped[str] = mapped_column(String(254), default="", index=True)
    password: Mapped[str] = mapped_column(String(255), default=make_unusable_password)
    first_name: Mapped[str] = mapped_column(String(150), default="")
    last_name: Mapped[str] = mapped_column(String(150), default="")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_staff: Mapped[bool] = mapped_column(Boolean, default=False)
    is_superuser: Mapped[bool] = mapped_column(Boolean, default=False)
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    last_login: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    date_joined: Mapped[dt.datetime] = mapped_column(
        UTCDateTime(), default=utcnow, server_default=func.now()
    )

    #: Always True for a user object (the anonymous user is ``None``).
    is_authenticated: ClassVar[bool] = True

    def set_password(self, raw: str | None, *, hashers: PasswordHashers | None = None) -> None:
        """Hash ``raw`` (argon2id) into the password column; ``None`` makes it unusable.

        ``hashers`` default to the app's (:func:`~transom.auth.hashers.current_hashers`:
        set for each request, or with ``with Auth.of(app).activate():`` in scripts).
        """
        if raw is None:
            self.password = make_unusable_password()
        else:
            self.password = (hashers or current_hashers()).hash(raw)

    def check_password(self, raw: str, *, hashers: PasswordHashers | None = None) -> bool:
        """Whether ``raw`` is the password; upgrades an outdated hash in place when it is.

        This blocks for the hasher's duration (tens of ms): prefer :meth:`acheck_password` in
        async code. ``hashers`` as for :meth:`set_password`.
        """
        hashers = hashers or current_hashers()
        result = hashers.verify(raw, self.password)
        if result.valid and result.needs_rehash:
            self.set_password(raw, hashers=hashers)
        return result.valid

    async def acheck_password(self, raw: str) -> bool:
        """:meth:`check_password` in a worker thread, so the event loop keeps serving."""
        return await run_sync(self.check_password, raw)

    async def aset_password(self, raw: str | None) -> None:
        """:meth:`set_password` in a worker thread."""
        await run_sync(self.set_password, raw)

    async def has_perm(self, perm: str, db: DbSession, obj: Any | None = None) -> bool:
        """Whether this user holds ``perm`` (for ``obj`` when given; see the object rules)."""
        from transom.auth.permissions import user_has_perm

        return await user_has_perm(self, perm, db, obj)

    async def get_all_permissions(self, db: DbSession) -> set[str]:
        """Every codename held directly or through groups (all of them for superusers)."""
        from transom.auth.permissions import user_permissions

        return await user_permissions(self, db)

    def get_username(self) -> str:
        return str(getattr(self, self.USERNAME_FIELD))

    def __str__(self) -> str:
        return self.get_username()


class APIToken(Model):
    """A long-lived API token; only a SHA-256 digest of it is stored."""

    __tablename__ = "transom_auth_api_token"
    __app_label__ = "auth"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime(), default=utcnow, server_default=func.now()
    )
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)


class RefreshToken(Model):
    """A JWT refresh token by its ``jti``: used once, then replaced (rotation) in its family."""

    __tablename__ = "transom_auth_refresh_token"
    __app_label__ = "auth"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    family: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    expires_at: Mapped[float] = mapped_column(Double)
    used: Mapped[bool] = mapped_column(Boolean, default=False)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class RevokedToken(Model):
    """Ended logins (a signed-cookie session id, an access-token ``jti``) until they expire."""

    __tablename__ = "transom_auth_revoked_token"
    __app_label__ = "auth"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[float] = mapped_column(Double, index=True)


class SocialAccount(Model):
    """A login at an OAuth2/OIDC provider linked to a local user."""

    __tablename__ = "transom_auth_social_account"
    __app_label__ = "auth"
    __table_args__ = (UniqueConstraint("provider", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(50))
    subject: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    email: Mapped[str] = mapped_column(String(254), default="")


def auth_tables() -> list[Table]:
    """The battery's tables (for ``create_all(tables=...)`` in tests and scripts).

    The built-in user's tables are among them once it is in use (imported); a project's own
    user model's tables (``account``, ``account_groups``...) are the project's.
    """
    return [t for name, t in Model.metadata.tables.items() if name.startswith("transom_auth_")]


def __getattr__(name: str) -> Any:
    # The built-in user is mapped on first use only (see the module docstring).
    if name == "User":
        from transom.auth.user import User

        return User
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
