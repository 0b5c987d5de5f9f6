"""Column types that behave the same on every engine Transom supports."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import DateTime, TypeDecorator, TypeEngine

__all__ = ["UTCDateTime", "utcnow"]

# These engines have no time-zone-aware timestamp type: they store naive values, so Transom
# stores naive UTC there (connections are set to UTC) and re-attaches the zone on the way out.
_NAIVE_DIALECTS = frozenset({"sqlite", "mysql", "mariadb"})


def utcnow() -> datetime:
    """The current time, aware UTC, to the microsecond: the ``default=`` of Transom's timestamps.

    The column's ``server_default`` stays for rows written with raw SQL, but the database's
    clock has whole seconds on SQLite (``CURRENT_TIMESTAMP``) and on MariaDB (``NOW()``), while
    PostgreSQL's has microseconds: setting the value in Python keeps the same precision on all
    three (as Django's ``auto_now_add`` does).
    """
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always returned as an aware UTC ``datetime``, to the microsecond.

    ``Mapped[datetime]`` on :class:`~transom.db.Model` uses it. Naive values given to it are
    taken to be UTC already. On MySQL/MariaDB the column is ``DATETIME(6)``: a plain
    ``DATETIME`` there would drop the microseconds that PostgreSQL and SQLite keep.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        if dialect.name in _NAIVE_DIALECTS:
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite may hand back text for server-side defaults
            value = datetime.fromisoformat(value)
        moment: datetime = value
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)

    def __repr__(self) -> str:
        # Alembic renders user types with repr(); keep it importable and argument-free.
        return "UTCDateTime()"
