"""Models of the REST tests: stories written by users, with labels (many-to-many)."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Column, ForeignKey, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from transom.auth.user import User
from transom.db import Model, UTCDateTime


class Status(enum.Enum):
    draft = "draft"
    published = "published"


story_labels = Table(
    "rest_story_label",
    Model.metadata,
    Column("story_id", ForeignKey("rest_story.id", ondelete="CASCADE"), primary_key=True),
    Column("label_id", ForeignKey("rest_label.id", ondelete="CASCADE"), primary_key=True),
)


class Label(Model):
    __tablename__ = "rest_label"
    __app_label__ = "news"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)


class Story(Model):
    __tablename__ = "rest_story"
    __app_label__ = "news"
    __permissions__ = [("publish_story", "Can publish stories")]

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[Status] = mapped_column(default=Status.draft)
    score: Mapped[int] = mapped_column(default=0)
    published_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime(), default=lambda: dt.datetime.now(dt.UTC)
    )
    author_id: Mapped[int] = mapped_column(ForeignKey("transom_auth_user.id"))
    author: Mapped[User] = relationship()
    labels: Mapped[list[Label]] = relationship(secondary=story_labels)


class Reaction(Model):
    """A reaction to a story, maybe with a label: a required and a nullable many-to-one."""

    __tablename__ = "rest_reaction"
    __app_label__ = "news"

    id: Mapped[int] = mapped_column(primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("rest_story.id", ondelete="CASCADE"))
    story: Mapped[Story] = relationship()
    label_id: Mapped[int | None] = mapped_column(ForeignKey("rest_label.id"))
    label: Mapped[Label | None] = relationship()
