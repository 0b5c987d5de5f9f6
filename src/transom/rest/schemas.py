"""Read and write schemas derived from a SQLAlchemy model, and the object-to-data conversion.

Columns give their Python type, nullability, string length, enum and scalar default;
many-to-one relations appear under the relation's name as the related id (``"author": 3``,
written the same way), collections as lists of ids, or as links or nested objects when asked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from operator import attrgetter
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import ColumnProperty, RelationshipProperty
from sqlalchemy.orm.interfaces import MANYTOONE
from sqlalchemy.sql.schema import Column
from sqlalchemy.types import Enum as SAEnum
from sqlalchemy.types import String

__all__ = ["FieldSpec", "model_fields", "read_schema", "serializer", "write_schema"]

Kind = Literal["column", "fk", "collection"]


@dataclasses.dataclass
class FieldSpec:
    """One public field of a resource and where it lives on the model."""

    name: str
    kind: Kind
    #: The attribute read and written: the column key, the foreign-key column's key for a
    #: many-to-one relation, the relationship key for a collection.
    attr: str
    annotation: Any
    nullable: bool
    #: The column's scalar default (documented), or ``...`` when there is none.
    default: Any
    #: The database or SQLAlchemy fills the value in when it is not given.
    generated: bool
    constraints: dict[str, Any]
    relationship: RelationshipProperty[Any] | None = None

    @property
    def target(self) -> type[Any] | None:
        """The related model of a relation."""
        return self.relationship.mapper.class_ if self.relationship is not None else None


def _python_type(column: Column[Any]) -> Any:
    if isinstance(column.type, SAEnum) and column.type.enum_class is not None:
        return column.type.enum_class
    if isinstance(column.type, SAEnum):
        return Literal[tuple(column.type.enums)]
    try:
        return column.type.python_type
    except NotImplementedError:
        return Any


def _constraints(column: Column[Any]) -> dict[str, Any]:
    length = getattr(column.type, "length", None)
    if isinstance(column.type, String) and not isinstance(column.type, SAEnum) and length:
        return {"max_length": length}
    return {}


def _column_spec(name: str, attr: str, column: Column[Any], kind: Kind) -> FieldSpec:
    default: Any = ...
    generated = column.server_default is not None or bool(
        column.primary_key and column.autoincrement in (True, "auto")
    )
    if column.default is not None:
        arg = getattr(column.default, "arg", None)
        if getattr(column.default, "is_scalar", False) and not callable(arg):
            default = arg
        else:
            generated = True
    return FieldSpec(
        name=name,
        kind=kind,
        attr=attr,
        annotation=_python_type(column),
        nullable=bool(column.nullable),
        default=default,
        generated=generated,
        constraints=_constraints(column),
    )


def model_fields(
    model: type[Any],
    fields: Sequence[str] | None,
    exclude: Iterable[str],
    *,
    collections: bool = False,
) -> dict[str, FieldSpec]:
    """The public fields of ``model``: columns and many-to-one relations by default
    (collections only when named in ``fields``, or all with ``collections``), minus
    ``exclude``."""
    mapper = sa_inspect(model)
    skipped = set(exclude)
    specs: dict[str, FieldSpec] = {}
    fk_keys: dict[str, str] = {}  # foreign-key column key -> relation name
    for rel in mapper.relationships:
        if rel.direction is MANYTOONE and len(rel.local_columns) == 1:
            (local,) = rel.local_columns
            prop = mapper.get_property_by_column(local)
            fk_keys[prop.key] = rel.key
    wanted = list(fields) if fields is not None else None
    for prop in mapper.attrs:
        key = prop.key
        if isinstance(prop, ColumnProperty):
            column = prop.columns[0]
            if not isinstance(column, Column):
                continue
            relation = fk_keys.get(key)
            if relation is not None:
                continue  # exposed under the relation's name
            specs[key] = _column_spec(key, key, column, "column")
        elif isinstance(prop, RelationshipProperty):
            target_pk = prop.mapper.primary_key
            if len(target_pk) != 1:
                continue
            if prop.direction is MANYTOONE and len(prop.local_columns) == 1:
                (local,) = prop.local_columns
                fk_attr = mapper.get_property_by_column(local).key
                spec = _column_spec(key, fk_attr, local, "fk")  # type: ignore[arg-type]
                spec.relationship = prop
                specs[key] = spec
            elif prop.uselist and (collections or (wanted is not None and key in wanted)):
                specs[key] = FieldSpec(
                    name=key,
                    kind="collection",
                    attr=key,
                    annotation=list[_python_type(target_pk[0])],  # type: ignore[misc,arg-type]
                    nullable=False,
                    default=...,
                    generated=True,  # an empty collection when not given
                    constraints={},
                    relationship=prop,
                )
    if wanted is not None:
        unknown = [f for f in wanted if f not in specs]
        if unknown:
            raise ValueError(f"{model.__name__} has no field(s) {unknown} to expose")
        specs = {name: specs[name] for name in wanted}
    return {name: spec for name, spec in specs.items() if name not in skipped}


def _typed(spec: FieldSpec, annotation: Any) -> Any:
    if spec.constraints:
        return Annotated[annotation, Field(**spec.constraints)]
    return annotation


def read_schema(
    name: str,
    specs: Mapping[str, FieldSpec],
    nested: Mapping[str, Any],
    config: ConfigDict | None = None,
    links: Collection[str] = (),
) -> type[BaseModel]:
    """The response schema: every field, nullable ones as ``X | None``; ``nested`` maps a
    relation name to the schema of its objects; ``links`` names the relations sent as
    links (strings, ``format: uri-reference``)."""
    from transom.rest.links import LinkURL

    fields: dict[str, Any] = {}
    for spec in specs.values():
        if spec.name in links:
            annotation: Any = list[LinkURL] if spec.kind == "collection" else LinkURL
        elif spec.name in nested:
            inner = nested[spec.name]
            annotation = list[inner] if spec.kind == "collection" else inner  # type: ignore[valid-type]
        else:
            annotation = spec.annotation
        if spec.nullable:
            annotation = annotation | None
        fields[spec.name] = (annotation, ...)
    model: type[BaseModel] = create_model(
        name, __config__=config or ConfigDict(from_attributes=True), **fields
    )
    return model


def write_schema(
    name: str,
    specs: Mapping[str, FieldSpec],
    *,
    partial: bool,
    unknown_fields: Literal["forbid", "ignore"],
) -> type[BaseModel]:
    """The request-body schema of create/replace (``partial=False``) or PATCH (``True``).

    A PATCH field keeps its type (``null`` is refused for a non-nullable column) but is not
    required; the handler applies only the fields the client sent.
    """
    fields: dict[str, Any] = {}
    for spec in specs.values():
        annotation = _typed(spec, spec.annotation)
        if spec.nullable:
            annotation = annotation | None
        if partial or (spec.generated and spec.default is ...):
            # Optional, and never used when not sent (only sent fields are applied): a
            # factory keeps a ``null`` default of a non-nullable field out of the schema.
            fields[spec.name] = (annotation, Field(default_factory=_none))
        elif spec.default is not ...:
            fields[spec.name] = (annotation, Field(default=spec.default))
        elif spec.nullable:
            fields[spec.name] = (annotation, Field(default=None))
        else:
            fields[spec.name] = (annotation, ...)
    model: type[BaseModel] = create_model(
        name, __config__=ConfigDict(extra=unknown_fields), **fields
    )
    return model


def _none() -> None:
    return None


Getter = Callable[[Any], Any]


def serializer(
    specs: Mapping[str, FieldSpec],
    nested: Mapping[str, Getter],
    overrides: Mapping[str, Getter] | None = None,
) -> Getter:
    """A function from a model instance to the dict its read schema validates.

    Relations not nested give ids (the foreign-key column, no query); ``nested`` maps a
    relation name to the function converting one related object; ``overrides`` maps a field
    to the function reading it from the object (links).
    """
    plan: list[tuple[str, Getter]] = []
    for spec in specs.values():
        read = attrgetter(spec.attr)
        if overrides and spec.name in overrides:
            plan.append((spec.name, overrides[spec.name]))
        elif spec.kind == "collection":
            inner = nested.get(spec.name) or _pk_getter(spec)
            plan.append((spec.name, _each(read, inner)))
        elif spec.kind == "fk" and spec.name in nested:
            plan.append((spec.name, _one(attrgetter(spec.name), nested[spec.name])))
        else:
            plan.append((spec.name, read))

    def convert(obj: Any) -> dict[str, Any]:
        return {name: get(obj) for name, get in plan}

    return convert


def _pk_getter(spec: FieldSpec) -> Getter:
    assert spec.relationship is not None
    key = spec.relationship.mapper.get_property_by_column(
        spec.relationship.mapper.primary_key[0]
    ).key
    return attrgetter(key)


def _each(read: Getter, inner: Getter) -> Getter:
    return lambda obj: [inner(item) for item in read(obj)]


def _one(read: Getter, inner: Getter) -> Getter:
    def get(obj: Any) -> Any:
        value = read(obj)
        return None if value is None else inner(value)

    return get
