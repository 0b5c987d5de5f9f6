"""The list page's queries: sorting, counting without ``COUNT(*)`` on big tables, paging.

Counting every row of a million-row table on every page load is what makes admin lists slow.
Here an unfiltered list first asks the database's statistics how big the table is (PostgreSQL
``pg_class.reltuples``, MariaDB/MySQL ``information_schema.tables.table_rows``, SQLite the
largest ``rowid``); above ``ModelAdmin.count_threshold`` that estimate is shown instead of an
exact count. A filtered or searched list counts at most ``count_threshold + 1`` matches.

Deep pages use a "deferred join": the page's primary keys are found first (an index-only
scan on most engines), then only those rows are loaded.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, func, select, text
from sqlalchemy.exc import SQLAlchemyError

if TYPE_CHECKING:
    from transom.admin.options import ModelAdmin
    from transom.db import DbSession

__all__ = ["Count", "ListPage", "count_rows", "fetch_page", "table_estimate"]

#: From this offset on, pages are loaded through their primary keys first.
DEFERRED_JOIN_OFFSET = 1000


@dataclasses.dataclass
class Count:
    """How many rows a list has: exact, estimated, or "more than"."""

    value: int
    exact: bool = True
    at_least: bool = False

    def __str__(self) -> str:
        if self.at_least:
            return f"more than {self.value - 1:,}"
        return f"{self.value:,}" if self.exact else f"about {self.value:,}"


@dataclasses.dataclass
class ListPage:
    """One page of a list."""

    items: list[Any]
    page: int
    per_page: int
    count: Count
    has_next: bool

    @property
    def pages(self) -> int:
        """Number of pages (approximate unless the count is exact)."""
        return max(1, math.ceil(self.count.value / self.per_page))

    @property
    def has_previous(self) -> bool:
        """Whether there is a page before this one."""
        return self.page > 1

    def page_numbers(self) -> list[int | None]:
        """Page links to show; ``None`` is a gap ("…")."""
        last = (
            self.pages
            if self.count.exact
            else max(self.pages, self.page + (1 if self.has_next else 0))
        )
        wanted = {1, 2, last - 1, last, *range(self.page - 2, self.page + 3)}
        numbers = sorted(n for n in wanted if 1 <= n <= last)
        shown: list[int | None] = []
        for n in numbers:
            previous = shown[-1] if shown else None
            if previous is not None and n - previous > 1:
                shown.append(None)
            shown.append(n)
        return shown


async def table_estimate(db: DbSession, table_name: str) -> int | None:
    """The row count the database's statistics give, without scanning; ``None`` if unknown."""
    dialect = db.bind.dialect.name if db.bind is not None else ""
    try:
        if dialect == "postgresql":
            value = (
                await db.execute(
                    text("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(:t)"),
                    {"t": table_name},
                )
            ).scalar()
        elif dialect in ("mysql", "mariadb"):
            value = (
                await db.execute(
                    text(
                        "SELECT table_rows FROM information_schema.tables "
                        "WHERE table_schema = DATABASE() AND table_name = :t"
                    ),
                    {"t": table_name},
                )
            ).scalar()
        elif dialect == "sqlite":
            quoted = '"' + table_name.replace('"', '""') + '"'
            value = (await db.execute(text(f"SELECT max(rowid) FROM {quoted}"))).scalar()
        else:
            return None
    except SQLAlchemyError:
        return None
    if value is None:
        return None
    number = int(value)
    return number if number >= 0 else None


async def count_rows(
    db: DbSession, admin: ModelAdmin, stmt: Select[Any], *, filtered: bool
) -> Count:
    """Count the list's rows, cheaply on big tables (see the module docs)."""
    threshold = admin.count_threshold
    if not filtered:
        estimate = await table_estimate(db, admin.mapper.local_table.name)
        if estimate is not None and estimate > threshold:
            return Count(estimate, exact=False)
        total = (
            await db.execute(select(func.count()).select_from(stmt.order_by(None).subquery()))
        ).scalar_one()
        return Count(int(total))
    bounded = stmt.order_by(None).with_only_columns(*admin.pk_columns).limit(threshold + 1)
    found = (await db.execute(select(func.count()).select_from(bounded.subquery()))).scalar_one()
    if found > threshold:
        return Count(threshold + 1, exact=False, at_least=True)
    return Count(int(found))


async def fetch_filtered(
    db: DbSession,
    admin: ModelAdmin,
    stmt: Select[Any],
    order: list[Any],
    page: int,
    per_page: int,
) -> tuple[list[Any], bool, Count] | None:
    """A filtered page and its exact count from one scan, when there are few matches.

    Collects at most ``admin.search_probe + 1`` matching primary keys (no ``ORDER BY``, so
    the database may stop early or scan in parallel). When that is every match, the page is
    loaded by key and the count is exact; otherwise ``None`` (use the general path).
    """
    if len(admin.pk_columns) != 1:
        return None
    pk = admin.pk_columns[0]
    probe = stmt.order_by(None).with_only_columns(pk).limit(admin.search_probe + 1)
    keys = list((await db.execute(probe)).scalars())
    if len(keys) > admin.search_probe:
        return None
    total = len(keys)
    offset = (page - 1) * per_page
    if not keys or offset >= total:
        return [], False, Count(total)
    paged = (
        select(admin.model)
        .options(*admin.list_options())
        .where(pk.in_(keys))
        .order_by(*order)
        .limit(per_page)
        .offset(offset)
    )
    rows = list((await db.execute(paged)).scalars())
    return rows, offset + len(rows) < total, Count(total)


async def fetch_page(
    db: DbSession, admin: ModelAdmin, stmt: Select[Any], page: int, per_page: int
) -> tuple[list[Any], bool]:
    """The rows of one page, and whether another page follows."""
    offset = (page - 1) * per_page
    if offset >= DEFERRED_JOIN_OFFSET and len(admin.pk_columns) == 1:
        pk = admin.pk_columns[0]
        keys = list(
            (
                await db.execute(stmt.with_only_columns(pk).limit(per_page + 1).offset(offset))
            ).scalars()
        )
        has_next = len(keys) > per_page
        keys = keys[:per_page]
        if not keys:
            return [], False
        rows = list(
            (
                await db.execute(
                    select(admin.model).options(*admin.list_options()).where(pk.in_(keys))
                )
            ).scalars()
        )
        position = {key: i for i, key in enumerate(keys)}
        rows.sort(key=lambda row: position.get(getattr(row, admin.pk_attr), 0))
        return rows, has_next
    paged = stmt.options(*admin.list_options()).limit(per_page + 1).offset(offset)
    rows = list((await db.execute(paged)).scalars())
    return rows[:per_page], len(rows) > per_page
