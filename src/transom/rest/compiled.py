"""What a resource derives once from its declaration: schemas, loaders, filters, orderings."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, TypeAdapter, create_model
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import configure_mappers, joinedload, lazyload, load_only, selectinload
from sqlalchemy.sql import ColumnElement

from transom.rest.battery import RestConfig
from transom.rest.errors import ErrorFormat
from transom.rest.filters import Filter, compile_filters
from transom.rest.links import Link
from transom.rest.permissions import Permission
from transom.rest.reader import Reader
from transom.rest.schemas import FieldSpec, model_fields, read_schema, serializer, write_schema

if TYPE_CHECKING:
    from transom.rest.resource import ModelResource

__all__ = ["Compiled", "OperationDoc", "list_parameters", "scalar_schema"]


@dataclasses.dataclass
class OperationDoc:
    """What the OpenAPI hook adds to one operation (the handlers read these themselves)."""

    parameters: list[dict[str, Any]]
    body: type[BaseModel] | None


class Compiled:
    """Everything derived from the resource's declaration, built once per app."""

    def __init__(self, resource: ModelResource, config: RestConfig) -> None:
        from transom.rest.resource import ModelResource as resource_class

        cls = type(resource)
        self.resource_class = cls
        model = cls.model
        configure_mappers()
        mapper = sa_inspect(model)
        self.error_format: ErrorFormat = cls.error_format or config.error_format
        unknown = cls.unknown_fields or config.unknown_fields
        self.max_limit = cls.max_limit or config.max_limit
        self.default_limit = min(cls.default_limit or config.default_limit, self.max_limit)
        named = dict(cls.nested)
        # Nested collections are fields too, without being listed in ``fields``.
        wanted = list(cls.fields) if cls.fields is not None else None
        if wanted is None:
            base = list(model_fields(model, None, ()))
            if any(n not in base for n in named):
                wanted = base + [n for n in named if n not in base]
        else:
            wanted += [n for n in named if n not in wanted]
        self.fields = model_fields(model, wanted, cls.exclude)
        self.links: dict[str, Link] = _links(cls, self.fields, named)
        pk_columns = mapper.primary_key
        self.pk_attr = mapper.get_property_by_column(pk_columns[0]).key
        lookup = cls.lookup or self.pk_attr
        if lookup not in self.fields or self.fields[lookup].kind != "column":
            raise ValueError(f"{cls.__name__}: lookup {lookup!r} is not a column field")
        self.lookup = self.fields[lookup]
        # Schema names: two resources of one model (a v1 and a v2) must not share them.
        title = cls.schema_prefix or cls.__name__
        # Nested relations: their read schema and the conversion of one related object.
        nested_schemas: dict[str, Any] = {}
        nested_getters: dict[str, Callable[[Any], Any]] = {}
        # The flat fields shown of each nested relation, for the Core reader (None: the ORM).
        nested_fields: dict[str, dict[str, FieldSpec]] | None = {}
        self.loads: list[Any] = []  # loader options (joinedload/selectinload)
        for name, spec in self.fields.items():
            relation: Any = getattr(model, spec.name) if spec.relationship is not None else None
            if name in named:
                target = named[name]
                if isinstance(target, type) and issubclass(target, resource_class):
                    inner = target()._compiled_for(config)
                    if inner.links:
                        # Its links are resolved for the routes the app serves, which an
                        # instance made here has none of.
                        raise TypeError(
                            f"{cls.__name__}.nested[{name!r}]: {target.__name__} sends links; "
                            "nest a resource without links, or a list of fields"
                        )
                    nested_schemas[name] = inner.read_model
                    nested_getters[name] = inner.to_data
                    inner_loads = [*inner.loads, lazyload("*")]
                    if nested_fields is not None and inner.flat:
                        nested_fields[name] = inner.readable
                    else:
                        nested_fields = None
                elif isinstance(target, type) and issubclass(target, BaseModel):
                    nested_schemas[name] = target
                    nested_getters[name] = lambda obj: obj  # read with from_attributes
                    inner_loads = []
                    nested_fields = None
                elif isinstance(target, list | tuple) and spec.target is not None:
                    # Named columns only: a related user must not send its password hash.
                    columns = model_fields(spec.target, list(target), ())
                    nested_schemas[name] = read_schema(f"{title}{name.title()}", columns, {})
                    nested_getters[name] = serializer(columns, {})
                    if nested_fields is not None:
                        nested_fields[name] = columns
                    # Its other relations are never read: not even a mapper's lazy="selectin".
                    inner_loads = [
                        load_only(*[getattr(spec.target, c.attr) for c in columns.values()]),
                        lazyload("*"),
                    ]
                else:
                    raise TypeError(
                        f"{cls.__name__}.nested[{name!r}]: give a resource class, a Pydantic "
                        "model or a list of the related model's fields"
                    )
                loader = selectinload if spec.kind == "collection" else joinedload
                option = loader(relation)
                self.loads.append(option.options(*inner_loads) if inner_loads else option)
            elif spec.kind == "collection":
                # Ids and links of a collection read its objects: one IN query.
                self.loads.append(selectinload(relation))
        if cls.read_schema is not None:
            # An override reads attributes itself: load the relations it names.
            for field_name in cls.read_schema.model_fields:
                if field_name in mapper.relationships and field_name not in named:
                    self.loads.append(selectinload(getattr(model, field_name)))
        else:
            # Only the relations above are read: none by a mapper default (lazy="selectin").
            self.loads.append(lazyload("*"))
        readable = {n: s for n, s in self.fields.items() if n not in cls.write_only}
        self.readable: dict[str, FieldSpec] = readable
        #: Only columns and related ids: a nested relation of another resource reads as is.
        self.flat: bool = cls.read_schema is None and not named and not self.links
        self.read_model: type[BaseModel] = cls.read_schema or read_schema(
            f"{title}Read", readable, nested_schemas, links=self.links
        )
        self.read_adapter: TypeAdapter[Any] = TypeAdapter(self.read_model)
        self._nested_getters = nested_getters
        self._nested_fields = nested_fields
        self._base_loads = self.loads
        read_only = set(cls.read_only) | {self.pk_attr}
        # A nested relation is written by id(s), as when it is not nested.
        writable = {n: s for n, s in self.fields.items() if n not in read_only}
        self.writable = writable
        self.create_model = cls.create_schema or write_schema(
            f"{title}Create", writable, partial=False, unknown_fields=unknown
        )
        self.update_model = cls.update_schema or write_schema(
            f"{title}Patch", writable, partial=True, unknown_fields=unknown
        )
        if cls.pagination == "cursor":
            self.list_model: type[BaseModel] = create_model(
                f"{title}Page",
                items=(list[self.read_model], ...),  # type: ignore[name-defined]
                limit=(int, ...),
                next_cursor=(str | None, ...),
                total=(int | None, ...),
                links=(dict[str, str | None], ...),
            )
        else:
            self.list_model = create_model(
                f"{title}Page",
                items=(list[self.read_model], ...),  # type: ignore[name-defined]
                total=(int | None, ...),
                limit=(int, ...),
                offset=(int, ...),
                links=(dict[str, str | None], ...),
            )
        self.list_adapter: TypeAdapter[Any] = TypeAdapter(self.list_model)
        # Filters, ordering and search may use any field of the model, shown or not.
        every = {**model_fields(model, None, (), collections=True), **self.fields}
        self.filters: list[Filter] = compile_filters(cls.filters, every)
        self.order_columns: dict[str, ColumnElement[Any]] = {}
        for entry in cls.ordering:
            key = entry.removeprefix("-")
            found = every.get(key)
            if found is None or found.kind == "collection":
                raise ValueError(f"{cls.__name__}: cannot order by {key!r}")
            self.order_columns[key] = getattr(model, found.attr)
        self.default_order = list(cls.ordering)
        self.search_columns = []
        for name in cls.search:
            found = every.get(name)
            if found is None or found.kind != "column" or found.annotation is not str:
                raise ValueError(f"{cls.__name__}: search field {name!r} is not a text column")
            self.search_columns.append(getattr(model, found.attr))
        self.pk_column = getattr(model, self.pk_attr)
        self.permissions: list[Permission] = [
            p() if isinstance(p, type) else p for p in cls.permissions
        ]
        self._core_reads = cls.read_schema is None and cls.query is resource_class.query
        self.build_reads()

    def build_reads(self) -> None:
        """Build what reads and sends objects: the loader options, the ORM serializer and the
        Core reader. Again once the links are resolved (their related resource's lookup
        field decides what is read)."""
        cls = self.resource_class
        readable = self.readable
        self.loads = list(self._base_loads)
        overrides: dict[str, Callable[[Any], Any]] = {}
        for name, link in self.links.items():
            spec = readable.get(name)
            if spec is None:
                continue  # write-only
            overrides[name] = _link_getter(spec, link)
            if spec.kind == "fk" and not link.by_pk:
                # The related object's lookup column, joined like a nested relation.
                target = link.target
                self.loads.append(
                    joinedload(getattr(cls.model, name)).options(
                        load_only(getattr(target, link.key)), lazyload("*")
                    )
                )
        if cls.read_schema is not None:
            self.to_data: Callable[[Any], Any] = lambda obj: obj
        else:
            self.to_data = serializer(readable, self._nested_getters, overrides)
        # Lists and reads in Core rows when the resource allows it: its own read schema or
        # query() hook (which may add ORM options or joins) keep the ORM path.
        self.reader: Reader | None = None
        if self._core_reads and self._nested_fields is not None:
            page_fields = list(self.list_model.model_fields)
            self.reader = Reader.build(
                cls.model,
                readable,
                self._nested_fields,
                self.lookup,
                self.order_columns,
                self.default_order,
                self.pk_attr,
                page_fields,
                self.links,
            )
        #: Retrieve reads rows unless a permission looks at the object itself.
        self.fast_retrieve = self.reader is not None and all(
            type(p).has_object_permission is Permission.has_object_permission
            for p in self.permissions
        )

    def etag(self, body: bytes) -> str:
        return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'

    def render(self, obj: Any) -> bytes:
        if self.reader is not None:
            # The same serializer as the Core reads: equal objects, equal bytes and ETags.
            return self.reader.item_adapter.dump_json(self.to_data(obj))
        value = self.read_adapter.validate_python(self.to_data(obj), from_attributes=True)
        return self.read_adapter.dump_json(value, by_alias=True)


def _links(
    cls: type[ModelResource], fields: dict[str, FieldSpec], nested: dict[str, Any]
) -> dict[str, Link]:
    declared = cls.links
    if isinstance(declared, str):
        raise TypeError(f"{cls.__name__}.links: a list of relation names, not one string")
    chosen: dict[str, Any] = (
        dict(declared) if isinstance(declared, Mapping) else dict.fromkeys(declared)
    )
    links: dict[str, Link] = {}
    for name, resource in chosen.items():
        spec = fields.get(name)
        where = f"{cls.__name__}.links[{name!r}]"
        if spec is None or spec.relationship is None or spec.target is None:
            raise ValueError(f"{where}: not a relation among the resource's fields")
        if name in nested:
            raise ValueError(f"{where}: a relation is sent as a link or nested, not both")
        if cls.read_schema is not None:
            raise ValueError(f"{where}: links need the derived read schema (no read_schema)")
        mapper = spec.relationship.mapper
        pk = mapper.get_property_by_column(mapper.primary_key[0]).key
        links[name] = Link(name, spec.target, resource, pk)
    return links


def _link_getter(spec: FieldSpec, link: Link) -> Callable[[Any], Any]:
    """The link(s) of an ORM object's relation (what the Core reader builds from rows)."""
    url = link.url
    key = link.key
    if spec.kind == "collection":
        return lambda obj: [url(getattr(item, key)) for item in getattr(obj, spec.attr)]
    if link.by_pk:
        fk = spec.attr  # the foreign key holds the related primary key: nothing to load

        return lambda obj: url(getattr(obj, fk))

    def get(obj: Any) -> Any:
        related = getattr(obj, spec.name)
        return None if related is None else url(getattr(related, key))

    return get


def list_parameters(cls: type[ModelResource], compiled: Compiled) -> list[dict[str, Any]]:
    """The query parameters of a list operation, for the OpenAPI document."""
    limit = {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": f"Items per page (at most {compiled.max_limit}).",
        "schema": {"type": "integer", "minimum": 1, "default": compiled.default_limit},
    }
    if cls.pagination == "cursor":
        params = [
            {
                "name": "cursor",
                "in": "query",
                "required": False,
                "description": "The next_cursor of the previous page.",
                "schema": {"type": "string"},
            },
            limit,
        ]
    else:
        offset = {
            "name": "offset",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 0, "default": 0},
        }
        params = [limit, offset]
    for item in compiled.filters:
        schema = scalar_schema(item.schema_type)
        description = f"{item.field.name}: {item.lookup}"
        if item.lookup == "in":
            description += " (comma-separated values)"
        params.append(
            {
                "name": item.param,
                "in": "query",
                "required": False,
                "description": description,
                "schema": schema,
            }
        )
    if compiled.order_columns:
        names = [n for key in compiled.order_columns for n in (key, f"-{key}")]
        params.append(
            {
                "name": "ordering",
                "in": "query",
                "required": False,
                "description": "Comma-separated, from: " + ", ".join(names),
                "schema": {"type": "string"},
            }
        )
    if compiled.search_columns:
        params.append(
            {
                "name": "search",
                "in": "query",
                "required": False,
                "description": "Words to find in: " + ", ".join(cls.search),
                "schema": {"type": "string"},
            }
        )
    return params


def scalar_schema(annotation: Any) -> dict[str, Any]:
    try:
        schema = TypeAdapter(annotation).json_schema()
    except Exception:  # a type without a JSON schema is documented as any value
        return {}
    schema.pop("title", None)
    return schema if "$defs" not in schema else {}
