"""Which error statuses a resource operation can answer, for ``/openapi.json``.

Documented where they can happen: 401/403 when a permission of the resource can refuse the
operation, 404 on one object, 409 when a write can clash with a unique constraint (create,
update) or a delete with rows that still reference the object, 412 on ``If-Match`` writes,
422 where input is validated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import PrimaryKeyConstraint, Table, UniqueConstraint

if TYPE_CHECKING:
    from transom.rest.compiled import Compiled

__all__ = ["error_statuses"]

_WRITES = frozenset({"create", "update", "partial_update"})
_HARMLESS_ON_DELETE = frozenset({"CASCADE", "SET NULL", "SET DEFAULT"})


def error_statuses(
    model: type[Any], compiled: Compiled, action: str, method: str, detail: bool
) -> tuple[int, ...]:
    """The error statuses of ``action`` (a standard operation or a custom action)."""
    codes: list[int] = []
    if any(p.can_refuse(action, method, detail) for p in compiled.permissions):
        codes += [401, 403]
    if detail:
        codes.append(404)
    table = getattr(model, "__table__", None)
    if isinstance(table, Table):
        if action in _WRITES and _can_clash(table, set(compiled.create_model.model_fields)):
            codes.append(409)
        if action == "destroy" and _still_referenced(table):
            codes.append(409)
    elif action in _WRITES or action == "destroy":
        codes.append(409)  # not a plain table: cannot tell, so say it can
    if action in ("update", "partial_update", "destroy"):
        codes.append(412)
    if action in ("list", "create", "update", "partial_update"):
        codes.append(422)
    return tuple(codes)


def _can_clash(table: Table, writable: set[str]) -> bool:
    """A unique constraint or index, or a primary key the client writes."""
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint):
            return True
        if isinstance(constraint, PrimaryKeyConstraint) and any(
            column.key in writable for column in constraint.columns
        ):
            return True
    return any(index.unique for index in table.indexes) or any(
        bool(column.unique) for column in table.columns
    )


def _still_referenced(table: Table) -> bool:
    """Another table points at this one with a key that refuses the delete."""
    for other in table.metadata.tables.values():
        for key in other.foreign_keys:
            if key.references(table) and (key.ondelete or "").upper() not in _HARMLESS_ON_DELETE:
                return True
    return False
