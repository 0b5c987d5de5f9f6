"""The built-in user model, ``transom_auth_user``.

A module of its own so that importing the auth battery does not map it: a project that
replaces it (``AuthConfig(user_model=Account)``) never imports this module, and so gets neither
a second ``User`` class in the registry nor the built-in user's tables.
"""

from __future__ import annotations

from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from transom.auth.models import AbstractUser, PermissionsMixin
from transom.db import Model

__all__ = ["User"]


class User(AbstractUser, PermissionsMixin, Model):
    """The built-in user. Extend it with a subclass that adds columns (same table)::

    class Member(User):
        bio: Mapped[str | None] = mapped_column(default=None)
    """

    __app_label__ = "auth"

    @declared_attr.directive
    @classmethod
    def __tablename__(cls) -> str | None:
        # A subclass adds its columns to this table (single-table inheritance), no new table.
        inherited = any("__table__" in vars(base) for base in cls.__mro__[1:])
        return None if inherited else "transom_auth_user"

    id: Mapped[int] = mapped_column(primary_key=True)
