"""Filtering, ordering and search of list endpoints, from typed, validated query parameters.

A filter is declared as ``"field"`` (exact) or ``"field__lookup"``; its query parameter has the
same name (``?published__gte=2024-01-01``) and its value is validated against the column's
type, so ``?score__gte=abc`` answers 422, never a database error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql import ColumnElement

from transom.rest.errors import Problem
from transom.rest.schemas import FieldSpec

__all__ = ["LOOKUPS", "Filter", "compile_filters", "ordering_clauses", "search_clause"]

LOOKUPS = ("exact", "gt", "gte", "lt", "lte", "in", "isnull", "icontains")
_BOOL: TypeAdapter[bool] = TypeAdapter(bool)
_OPS: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "exact": lambda c, v: c == v,
    "gt": lambda c, v: c > v,
    "gte": lambda c, v: c >= v,
    "lt": lambda c, v: c < v,
    "lte": lambda c, v: c <= v,
    "in": lambda c, v: c.in_(v),
    "isnull": lambda c, v: c.is_(None) if v else c.is_not(None),
    "icontains": lambda c, v: c.ilike(f"%{_escape_like(v)}%", escape="\\"),
}
#: Most values one ``__in`` filter takes (a long list is a slow query, not a filter).
MAX_IN = 100


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclasses.dataclass
class Filter:
    """One declared filter: its query parameter, column and validated value type."""

    param: str
    field: FieldSpec
    lookup: str
    adapter: TypeAdapter[Any]
    #: The JSON schema of the query parameter (for the OpenAPI document).
    schema_type: Any

    def clause(self, model: type[Any], raw: str) -> ColumnElement[bool]:
        value = self.parse(raw)
        spec = self.field
        if spec.kind == "collection":
            assert spec.relationship is not None
            relation: InstrumentedAttribute[Any] = getattr(model, spec.attr)
            target_pk = spec.relationship.mapper.primary_key[0]
            if self.lookup == "isnull":
                return ~relation.any() if value else relation.any()
            return relation.any(_OPS[self.lookup](target_pk, value))
        column = getattr(model, spec.attr)
        return _OPS[self.lookup](column, value)

    def parse(self, raw: str) -> Any:
        try:
            if self.lookup == "isnull":
                return _BOOL.validate_python(raw)
            if self.lookup == "in":
                parts = [p for p in raw.split(",") if p != ""]
                if len(parts) > MAX_IN:
                    raise Problem(
                        422,
                        errors=[
                            {
                                "loc": ["query", self.param],
                                "msg": f"at most {MAX_IN} values",
                                "type": "too_long",
                            }
                        ],
                    )
                return [self.adapter.validate_strings(p) for p in parts]
            return self.adapter.validate_strings(raw)
        except ValidationError as exc:
            raise Problem(
                422,
                errors=[
                    {"loc": ["query", self.param], "msg": e["msg"], "type": e["type"]}
                    for e in exc.errors(include_url=False)
                ],
            ) from None


def _value_type(spec: FieldSpec) -> Any:
    if spec.kind == "collection":
        args = getattr(spec.annotation, "__args__", (Any,))
        return args[0]
    return spec.annotation


def compile_filters(declared: Sequence[str], fields: Mapping[str, FieldSpec]) -> list[Filter]:
    """Check the declared filters against the model's fields and build them."""
    out: list[Filter] = []
    for entry in declared:
        name, _, lookup = entry.partition("__")
        lookup = lookup or "exact"
        if name not in fields:
            raise ValueError(f"filter {entry!r}: no field {name!r} (fields: {sorted(fields)})")
        if lookup not in LOOKUPS:
            raise ValueError(f"filter {entry!r}: unknown lookup {lookup!r} (known: {LOOKUPS})")
        spec = fields[name]
        value_type = _value_type(spec)
        if lookup == "icontains" and value_type is not str:
            raise ValueError(f"filter {entry!r}: icontains needs a text field")
        if spec.kind == "collection" and lookup not in ("exact", "in", "isnull"):
            raise ValueError(f"filter {entry!r}: a collection takes exact, in or isnull")
        if lookup == "isnull":
            schema_type: Any = bool
        elif lookup == "in":
            schema_type = str  # comma-separated values
        else:
            schema_type = value_type
        out.append(Filter(entry, spec, lookup, TypeAdapter(value_type), schema_type))
    return out


def ordering_clauses(
    raw: str | None,
    allowed: Mapping[str, ColumnElement[Any]],
    default: Sequence[str],
) -> tuple[list[ColumnElement[Any]], set[str]]:
    """``?ordering=-score,title`` (only ``allowed`` names) or the ``default`` order: the
    clauses, and the field names they order by."""
    names = [n.strip() for n in raw.split(",") if n.strip()] if raw else list(default)
    clauses: list[ColumnElement[Any]] = []
    for name in names:
        key = name.removeprefix("-")
        column = allowed.get(key)
        if column is None:
            raise Problem(
                422,
                errors=[
                    {
                        "loc": ["query", "ordering"],
                        "msg": f"cannot order by {key!r}; allowed: {', '.join(allowed)}",
                        "type": "enum",
                    }
                ],
            )
        clauses.append(column.desc() if name.startswith("-") else column.asc())
    return clauses, {n.removeprefix("-") for n in names}


def search_clause(raw: str, columns: Sequence[ColumnElement[Any]]) -> ColumnElement[bool] | None:
    """Every word of ``raw`` must appear (case-insensitively) in one of ``columns``."""
    words = raw.split()[:10]  # a bounded query whatever the client sends
    if not words:
        return None
    return and_(
        *[
            or_(*[c.ilike(f"%{_escape_like(word)}%", escape="\\") for c in columns])
            for word in words
        ]
    )


def apply_filters(
    stmt: Select[Any], model: type[Any], filters: Sequence[Filter], query: Mapping[str, str]
) -> Select[Any]:
    """Add the filters the query string uses to ``stmt``."""
    for item in filters:
        raw = query.get(item.param)
        if raw is not None:
            stmt = stmt.where(item.clause(model, raw))
    return stmt
