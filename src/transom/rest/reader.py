"""The read path of a resource in SQLAlchemy Core: rows of the needed columns, no ORM objects.

A list or a retrieve needs no identity map, no instance state and no validation of what the
database just sent (its columns type it): the reader selects the columns the read schema
shows, joins the nested many-to-one relations, loads each collection of the page with one
``IN`` query (as ``selectinload`` would), builds plain dicts in the schema's field order and
serialises them with a compiled Pydantic serializer of the same shape (the same bytes as the
read schema gives, so ETags agree with the ORM path of the writes). The statements are built
once per resource; a request only binds its limit, offset or key.

Resources the reader cannot serve exactly fall back to the ORM path (see :meth:`Reader.build`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import TypeAdapter
from sqlalchemy import Integer, Select, Table, bindparam, func, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Mapper, RelationshipProperty
from sqlalchemy.orm.interfaces import MANYTOMANY, MANYTOONE, ONETOMANY
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.schema import Column
from typing_extensions import TypedDict

from transom.rest.schemas import FieldSpec

if TYPE_CHECKING:
    from transom.rest.links import Link

__all__ = ["Reader"]

Row = Sequence[Any]


@dataclasses.dataclass
class _Collection:
    """One collection field: its statement (parent keys bound as ``ids``) and row builder."""

    stmt: Select[Any]
    owner_index: int  # the parent key's position in the page row
    build: Callable[[Row], Any]  # a collection row (owner key first) -> the item sent


def _simple_mapper(mapper: Mapper[Any]) -> Table | None:
    # Inheritance and polymorphic loading add criteria a plain table read would miss.
    table = mapper.local_table
    if mapper.inherits is not None or mapper.polymorphic_on is not None:
        return None
    return table if isinstance(table, Table) else None


def _is_equality(clause: Any, left: ColumnElement[Any], right: ColumnElement[Any]) -> bool:
    # Only a plain ``a = b`` join: extra criteria in a custom primaryjoin need the ORM.
    return bool(clause.compare(left == right) or clause.compare(right == left))


def _column(mapper: Mapper[Any], table: Table, spec: FieldSpec) -> Column[Any] | None:
    if spec.kind == "collection":
        return None
    prop = mapper.get_property(spec.attr)
    columns = getattr(prop, "columns", None)
    if not columns:
        return None
    column = columns[0]
    return column if isinstance(column, Column) and column.table is table else None


def _code(expressions: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{name!r}: {expr}" for name, expr in expressions.items()) + "}"


def _compile(args: str, body: str, env: Mapping[str, Any] | None = None) -> Callable[..., Any]:
    # A generated dict display per row is several times faster than a loop over a field plan;
    # only field names (repr'd), integer positions and the names of ``env`` (the link
    # builders, ``_l<n>``) go into the source.
    namespace: dict[str, Any] = dict(env or {})
    exec(f"def build({args}):\n    return {body}\n", namespace)
    builder: Callable[..., Any] = namespace["build"]
    return builder


class Reader:
    """The compiled Core read path of one resource (``None`` from :meth:`build` when the
    resource needs the ORM path)."""

    def __init__(
        self,
        table: Table,
        froms: Any,
        columns: list[ColumnElement[Any]],
        build: Callable[..., dict[str, Any]],
        collections: list[_Collection],
        item_type: Any,
        lookup: ColumnElement[Any],
        order_columns: Mapping[str, ColumnElement[Any]],
        default_order: list[ColumnElement[Any]],
        list_type: Any,
    ) -> None:
        self.table = table
        self.collections = collections
        self._build = build
        self.order_columns = order_columns
        self.base: Select[Any] = select(*columns).select_from(froms)
        self.default_order = default_order
        limit = bindparam("_rest_limit", type_=Integer)
        offset = bindparam("_rest_offset", type_=Integer)
        self._window = (limit, offset)
        # The unfiltered list (counted and not), its count and the retrieve: built once, only
        # bound per request.
        self.total_index = len(columns)
        self.list_stmt = self.base.order_by(*default_order).limit(limit).offset(offset)
        self.count_stmt: Select[Any] = select(func.count()).select_from(table)
        self.counted_list_stmt = self._counted(self.list_stmt, self.count_stmt)
        self.get_stmt = self.base.where(lookup == bindparam("_rest_key"))
        self.item_adapter: TypeAdapter[Any] = TypeAdapter(item_type)
        self.page_adapter: TypeAdapter[Any] = TypeAdapter(list_type)

    # -- building -------------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        model: type[Any],
        readable: Mapping[str, FieldSpec],
        nested: Mapping[str, Mapping[str, FieldSpec]],
        lookup: FieldSpec,
        order_columns: Mapping[str, Any],
        default_order: Sequence[str],
        pk_attr: str,
        page_fields: Sequence[str],
        links: Mapping[str, Link] | None = None,
    ) -> Reader | None:
        """The reader of a resource showing ``readable``, ``nested`` mapping a relation to
        the (flat) fields shown of its objects, ``links`` the relations sent as links;
        ``None`` when a field needs the ORM: a model with inheritance, a relation with a
        custom join or a composite key, a column that is not one of the model's own
        table."""
        links = links or {}
        env: dict[str, Any] = {}  # the link builders the generated code calls
        mapper: Mapper[Any] = sa_inspect(model)
        table = _simple_mapper(mapper)
        if table is None:
            return None
        columns: list[ColumnElement[Any]] = []
        positions: dict[Column[Any], int] = {}

        def position(column: ColumnElement[Any]) -> int:
            if column not in positions:
                positions[column] = len(columns)  # type: ignore[index]
                columns.append(column)
            return positions[column]  # type: ignore[index]

        froms: Any = table
        expressions: dict[str, str] = {}
        types: dict[str, Any] = {}
        collections: list[_Collection] = []
        for name, spec in readable.items():
            relation = spec.relationship
            link = links.get(name)
            call = ""
            if link is not None:
                call = f"_l{len(env)}"
                env[call] = link.url
                if spec.kind == "fk" and link.by_pk:
                    # The foreign key is the related primary key: no join.
                    found = _column(mapper, table, spec)
                    if found is None:
                        return None
                    expressions[name] = f"{call}(r[{position(found)}])"
                    types[name] = str | None if spec.nullable else str
                    continue
            if spec.kind == "collection" or (spec.kind == "fk" and (name in nested or link)):
                if relation is None:
                    return None
                target = _simple_mapper(relation.mapper)
                if target is None:
                    return None
                sub = nested.get(name)
                shown: dict[str, Column[Any]] = {}
                if link is not None:  # the related lookup column (a slug), or its key
                    key_column = getattr(relation.mapper.attrs.get(link.key), "columns", [None])[0]
                    if not isinstance(key_column, Column) or key_column.table is not target:
                        return None
                    shown = {"": key_column}
                elif sub is None:  # a collection of ids
                    pk = relation.mapper.primary_key
                    if len(pk) != 1 or not isinstance(pk[0], Column) or pk[0].table is not target:
                        return None
                    shown = {"": pk[0]}
                else:
                    for sub_name, sub_spec in sub.items():
                        found = _column(relation.mapper, target, sub_spec)
                        if found is None:
                            return None
                        shown[sub_name] = found
                sub_type: Any = _typed_dict(f"{model.__name__}_{name}", sub) if sub else None
                if spec.kind == "fk":
                    joined = _join_one(relation, table, target)
                    if joined is None:
                        return None
                    local, remote = joined
                    alias = target.alias()
                    froms = froms.outerjoin(alias, alias.c[remote.key] == local)
                    present = position(alias.c[remote.key])
                    if link is not None:
                        value = f"{call}(r[{position(alias.c[shown[''].key])}])"
                        expressions[name] = f"None if r[{present}] is None else {value}"
                        types[name] = str | None if spec.nullable else str
                        continue
                    inner = {n: f"r[{position(alias.c[c.key])}]" for n, c in shown.items()}
                    expressions[name] = f"None if r[{present}] is None else {_code(inner)}"
                    types[name] = sub_type | None if spec.nullable else sub_type
                else:
                    collection = _collection(relation, table, target, shown, position, call, env)
                    if collection is None:
                        return None
                    owner = collection.owner_index
                    expressions[name] = f"c[{len(collections)}].get(r[{owner}], [])"
                    collections.append(collection)
                    if link is not None:
                        item: Any = str
                    elif sub is not None:
                        item = sub_type
                    else:
                        item = _python_type(shown[""])
                    types[name] = list[item]
                continue
            found = _column(mapper, table, spec)
            if found is None:
                return None
            expressions[name] = f"r[{position(found)}]"
            types[name] = spec.annotation | None if spec.nullable else spec.annotation
        lookup_column = _column(mapper, table, lookup)
        pk_column = _column(mapper, table, readable.get(pk_attr) or lookup)
        if lookup_column is None or pk_column is None:
            return None
        core_order: dict[str, ColumnElement[Any]] = {}
        for key, attribute in order_columns.items():
            found = getattr(getattr(attribute, "property", None), "columns", [None])[0]
            if not isinstance(found, Column) or found.table is not table:
                return None
            core_order[key] = found
        default: list[ColumnElement[Any]] = []
        named = set()
        for entry in default_order:
            key = entry.removeprefix("-")
            named.add(key)
            default.append(core_order[key].desc() if entry.startswith("-") else core_order[key])
        if pk_attr not in named:
            default.append(pk_column.asc())
        item_type = _typed_dict(f"{model.__name__}Item", None, types)
        page_types = {
            "items": list[item_type],  # type: ignore[valid-type]
            "total": int | None,
            "limit": int,
            "offset": int,
            "links": dict[str, str | None],
            "next_cursor": str | None,  # a cursor page is listed by the ORM path
        }
        shape = {n: page_types[n] for n in page_fields}
        page_type = _typed_dict(f"{model.__name__}Page", None, shape)
        build = _compile("r, c", _code(expressions), env)
        return cls(
            table,
            froms,
            columns,
            build,
            collections,
            item_type,
            lookup_column,
            core_order,
            default,
            page_type,
        )

    # -- reading --------------------------------------------------------------------------------
    async def rows(self, session: Any, stmt: Select[Any], params: Mapping[str, Any]) -> list[Any]:
        """The items of the rows ``stmt`` selects, their collections loaded."""
        return (await self._load(session, stmt, params))[0]

    async def page(
        self,
        session: Any,
        clauses: list[ColumnElement[bool]],
        order: list[ColumnElement[Any]] | None,
        limit: int,
        offset: int,
        count: bool,
    ) -> tuple[list[Any], int | None]:
        """One page of items (the filter ``clauses``, the ``order`` or the default) and the
        number of rows the filters keep, when counted.

        The count rides on the page's statement as a scalar subquery (the database runs it
        once), which saves a round trip; an empty page carries no row, so it counts apart.
        """
        params = {"_rest_limit": limit, "_rest_offset": offset}
        if not clauses and order is None:
            stmt = self.counted_list_stmt if count else self.list_stmt
        else:
            limit_param, offset_param = self._window
            stmt = self.base.where(*clauses).order_by(*(order or self.default_order))
            stmt = stmt.limit(limit_param).offset(offset_param)
            if count:
                stmt = self._counted(stmt, self.count_stmt.where(*clauses))
        items, rows = await self._load(session, stmt, params)
        if not count:
            return items, None
        if rows:
            return items, int(rows[0][self.total_index])
        counter = self.count_stmt.where(*clauses) if clauses else self.count_stmt
        return items, int((await session.execute(counter)).scalar_one())

    @staticmethod
    def _counted(stmt: Select[Any], counter: Select[Any]) -> Select[Any]:
        # Not correlated: the subquery counts the table, not the row it sits beside.
        return stmt.add_columns(counter.correlate(None).scalar_subquery())

    async def _load(
        self, session: Any, stmt: Select[Any], params: Mapping[str, Any]
    ) -> tuple[list[Any], list[Any]]:
        rows = (await session.execute(stmt, params)).all()
        loaded: list[dict[Any, list[Any]]] = []
        for collection in self.collections:
            owners = list({row[collection.owner_index] for row in rows} - {None})
            groups: dict[Any, list[Any]] = {}
            if owners:
                result = await session.execute(collection.stmt, {"ids": owners})
                build = collection.build
                for row in result:
                    groups.setdefault(row[0], []).append(build(row))
            loaded.append(groups)
        build_item = self._build
        return [build_item(row, loaded) for row in rows], rows


def _python_type(column: Column[Any]) -> Any:
    try:
        return column.type.python_type
    except NotImplementedError:
        return Any


def _typed_dict(
    name: str, specs: Mapping[str, FieldSpec] | None, types: Mapping[str, Any] | None = None
) -> Any:
    fields = dict(types or {})
    for spec_name, spec in (specs or {}).items():
        fields[spec_name] = spec.annotation | None if spec.nullable else spec.annotation
    return TypedDict(name, fields)  # type: ignore[operator]


def _join_one(
    relation: RelationshipProperty[Any], table: Table, target: Table
) -> tuple[Column[Any], Column[Any]] | None:
    pairs = relation.synchronize_pairs
    if relation.direction is not MANYTOONE or relation.secondary is not None or len(pairs) != 1:
        return None
    remote, local = pairs[0]  # many-to-one: (the target's key, our foreign key)
    if not (isinstance(local, Column) and isinstance(remote, Column)):
        return None
    if local.table is not table or remote.table is not target:
        return None
    if not _is_equality(relation.primaryjoin, local, remote):
        return None
    return local, remote


def _collection(
    relation: RelationshipProperty[Any],
    table: Table,
    target: Table,
    shown: Mapping[str, Column[Any]],
    position: Callable[[ColumnElement[Any]], int],
    call: str = "",
    env: Mapping[str, Any] | None = None,
) -> _Collection | None:
    pairs = relation.synchronize_pairs
    if len(pairs) != 1:
        return None
    local, remote = pairs[0]  # (our key, the column holding it on the other side)
    if not (isinstance(local, Column) and isinstance(remote, Column)) or local.table is not table:
        return None
    if not _is_equality(relation.primaryjoin, local, remote):
        return None
    wanted = list(shown.values())
    if relation.direction is ONETOMANY and relation.secondary is None:
        if remote.table is not target:
            return None
        stmt = select(remote, *wanted)
    elif relation.direction is MANYTOMANY and isinstance(relation.secondary, Table):
        second = relation.secondary_synchronize_pairs or []
        if len(second) != 1 or remote.table is not relation.secondary:
            return None
        target_key, secondary_key = second[0]
        if not _is_equality(relation.secondaryjoin, target_key, secondary_key):
            return None
        stmt = select(remote, *wanted).select_from(
            target.join(relation.secondary, target_key == secondary_key)
        )
    else:
        return None
    stmt = stmt.where(remote.in_(bindparam("ids", expanding=True)))
    if relation.order_by:
        stmt = stmt.order_by(*relation.order_by)
    if list(shown) == [""]:
        # One value per item: an id, or the link a builder of ``env`` makes of it.
        build = _compile("r", f"{call}(r[1])" if call else "r[1]", env)
    else:
        build = _compile("r", _code({n: f"r[{i + 1}]" for i, n in enumerate(shown)}))
    return _Collection(stmt, position(local), build)


def links(url: str, limit: int, offset: int, has_next: bool) -> dict[str, str | None]:
    """``self``/``prev``/``next`` of an offset page, as :func:`transom.db.paginate_offset`
    writes them."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))

    def link(at: int) -> str:
        query["limit"] = str(limit)
        query["offset"] = str(at)
        return urlunsplit(parts._replace(query=urlencode(query)))

    return {
        "self": link(offset),
        "prev": link(max(0, offset - limit)) if offset > 0 else None,
        "next": link(offset + limit) if has_next else None,
    }
