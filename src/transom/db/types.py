"""Column types that behave the same on every engine Transom supports."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.types import DateTime, TypeDecorator

__all__ = ["UTCDateTime"]

# These engines have no time-zone-aware timestamp type: they store naive values, so Transom
# stores naive UTC there (connections are set to UTC) and re-attaches the zone on the way out.
_NAIVE_DIALECTS = frozenset({"sqlite", "mysql", "mariadb"})


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always returned as an aware UTC ``datetime``.

    ``Mapped[datetime]`` on :class:`~transom.db.Model` uses it. Naive values given to it are
    taken to be UTC already.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

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
