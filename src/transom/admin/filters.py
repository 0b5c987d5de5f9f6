"""List filters: the sidebar of a list page (booleans, choices and enums, dates, foreign keys).

Each filter reads one query parameter (``f_<field>``), narrows the statement, and offers the
choices the sidebar shows. Subclass :class:`ListFilter` for a custom one and put the class (or
an instance) in ``ModelAdmin.list_filter``.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import TYPE_CHECKING, Any

from sqlalchemy import Boolean, Date, DateTime, Enum, Select, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import InstrumentedAttribute

from transom.admin.forms import _coerce_pk, _mapped_class_for, label_for

if TYPE_CHECKING:
    from transom.admin.options import ModelAdmin
    from transom.db import DbSession

__all__ = [
    "BooleanFilter",
    "ChoicesFilter",
    "DateFilter",
    "ForeignKeyFilter",
    "ListFilter",
    "filter_for",
]

#: A related table with at most this many rows is offered as a list of links.
FK_CHOICES_LIMIT = 50


class ListFilter:
    """Base class: a titled set of choices that narrows the list.

    Attributes:
        title: Heading in the sidebar.
        parameter: Query-string key.
    """

    title: str = ""
    parameter: str = ""

    async def choices(self, db: DbSession) -> list[tuple[str, str]]:
        """``(value, label)`` pairs the sidebar offers (besides "All")."""
        return []

    def apply(self, stmt: Select[Any], value: str) -> Select[Any]:
        """Narrow ``stmt`` to rows matching ``value``.

        Raises:
            ValueError: ``value`` is not understood (the filter is then ignored).
        """
        return stmt


class FieldFilter(ListFilter):
    """A filter on one column attribute."""

    def __init__(self, admin: ModelAdmin, field: str) -> None:
        self.admin = admin
        self.field = field
        self.attr: InstrumentedAttribute[Any] = getattr(admin.model, field)
        self.column = self.attr.property.columns[0]
        self.title = label_for(field)
        self.parameter = f"f_{field}"

    def _null_choice(self) -> list[tuple[str, str]]:
        return [("null", "None")] if self.column.nullable else []


class BooleanFilter(FieldFilter):
    """Yes / No (/ None for a nullable column)."""

    async def choices(self, db: DbSession) -> list[tuple[str, str]]:
        return [("1", "Yes"), ("0", "No"), *self._null_choice()]

    def apply(self, stmt: Select[Any], value: str) -> Select[Any]:
        if value == "null":
            return stmt.where(self.attr.is_(None))
        if value not in ("0", "1"):
            raise ValueError(value)
        return stmt.where(self.attr.is_(value == "1"))


class ChoicesFilter(FieldFilter):
    """One choice per enum member (or per distinct value listed in ``choices``)."""

    def __init__(
        self, admin: ModelAdmin, field: str, choices: list[tuple[str, str]] | None = None
    ) -> None:
        super().__init__(admin, field)
        kind = self.column.type
        self.enum_class: type[enum.Enum] | None = getattr(kind, "enum_class", None)
        if choices is not None:
            self._choices = choices
        elif self.enum_class is not None:
            self._choices = [
                (str(m.value), m.name.replace("_", " ").capitalize()) for m in self.enum_class
            ]
        elif isinstance(kind, Enum):
            self._choices = [(v, v) for v in kind.enums]
        else:
            self._choices = []

    async def choices(self, db: DbSession) -> list[tuple[str, str]]:
        if self._choices:
            return [*self._choices, *self._null_choice()]
        # Distinct values, as long as there are few of them.
        rows = await db.execute(select(self.attr).distinct().order_by(self.attr).limit(51))
        values = [v for (v,) in rows if v is not None]
        return [(str(v), str(v)) for v in values[:50]] + self._null_choice()

    def apply(self, stmt: Select[Any], value: str) -> Select[Any]:
        if value == "null":
            return stmt.where(self.attr.is_(None))
        if self.enum_class is not None:
            for member in self.enum_class:
                if str(member.value) == value:
                    return stmt.where(self.attr == member)
            raise ValueError(value)
        try:
            python_type = self.column.type.python_type
        except NotImplementedError:
            python_type = str
        return stmt.where(self.attr == python_type(value))


class DateFilter(FieldFilter):
    """Today, the past 7 days, this month, this year (in UTC)."""

    OPTIONS = (
        ("today", "Today"),
        ("7d", "Past 7 days"),
        ("month", "This month"),
        ("year", "This year"),
    )

    async def choices(self, db: DbSession) -> list[tuple[str, str]]:
        return [*self.OPTIONS, *self._null_choice()]

    def apply(self, stmt: Select[Any], value: str) -> Select[Any]:
        if value == "null":
            return stmt.where(self.attr.is_(None))
        today = dt.datetime.now(dt.UTC).date()
        starts = {
            "today": today,
            "7d": today - dt.timedelta(days=6),
            "month": today.replace(day=1),
            "year": today.replace(month=1, day=1),
        }
        if value not in starts:
            raise ValueError(value)
        start = starts[value]
        is_datetime = not isinstance(self.column.type, Date) or isinstance(
            self.column.type, DateTime
        )
        if is_datetime:
            moment = dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC)
            return stmt.where(self.attr >= moment)
        return stmt.where(self.attr >= start)


class ForeignKeyFilter(FieldFilter):
    """One choice per related row when the related table is small; any id is accepted."""

    def __init__(self, admin: ModelAdmin, field: str) -> None:
        super().__init__(admin, field)
        fk = next(iter(self.column.foreign_keys))
        self.related = _mapped_class_for(admin.model, fk.column.table)
        for rel in sa_inspect(admin.model).relationships:
            if self.column in rel.local_columns:
                self.title = label_for(rel.key)

    async def choices(self, db: DbSession) -> list[tuple[str, str]]:
        if self.related is None:
            return self._null_choice()
        pk = sa_inspect(self.related).primary_key[0]
        rows = list(
            (
                await db.execute(select(self.related).order_by(pk).limit(FK_CHOICES_LIMIT + 1))
            ).scalars()
        )
        if len(rows) > FK_CHOICES_LIMIT:
            return self._null_choice()
        from transom.admin.options import object_label

        return [
            (str(getattr(row, pk.key)), object_label(row)) for row in rows
        ] + self._null_choice()

    def apply(self, stmt: Select[Any], value: str) -> Select[Any]:
        if value == "null":
            return stmt.where(self.attr.is_(None))
        return stmt.where(self.attr == _coerce_pk(self.related, value))

    @property
    def search_parameter(self) -> str:
        """The query key of the search box a large related table gets in the sidebar."""
        return f"{self.parameter}__q"

    async def search(self, db: DbSession, term: str, limit: int = 20) -> list[tuple[str, str]]:
        """Related rows matching ``term`` (the related model's admin search), as choices."""
        if self.related is None or not term.strip():
            return []
        from transom.admin.options import ModelAdmin

        site = self.admin.site
        related_admin = site.admin_for(self.related) or ModelAdmin(self.related, site)
        pk = sa_inspect(self.related).primary_key[0]
        stmt = related_admin.apply_search(select(self.related), term)
        rows = (await db.execute(stmt.order_by(pk).limit(limit))).scalars()
        return [(str(getattr(r, pk.key)), related_admin.label(r)) for r in rows]

    async def label_of(self, db: DbSession, value: str) -> str:
        """How the sidebar names the chosen related row (its id when it is gone)."""
        if value == "null":
            return "None"
        if self.related is None:
            return value
        from transom.admin.options import object_label

        try:
            row = await db.get(self.related, _coerce_pk(self.related, value))
        except (ValueError, TypeError):
            return value
        return object_label(row) if row is not None else value


def filter_for(admin: ModelAdmin, spec: Any) -> ListFilter:
    """The filter for one ``list_filter`` entry: a field name, a filter class or an instance."""
    if isinstance(spec, ListFilter):
        return spec
    if isinstance(spec, type) and issubclass(spec, ListFilter):
        return spec()
    if not isinstance(spec, str):
        raise TypeError(f"list_filter entries are field names or ListFilter classes, not {spec!r}")
    attr = getattr(admin.model, spec, None)
    if attr is None:
        raise ValueError(f"list_filter: {admin.model.__name__} has no attribute {spec!r}")
    prop = getattr(attr, "property", None)
    if prop is not None and hasattr(prop, "direction"):
        # A many-to-one relationship name: filter on its foreign key column.
        (local,) = tuple(prop.local_columns)
        spec = local.key
        attr = getattr(admin.model, spec)
    column = attr.property.columns[0]
    if column.foreign_keys:
        return ForeignKeyFilter(admin, spec)
    kind = column.type
    if isinstance(kind, Boolean):
        return BooleanFilter(admin, spec)
    if isinstance(kind, Date | DateTime) or isinstance(getattr(kind, "impl", None), DateTime):
        return DateFilter(admin, spec)
    return ChoicesFilter(admin, spec)
