"""Operations for migration scripts that Alembic has no single call for."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

__all__ = ["microsecond_datetimes", "sqlite_autoincrement"]


def microsecond_datetimes(
    table: str, columns: Iterable[tuple[str, bool, bool]], *, downgrade: bool = False
) -> None:
    """Make ``table``'s timestamp ``columns`` keep microseconds on MySQL/MariaDB.

    :class:`~transom.db.UTCDateTime` is ``DATETIME(6)`` there since Transom 0.2 (a plain
    ``DATETIME`` drops the fraction PostgreSQL and SQLite keep). Tables created before need
    this ``ALTER``; on other engines it does nothing. Call it from ``upgrade()`` (and with
    ``downgrade=True`` from ``downgrade()``).

    Args:
        table: The table's name.
        columns: ``(name, nullable, has_now_default)`` for each column: MariaDB's ``MODIFY``
            restates the whole column, so its nullability and ``CURRENT_TIMESTAMP`` default
            must be given again.
        downgrade: Back to whole-second ``DATETIME``.
    """
    if op.get_context().dialect.name not in ("mysql", "mariadb"):
        return
    new, old = mysql.DATETIME(fsp=6), mysql.DATETIME()
    if downgrade:
        new, old = old, new
    for name, nullable, now_default in columns:
        default = sa.text("CURRENT_TIMESTAMP") if now_default else None
        op.alter_column(
            table,
            name,
            type_=new,
            existing_type=old,
            existing_nullable=nullable,
            existing_server_default=default,
        )


def sqlite_autoincrement(table: str, *, downgrade: bool = False) -> None:
    """Rebuild SQLite ``table`` with ``AUTOINCREMENT``, so a deleted row's id is never reused.

    Models whose key is one generated integer get ``AUTOINCREMENT`` on SQLite since Transom
    0.2 (PostgreSQL sequences and MariaDB's ``AUTO_INCREMENT`` never go back; plain SQLite
    hands out ``max(id) + 1``). SQLite cannot add it to an existing table, so this copies the
    table into a new one through Alembic's batch mode (``recreate="always"``): the rows, their
    ids, the indexes, the unique constraints and the foreign keys are kept, and the next id
    continues after the highest one present. On other engines it does nothing. Call it from
    ``upgrade()`` (and with ``downgrade=True`` from ``downgrade()``).

    Run it through ``transom db migrate`` (or :class:`~transom.db.migrations.Migrations`),
    which turns SQLite's foreign-key enforcement off for migrations: with enforcement on,
    dropping the old copy of a table would cascade into the rows that point at it, so this
    refuses to run then.

    Args:
        table: The table's name.
        downgrade: Back to a table without ``AUTOINCREMENT``.

    Raises:
        RuntimeError: SQLite enforces foreign keys on the migration's connection.
    """
    context = op.get_context()
    if context.dialect.name != "sqlite":
        return
    bind = op.get_bind()
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError(
            f"rebuilding {table!r} with foreign keys enforced would cascade its deletion into "
            "the rows that point at it; run migrations with `transom db migrate`, which turns "
            "PRAGMA foreign_keys off for them"
        )
    before = set(bind.exec_driver_sql("PRAGMA foreign_key_check").fetchall())
    with op.batch_alter_table(
        table, recreate="always", table_kwargs={"sqlite_autoincrement": not downgrade}
    ):
        pass  # the rebuild itself is the change
    # What SQLite's own recipe for rebuilding a table ends with: every reference still holds
    # (rows that broke one before, which enforcement being off may have let in, are not ours).
    broken = set(bind.exec_driver_sql("PRAGMA foreign_key_check").fetchall()) - before
    if broken:
        raise RuntimeError(f"rebuilding {table!r} broke foreign keys: {sorted(broken)[:5]}")
