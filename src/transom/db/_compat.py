"""The one place Transom reads a SQLAlchemy attribute that is not public API.

SQLAlchemy 2.0 and 2.1 offer no public way to read back a ``Select``'s ``ORDER BY`` terms
(``order_by()`` only adds; the terms live in ``Select._order_by_clauses``). Keyset
pagination (:func:`transom.db.pagination.paginate_cursor`) needs them: the ``ORDER BY`` is the
cursor's key. So they are read here, and only here; ``tests/db/test_compat.py`` checks the
read on every supported SQLAlchemy (CI runs the lowest and the latest), and a release that
renames the attribute fails that test instead of paginating wrongly.

Nothing else in :mod:`transom.db` touches SQLAlchemy's private names.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select
from sqlalchemy.sql import ColumnElement

__all__ = ["order_by_clauses"]


def order_by_clauses(stmt: Select[Any]) -> tuple[ColumnElement[Any], ...]:
    """The ``ORDER BY`` terms of ``stmt``, in order (``()`` when it has none)."""
    clauses: tuple[ColumnElement[Any], ...] = tuple(stmt._order_by_clauses)
    return clauses
