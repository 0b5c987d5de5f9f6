"""What deleting rows would take with it, or be blocked by, before anything is deleted."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, func, select

from transom.admin.forms import _mapped_class_for
from transom.admin.options import object_label

if TYPE_CHECKING:
    from transom.admin.options import ModelAdmin
    from transom.db import DbSession

__all__ = ["Consequence", "deletion_summary"]

_SAMPLE = 10


@dataclasses.dataclass
class Consequence:
    """Rows of one related table affected by a deletion.

    Attributes:
        kind: ``deleted`` (cascade), ``unlinked`` (set to NULL, or a many-to-many link
            removed) or ``blocked`` (the deletion is refused while they exist).
        name: What those rows are ("Comments", "links to Tags").
        count: How many.
        examples: Labels of the first few.
    """

    kind: str
    name: str
    count: int
    examples: list[str]


def _secondaries(model: type[Any]) -> set[Table]:
    tables: set[Table] = set()
    for mapper in model.registry.mappers:
        for rel in mapper.relationships:
            if isinstance(rel.secondary, Table):
                tables.add(rel.secondary)
    return tables


async def deletion_summary(
    db: DbSession, admin: ModelAdmin, objects: Sequence[Any]
) -> list[Consequence]:
    """Every table that references ``objects``, with what deleting them does to its rows."""
    model = admin.model
    mapper = admin.mapper
    table = mapper.local_table
    if not isinstance(table, Table) or not objects:
        return []
    secondaries = _secondaries(model)
    cascading = {
        rel.mapper.local_table
        for rel in mapper.relationships
        if "delete" in rel.cascade and rel.secondary is None
    }
    related_by_orm = {
        rel.mapper.local_table for rel in mapper.relationships if rel.secondary is None
    }
    found: list[Consequence] = []
    for other in table.metadata.tables.values():
        for fk in other.foreign_keys:
            if fk.column.table is not table:
                continue
            referenced_attr = mapper.get_property_by_column(fk.column).key
            keys = [getattr(obj, referenced_attr) for obj in objects]
            condition = fk.parent.in_(keys)
            count = (
                await db.execute(select(func.count()).select_from(other).where(condition))
            ).scalar_one()
            if not count:
                continue
            ondelete = (fk.ondelete or "").upper()
            target = _mapped_class_for(model, other)
            name = target.__name__ if target is not None else other.name
            if other in secondaries:
                kind, name = "unlinked", f"links from {other.name}"
            elif ondelete == "CASCADE" or other in cascading:
                kind = "deleted"
            elif ondelete == "SET NULL" or (other in related_by_orm and fk.parent.nullable):
                kind = "unlinked"
            else:
                kind = "blocked"
            examples: list[str] = []
            if target is not None and other not in secondaries:
                rows = (await db.execute(select(target).where(condition).limit(_SAMPLE))).scalars()
                examples = [object_label(row) for row in rows]
            found.append(Consequence(kind, name, int(count), examples))
    return found


def is_blocked(consequences: Sequence[Consequence]) -> bool:
    """Whether any related rows forbid the deletion."""
    return any(c.kind == "blocked" for c in consequences)
