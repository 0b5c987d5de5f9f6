"""Model conventions and column types behave the same on every engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import ForeignKey, select
from sqlalchemy.orm import Mapped, mapped_column

from transom.db import Database, Model, make_base

from .models import Author, Post

pytestmark = pytest.mark.anyio


async def test_datetimes_come_back_aware_utc(database: Database) -> None:
    paris = timezone(timedelta(hours=2))
    async with database.session() as s:
        author = await s.save(Author(email="t@x", name="T"))
        s.add(
            Post(
                slug="t",
                title="T",
                author_id=author.id,
                published_at=datetime(2024, 6, 1, 14, 0, tzinfo=paris),
            )
        )
        await s.commit()
    async with database.session() as s:
        post = (await s.scalars(select(Post))).one()
        assert post.published_at == datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
        assert post.published_at is not None
        assert post.published_at.tzinfo is not None
        # Server-side now() is UTC too (MariaDB sessions are set to UTC).
        assert abs(post.created_at - datetime.now(UTC)) < timedelta(minutes=5)
        # Filtering with an aware value works on naive-storage engines.
        since = datetime(2024, 6, 1, 13, 0, tzinfo=paris)
        assert (await s.scalars(select(Post).where(Post.published_at >= since))).one() is post


def test_table_names_and_constraint_names() -> None:
    base = make_base()

    class BlogPost(base):  # type: ignore[misc,valid-type]
        id: Mapped[int] = mapped_column(primary_key=True)
        slug: Mapped[str] = mapped_column(unique=True)

    class HTTPLogEntry(base):  # type: ignore[misc,valid-type]
        id: Mapped[int] = mapped_column(primary_key=True)
        post_id: Mapped[int] = mapped_column(ForeignKey("blog_post.id"))

    assert BlogPost.__tablename__ == "blog_post"
    assert HTTPLogEntry.__tablename__ == "http_log_entry"
    table = HTTPLogEntry.__table__
    assert {c.name for c in table.constraints} == {
        "pk_http_log_entry",
        "fk_http_log_entry_post_id_blog_post",
    }
    assert {i.name for i in table.indexes} == {"ix_http_log_entry_post_id"}  # FK gets an index
    assert BlogPost.__table__.c.slug.type.length == 255
    assert Model.metadata.naming_convention["uq"] == "uq_%(table_name)s_%(column_0_N_name)s"


def test_single_table_inheritance_gets_no_table() -> None:
    base = make_base()

    class Animal(base):  # type: ignore[misc,valid-type]
        id: Mapped[int] = mapped_column(primary_key=True)
        kind: Mapped[str]
        __mapper_args__ = {"polymorphic_on": "kind", "polymorphic_identity": "animal"}

    class Dog(Animal):
        __mapper_args__ = {"polymorphic_identity": "dog"}

    assert Dog.__table__ is Animal.__table__


async def test_timestamps_keep_microseconds_on_every_engine(database: Database) -> None:
    # SQLite's CURRENT_TIMESTAMP and MariaDB's NOW() on a plain DATETIME have whole seconds:
    # the ORM sets TimestampMixin's values (to the microsecond) and MariaDB stores DATETIME(6).
    # A value cut to the second would come back earlier than `before`.
    moment = datetime(2024, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)
    before = datetime.now(UTC)
    async with database.session() as s:
        author = await s.save(Author(email="m@x", name="M"))
        s.add(Post(slug="m", title="M", author_id=author.id, published_at=moment))
        await s.commit()
    async with database.session() as s:
        post = (await s.scalars(select(Post).where(Post.slug == "m"))).one()
        assert post.published_at == moment  # a value the app gave, stored exactly
        assert before <= post.created_at <= datetime.now(UTC)
        assert before <= post.updated_at
        edited = datetime.now(UTC)
        post.title = "M2"
        await s.commit()
    async with database.session() as s:
        post = (await s.scalars(select(Post).where(Post.slug == "m"))).one()
        assert post.updated_at >= edited
        assert post.created_at < edited
