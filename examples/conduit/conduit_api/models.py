"""Conduit's tables: users (the auth battery's user model), follows, articles, tags, favourites
and comments. `transom db makemigrations` wrote migrations/ from these classes."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, ForeignKey, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from transom.auth import AbstractUser
from transom.db import Model, UTCDateTime

#: Who follows whom: (follower, followed), one row per follow.
follows = Table(
    "conduit_follow",
    Model.metadata,
    Column(
        "follower_id", Integer, ForeignKey("conduit_user.id", ondelete="CASCADE"), primary_key=True
    ),
    Column(
        "followed_id", Integer, ForeignKey("conduit_user.id", ondelete="CASCADE"), primary_key=True
    ),
)

#: Favourites: (user, article).
favorites = Table(
    "conduit_favorite",
    Model.metadata,
    Column("user_id", Integer, ForeignKey("conduit_user.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "article_id",
        Integer,
        ForeignKey("conduit_article.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
)

#: An article's tags.
article_tags = Table(
    "conduit_article_tag",
    Model.metadata,
    Column(
        "article_id",
        Integer,
        ForeignKey("conduit_article.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "tag_id",
        Integer,
        ForeignKey("conduit_tag.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
)


class User(AbstractUser, Model):
    """A Conduit user: the auth battery's columns (hashed password, flags) plus a profile.

    People log in with their email (``USERNAME_FIELD``), so it is unique; so is the username,
    which names the profile (``/api/profiles/{username}``).
    """

    __tablename__ = "conduit_user"
    USERNAME_FIELD = "email"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    bio: Mapped[str] = mapped_column(Text, default="")
    image: Mapped[str] = mapped_column(String(1000), default="")


class Tag(Model):
    __tablename__ = "conduit_tag"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)


class Article(Model):
    __tablename__ = "conduit_article"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(255), unique=True)
    title: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int] = mapped_column(
        ForeignKey("conduit_user.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime(), default=lambda: dt.datetime.now(dt.UTC), index=True
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime(), default=lambda: dt.datetime.now(dt.UTC)
    )

    # Never loaded lazily: the queries say what they load (no N+1 on the list).
    author: Mapped[User] = relationship(lazy="raise")
    tags: Mapped[list[Tag]] = relationship(secondary=article_tags, lazy="raise")


class Comment(Model):
    __tablename__ = "conduit_comment"

    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(Text)
    article_id: Mapped[int] = mapped_column(
        ForeignKey("conduit_article.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[int] = mapped_column(
        ForeignKey("conduit_user.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime(), default=lambda: dt.datetime.now(dt.UTC)
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime(), default=lambda: dt.datetime.now(dt.UTC)
    )

    author: Mapped[User] = relationship(lazy="raise")
