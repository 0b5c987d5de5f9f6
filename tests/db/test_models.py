"""Model-building conventions of :mod:`transom.db.models`: foreign-key indexes on every table
of a Transom metadata, and one class name per registry."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, ForeignKey, Integer, Table, create_engine, inspect
from sqlalchemy.orm import Mapped, mapped_column

from transom.db import make_base
from transom.exceptions import ImproperlyConfigured


def test_plain_association_table_gets_foreign_key_indexes() -> None:
    base = make_base()

    class Book(base):  # type: ignore[misc,valid-type]
        id: Mapped[int] = mapped_column(primary_key=True)

    class Tag(base):  # type: ignore[misc,valid-type]
        id: Mapped[int] = mapped_column(primary_key=True)

    book_tags = Table(
        "book_tags",
        base.metadata,
        Column("book_id", ForeignKey("book.id"), primary_key=True),
        Column("tag_id", ForeignKey("tag.id"), primary_key=True),
    )
    # Like a model's: each foreign key has an index of its own (the primary key only starts
    # with book_id, which doesn't count).
    assert {i.name for i in book_tags.indexes} == {"ix_book_tags_book_id", "ix_book_tags_tag_id"}
    engine = create_engine("sqlite://")
    base.metadata.create_all(engine)
    created = {i["name"] for i in inspect(engine).get_indexes("book_tags")}
    assert created == {"ix_book_tags_book_id", "ix_book_tags_tag_id"}


def test_model_can_still_opt_out_of_foreign_key_indexes() -> None:
    base = make_base()

    class Owner(base):  # type: ignore[misc,valid-type]
        id: Mapped[int] = mapped_column(primary_key=True)

    class Pet(base):  # type: ignore[misc,valid-type]
        __index_foreign_keys__ = False
        id: Mapped[int] = mapped_column(primary_key=True)
        owner_id: Mapped[int] = mapped_column(ForeignKey("owner.id"))

    class Toy(base):  # type: ignore[misc,valid-type]
        id: Mapped[int] = mapped_column(primary_key=True)
        owner_id: Mapped[int] = mapped_column(ForeignKey("owner.id"))

    assert Pet.__table__.indexes == set()
    assert {i.name for i in Toy.__table__.indexes} == {"ix_toy_owner_id"}


def test_two_models_with_one_name_in_a_registry_are_refused() -> None:
    base = make_base()

    class User(base):  # type: ignore[misc,valid-type]
        __module__ = "shop.models"
        __tablename__ = "account"
        # Not annotated: a string annotation would be resolved in the (fake) module.
        id = mapped_column(Integer, primary_key=True)

    with pytest.raises(ImproperlyConfigured) as caught:

        class User(base):  # type: ignore[misc,valid-type,no-redef]
            __module__ = "blog.models"
            __tablename__ = "member"
            id = mapped_column(Integer, primary_key=True)

    message = str(caught.value)
    assert "shop.models.User" in message
    assert "blog.models.User" in message
    # The refused class was not mapped: the first one still resolves alone.
    assert [m.class_.__module__ for m in base.registry.mappers] == ["shop.models"]
    assert "member" not in base.metadata.tables
