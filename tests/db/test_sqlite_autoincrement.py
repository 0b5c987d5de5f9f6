"""Models never hand a deleted row's id to a new row on SQLite (``AUTOINCREMENT``, as Django)."""

from __future__ import annotations

from alembic.autogenerate import render_python_code
from alembic.operations import ops
from sqlalchemy import ForeignKey, String, create_engine, insert, select
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.schema import CreateTable

from transom.db import make_base

Base = make_base(name="AutoincrementBase")


class Note(Base):  # type: ignore[misc,valid-type]
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(String(20))


class Coded(Base):  # type: ignore[misc,valid-type]
    code: Mapped[str] = mapped_column(String(10), primary_key=True)


class Detail(Base):  # type: ignore[misc,valid-type]
    # A key that is also a foreign key is not generated: SQLite's rule for AUTOINCREMENT too.
    note_id: Mapped[int] = mapped_column(ForeignKey("note.id"), primary_key=True)


class Reusing(Base):  # type: ignore[misc,valid-type]
    __table_args__ = {"sqlite_autoincrement": False}  # the model's own choice stays

    id: Mapped[int] = mapped_column(primary_key=True)


def ddl(model: type) -> str:
    return str(CreateTable(model.__table__).compile(create_engine("sqlite://")))  # type: ignore[attr-defined]


def test_only_generated_integer_keys_get_autoincrement() -> None:
    assert "PRIMARY KEY AUTOINCREMENT" in ddl(Note)
    assert "AUTOINCREMENT" not in ddl(Coded)
    assert "AUTOINCREMENT" not in ddl(Detail)
    assert "AUTOINCREMENT" not in ddl(Reusing)


def test_autogenerate_writes_it_into_the_migration() -> None:
    code = render_python_code(ops.UpgradeOps(ops=[ops.CreateTableOp.from_table(Note.__table__)]))
    assert "sqlite_autoincrement=True" in code
    assert "sqlite_autoincrement" not in render_python_code(
        ops.UpgradeOps(ops=[ops.CreateTableOp.from_table(Coded.__table__)])
    )


def test_a_deleted_rows_id_is_not_reused() -> None:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    table = Note.__table__
    with engine.begin() as conn:
        conn.execute(insert(table), [{"text": "a"}, {"text": "b"}])
        conn.execute(table.delete().where(table.c.id == 2))
        conn.execute(insert(table), [{"text": "c"}])
        ids = conn.execute(select(table.c.id).order_by(table.c.id)).scalars().all()
    assert ids == [1, 3]
