"""Operations for migration scripts that Alembic has no single call for."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

__all__ = ["microsecond_datetimes"]


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
