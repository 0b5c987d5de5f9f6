"""Models the admin tests manage: users with permissions, authors, articles, tags."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import os
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, ForeignKey, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from transom.db import make_base

Base = make_base(name="AdminTestBase")


def hash_password(raw: str, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(8)
    digest = hashlib.pbkdf2_hmac("sha256", raw.encode(), salt, 1000)
    return f"{salt.hex()}${digest.hex()}"


user_group = Table(
    "adm_user_group",
    Base.metadata,
    Column("user_id", ForeignKey("adm_user.id", ondelete="CASCADE"), primary_key=True),
    Column("group_id", ForeignKey("adm_group.id", ondelete="CASCADE"), primary_key=True),
)


class Group(Base):  # type: ignore[misc,valid-type]
    __tablename__ = "adm_group"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(150), unique=True)
    perms: Mapped[list[Any]] = mapped_column(default=list)

    def __str__(self) -> str:
        return self.name


class User(Base):  # type: ignore[misc,valid-type]
    __tablename__ = "adm_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    email: Mapped[str] = mapped_column(String(200), default="")
    password: Mapped[str] = mapped_column(String(200), default="")
    is_active: Mapped[bool] = mapped_column(default=True)
    is_staff: Mapped[bool] = mapped_column(default=False)
    is_superuser: Mapped[bool] = mapped_column(default=False)
    perms: Mapped[list[Any]] = mapped_column(default=list)
    groups: Mapped[list[Group]] = relationship(secondary=user_group, lazy="selectin")

    def __str__(self) -> str:
        return self.username

    def set_password(self, raw: str) -> None:
        self.password = hash_password(raw)

    def check_password(self, raw: str) -> bool:
        salt, _, _ = self.password.partition("$")
        if not salt:
            return False
        return hmac.compare_digest(hash_password(raw, bytes.fromhex(salt)), self.password)

    def has_perm(self, codename: str) -> bool:
        if codename in (self.perms or []):
            return True
        return any(codename in (group.perms or []) for group in self.groups)


class Status(enum.Enum):
    DRAFT = "draft"
    PUBLISHED = "published"


class Author(Base):  # type: ignore[misc,valid-type]
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(200), unique=True)
    active: Mapped[bool] = mapped_column(default=True)
    articles: Mapped[list[Article]] = relationship(back_populates="author")

    def __str__(self) -> str:
        return self.name


article_tag = Table(
    "article_tag",
    Base.metadata,
    Column("article_id", ForeignKey("article.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tag.id", ondelete="CASCADE"), primary_key=True),
)


class Tag(Base):  # type: ignore[misc,valid-type]
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)

    def __str__(self) -> str:
        return self.name


class Article(Base):  # type: ignore[misc,valid-type]
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text(), default="")
    status: Mapped[Status] = mapped_column(default=Status.DRAFT)
    views: Mapped[int] = mapped_column(default=0)
    price: Mapped[Decimal | None] = mapped_column(default=None)
    published_on: Mapped[dt.date | None] = mapped_column(default=None)
    extra: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    author_id: Mapped[int] = mapped_column(ForeignKey("author.id"))
    author: Mapped[Author] = relationship(back_populates="articles")
    tags: Mapped[list[Tag]] = relationship(secondary=article_tag)
    comments: Mapped[list[Comment]] = relationship(
        back_populates="article", cascade="all, delete-orphan"
    )

    def __str__(self) -> str:
        return self.title


class Comment(Base):  # type: ignore[misc,valid-type]
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(String(500))
    posted_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    article_id: Mapped[int] = mapped_column(ForeignKey("article.id"))
    article: Mapped[Article] = relationship(back_populates="comments")


class Badge(Base):  # type: ignore[misc,valid-type]
    """A model with a SQLAlchemy validator: the admin applies it (tests/admin/test_integrity)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20))

    @validates("code")
    def _lowercase(self, key: str, value: str) -> str:
        if value != value.lower():
            raise ValueError("Use lowercase letters only.")
        return value
