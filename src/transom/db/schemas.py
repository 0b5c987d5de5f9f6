"""Converting between models and Pydantic: responses out, validated input in."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, create_model
from sqlalchemy import inspect
from sqlalchemy.orm import ColumnProperty
from sqlalchemy.sql.schema import Column
from sqlalchemy.types import String

__all__ = ["from_schema", "schema_for", "to_schema", "update_from"]

M = TypeVar("M")
S = TypeVar("S", bound=BaseModel)


def to_schema(obj: Any, schema: type[S]) -> S:
    """Build a Pydantic model from a model instance (reads attributes, like ``from_attributes``).

    Example:
        >>> to_schema(article, ArticleOut)  # doctest: +SKIP
        ArticleOut(id=1, slug='hello', title='Hello')
    """
    return schema.model_validate(obj, from_attributes=True)


def _values(data: BaseModel | Mapping[str, Any], exclude_unset: bool) -> dict[str, Any]:
    if isinstance(data, BaseModel):
        return data.model_dump(exclude_unset=exclude_unset)
    return dict(data)


def _check_keys(model: type[Any], values: Mapping[str, Any]) -> None:
    mapper = inspect(model)
    unknown = set(values) - set(mapper.attrs.keys())
    if unknown:
        raise ValueError(f"{model.__name__} has no attribute(s) {sorted(unknown)}")


def from_schema(model: type[M], data: BaseModel | Mapping[str, Any], **extra: Any) -> M:
    """Create a (transient) model instance from validated input.

    Args:
        model: The model class.
        data: A Pydantic instance (typically the request body) or a mapping.
        **extra: Values not coming from the client (``author_id=user.id``).

    Raises:
        ValueError: ``data`` has a field the model doesn't map: rename it or exclude it.
    """
    values = _values(data, exclude_unset=False) | extra
    _check_keys(model, values)
    return model(**values)


def update_from(obj: M, data: BaseModel | Mapping[str, Any], *, exclude_unset: bool = True) -> M:
    """Apply input to an existing instance, PATCH-style (only fields the client sent).

    Returns:
        ``obj``, for chaining.
    """
    values = _values(data, exclude_unset=exclude_unset)
    _check_keys(type(obj), values)
    for key, value in values.items():
        setattr(obj, key, value)
    return obj


def _python_type(column: Column[Any]) -> Any:
    try:
        return column.type.python_type
    except NotImplementedError:
        return Any


def _optional(column: Column[Any]) -> bool:
    return bool(
        column.nullable
        or column.default is not None
        or column.server_default is not None
        or (column.primary_key and column.autoincrement in (True, "auto"))
    )


def schema_for(
    model: type[Any],
    *,
    name: str | None = None,
    include: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
    partial: bool = False,
) -> type[BaseModel]:
    """Derive a Pydantic model from a model's columns (types, nullability, string lengths).

    Use it for input (``exclude={"id"}``; ``partial=True`` for PATCH bodies) or output.

    Args:
        model: The model class.
        name: Name of the generated class (default ``<Model>Schema``).
        include: Only these attribute keys.
        exclude: Leave these attribute keys out.
        partial: Make every field optional (for PATCH).

    Example:
        >>> ArticleIn = schema_for(Article, exclude={"id"})  # doctest: +SKIP
    """
    mapper = inspect(model)
    wanted = set(include) if include is not None else None
    skipped = set(exclude)
    fields: dict[str, Any] = {}
    for prop in mapper.attrs:
        if not isinstance(prop, ColumnProperty) or prop.key in skipped:
            continue
        if wanted is not None and prop.key not in wanted:
            continue
        column = prop.columns[0]
        if not isinstance(column, Column):
            continue
        annotation = _python_type(column)
        constraints: dict[str, Any] = {}
        if isinstance(column.type, String) and column.type.length:
            constraints["max_length"] = column.type.length
        if partial or _optional(column):
            fields[prop.key] = (annotation | None, Field(default=None, **constraints))
        else:
            fields[prop.key] = (annotation, Field(**constraints))
    schema: type[BaseModel] = create_model(
        name or f"{model.__name__}Schema",
        __config__=ConfigDict(from_attributes=True),
        **fields,
    )
    return schema
