"""Pagination: offset (page numbers, with a total) and keyset (cursors, stable under writes)."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import math
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from uuid import UUID

import orjson
from sqlalchemy import Select, and_, func, inspect, or_, select
from sqlalchemy.sql import ColumnElement, operators
from sqlalchemy.sql.elements import UnaryExpression

from transom.db._compat import order_by_clauses
from transom.exceptions import HTTPException, RequestValidationError

if TYPE_CHECKING:
    from transom.db.sessions import DbSession

__all__ = ["CursorPage", "OffsetPage", "Page", "paginate", "paginate_cursor", "paginate_offset"]

T = TypeVar("T")
U = TypeVar("U")

DEFAULT_PER_PAGE = 20


def _query_int(session: DbSession, name: str, given: int | None, default: int) -> int:
    if given is not None:
        return given
    request = session.request
    raw = request.query.get(name) if request is not None else None
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise RequestValidationError(
            [{"loc": ["query", name], "msg": "must be an integer", "type": "int_parsing"}]
        ) from None


def _link(session: DbSession, **params: Any) -> str | None:
    request = session.request
    if request is None:
        return None
    parts = urlsplit(str(request.url))
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    for key, value in params.items():
        if value is None:
            query.pop(key, None)
        else:
            query[key] = str(value)
    return urlunsplit(parts._replace(query=urlencode(query)))


@dataclasses.dataclass
class Page(Generic[T]):
    """One page of results with everything a client needs to navigate.

    Serializes to ``{"items", "total", "page", "per_page", "pages", "links"}``; ``links`` has
    absolute ``self``/``first``/``prev``/``next``/``last`` URLs when a request is known.
    """

    items: list[T]
    total: int | None
    page: int
    per_page: int
    pages: int | None
    links: dict[str, str | None]

    #: What :func:`paginate` reads from the request, for the OpenAPI document of ``-> Page[X]``.
    __openapi_query__: ClassVar[tuple[dict[str, Any], ...]] = (
        {
            "name": "page",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 1, "default": 1},
        },
        {
            "name": "per_page",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 1, "default": DEFAULT_PER_PAGE},
        },
    )

    @property
    def has_next(self) -> bool:
        """True when a later page exists."""
        if self.pages is None:
            return len(self.items) == self.per_page
        return self.page < self.pages

    def map(self, func: Callable[[T], U]) -> Page[U]:
        """Return the same page with each item converted (e.g. to a Pydantic model)."""
        return Page(
            [func(i) for i in self.items],
            self.total,
            self.page,
            self.per_page,
            self.pages,
            self.links,
        )

    def __json__(self) -> dict[str, Any]:
        """The JSON shape, items serialized through their own ``__json__`` when they have one."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["items"] = [_jsonable(i) for i in self.items]
        return data


@dataclasses.dataclass
class CursorPage(Generic[T]):
    """One slice of keyset-paginated results; pass ``next_cursor`` back as ``?cursor=``."""

    items: list[T]
    limit: int
    next_cursor: str | None
    total: int | None
    links: dict[str, str | None]

    #: What :func:`paginate_cursor` reads from the request, for the OpenAPI document.
    __openapi_query__: ClassVar[tuple[dict[str, Any], ...]] = (
        {
            "name": "cursor",
            "in": "query",
            "required": False,
            "description": "The next_cursor of the previous page; none for the first page.",
            "schema": {"type": "string"},
        },
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 1, "default": DEFAULT_PER_PAGE},
        },
    )

    def map(self, func: Callable[[T], U]) -> CursorPage[U]:
        """Return the same page with each item converted."""
        return CursorPage(
            [func(i) for i in self.items], self.limit, self.next_cursor, self.total, self.links
        )

    def __json__(self) -> dict[str, Any]:
        """The JSON shape, items serialized through their own ``__json__`` when they have one."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["items"] = [_jsonable(i) for i in self.items]
        return data


@dataclasses.dataclass
class OffsetPage(Generic[T]):
    """One window of results by ``limit``/``offset`` (the style many public APIs use).

    Serializes to ``{"items", "total", "limit", "offset", "links"}``; ``links`` has absolute
    ``self``/``prev``/``next`` URLs when a request is known.
    """

    items: list[T]
    total: int | None
    limit: int
    offset: int
    links: dict[str, str | None]

    #: What :func:`paginate_offset` reads from the request, for the OpenAPI document.
    __openapi_query__: ClassVar[tuple[dict[str, Any], ...]] = (
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 1, "default": DEFAULT_PER_PAGE},
        },
        {
            "name": "offset",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 0, "default": 0},
        },
    )

    def map(self, func: Callable[[T], U]) -> OffsetPage[U]:
        """Return the same window with each item converted."""
        return OffsetPage(
            [func(i) for i in self.items], self.total, self.limit, self.offset, self.links
        )

    def __json__(self) -> dict[str, Any]:
        """The JSON shape, items serialized through their own ``__json__`` when they have one."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["items"] = [_jsonable(i) for i in self.items]
        return data


def _jsonable(item: Any) -> Any:
    to_json = getattr(item, "__json__", None)
    return to_json() if callable(to_json) else item


async def _count(session: DbSession, stmt: Select[Any]) -> int:
    counted = select(func.count()).select_from(stmt.order_by(None).subquery())
    return int((await session.execute(counted)).scalar_one())


async def paginate(
    session: DbSession,
    stmt: Select[T],
    *,
    page: int | None = None,
    per_page: int | None = None,
    max_per_page: int = 100,
    count: bool = True,
) -> Page[T]:
    """Run ``stmt`` for one page of results (``LIMIT/OFFSET``), with the total and links.

    ``page`` and ``per_page`` default to the request's ``?page=`` and ``?per_page=``
    (1 and 20). Give ``stmt`` an ``order_by``, or pages may overlap.

    Args:
        session: The session to run on.
        stmt: A ``select()`` of one entity or column.
        page: 1-based page number.
        per_page: Items per page, capped at ``max_per_page``.
        max_per_page: Upper bound for client-chosen page sizes.
        count: Also run ``SELECT count(*)`` for ``total``/``pages`` (set False on huge tables).

    Raises:
        RequestValidationError: ``page``/``per_page`` in the query string are not integers.
    """
    page_no = max(1, _query_int(session, "page", page, 1))
    size = min(max(1, _query_int(session, "per_page", per_page, DEFAULT_PER_PAGE)), max_per_page)
    result = await session.execute(stmt.limit(size).offset((page_no - 1) * size))
    items = list(result.scalars().all())
    total = await _count(session, stmt) if count else None
    pages = max(1, math.ceil(total / size)) if total is not None else None
    has_next = page_no < pages if pages is not None else len(items) == size
    links = {
        "self": _link(session, page=page_no, per_page=size),
        "first": _link(session, page=1, per_page=size),
        "prev": _link(session, page=page_no - 1, per_page=size) if page_no > 1 else None,
        "next": _link(session, page=page_no + 1, per_page=size) if has_next else None,
        "last": _link(session, page=pages, per_page=size) if pages is not None else None,
    }
    return Page(items, total, page_no, size, pages, links)


async def paginate_offset(
    session: DbSession,
    stmt: Select[T],
    *,
    limit: int | None = None,
    offset: int | None = None,
    max_limit: int = 100,
    count: bool = True,
) -> OffsetPage[T]:
    """Run ``stmt`` for ``limit`` rows from ``offset`` (``LIMIT/OFFSET``), with the total.

    ``limit`` and ``offset`` default to the request's ``?limit=`` and ``?offset=`` (20 and 0);
    a client's ``limit`` is capped at ``max_limit`` (and at least 1), a negative offset is 0.
    Give ``stmt`` an ``order_by``, or windows may overlap.

    Raises:
        RequestValidationError: ``limit``/``offset`` in the query string are not integers.
    """
    size = min(max(1, _query_int(session, "limit", limit, DEFAULT_PER_PAGE)), max_limit)
    start = max(0, _query_int(session, "offset", offset, 0))
    result = await session.execute(stmt.limit(size).offset(start))
    items = list(result.scalars().all())
    total = await _count(session, stmt) if count else None
    has_next = start + size < total if total is not None else len(items) == size
    links = {
        "self": _link(session, limit=size, offset=start),
        "prev": _link(session, limit=size, offset=max(0, start - size)) if start > 0 else None,
        "next": _link(session, limit=size, offset=start + size) if has_next else None,
    }
    return OffsetPage(items, total, size, start, links)


# --- keyset pagination ----------------------------------------------------------------------


def _encode_value(value: Any) -> Any:
    # Tag types JSON can't round-trip so the cursor compares equal to the column values.
    if isinstance(value, datetime):
        return {"dt": value.isoformat()}
    if isinstance(value, date):
        return {"d": value.isoformat()}
    if isinstance(value, Decimal):
        return {"dec": str(value)}
    if isinstance(value, UUID):
        return {"uuid": str(value)}
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        ((tag, text),) = value.items()
        decoders: dict[str, Callable[[str], Any]] = {
            "dt": datetime.fromisoformat,
            "d": date.fromisoformat,
            "dec": Decimal,
            "uuid": UUID,
        }
        if tag in decoders:
            return decoders[tag](text)
    return value


def encode_cursor(values: Sequence[Any]) -> str:
    """Encode the sort-key values of the last row seen into an opaque URL-safe cursor."""
    raw = orjson.dumps([_encode_value(v) for v in values])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    """Decode a cursor made by :func:`encode_cursor`; a tampered one answers 422."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = orjson.loads(raw)
        if not isinstance(values, list):
            raise ValueError("not a list")
        return [_decode_value(v) for v in values]
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        raise RequestValidationError(
            [{"loc": ["query", "cursor"], "msg": "invalid cursor", "type": "value_error"}]
        ) from None


def _sort_keys(stmt: Select[Any]) -> list[tuple[ColumnElement[Any], bool]]:
    """(column, descending) for each ORDER BY term, plus the primary key as a tie-breaker."""
    keys: list[tuple[ColumnElement[Any], bool]] = []
    for clause in order_by_clauses(stmt):
        descending = False
        element: Any = clause
        if isinstance(clause, UnaryExpression) and clause.modifier in (
            operators.desc_op,
            operators.asc_op,
        ):
            descending = clause.modifier is operators.desc_op
            element = clause.element
        keys.append((element, descending))
    entity = stmt.column_descriptions[0].get("entity") if stmt.column_descriptions else None
    if entity is not None:
        seen = {getattr(col, "key", None) for col, _ in keys}
        for pk in inspect(entity).primary_key:
            if pk.key not in seen:
                keys.append((pk, False))
    if not keys:
        raise ValueError("keyset pagination needs an ORDER BY on unique, non-null columns")
    return keys


def _after(keys: list[tuple[ColumnElement[Any], bool]], values: list[Any]) -> ColumnElement[bool]:
    # (a > x) OR (a = x AND b > y) OR ...: works with mixed directions on every engine,
    # unlike row-value comparison.
    alternatives = []
    for i, (column, descending) in enumerate(keys):
        equal = [keys[j][0] == values[j] for j in range(i)]
        beyond = column < values[i] if descending else column > values[i]
        alternatives.append(and_(*equal, beyond))
    return or_(*alternatives)


def _value_of(item: Any, column: ColumnElement[Any]) -> Any:
    key = getattr(column, "key", None)
    if key is None:
        raise ValueError(f"cannot read sort key {column!r} from a result row")
    mapper = getattr(inspect(item, raiseerr=False), "mapper", None)
    if mapper is not None:
        prop = mapper.get_property_by_column(column)
        return getattr(item, prop.key)
    return getattr(item, key)


async def paginate_cursor(
    session: DbSession,
    stmt: Select[T],
    *,
    cursor: str | None = None,
    limit: int | None = None,
    max_limit: int = 100,
    count: bool = False,
) -> CursorPage[T]:
    """Keyset pagination: fast at any depth and stable while rows are inserted.

    The statement's ``ORDER BY`` defines the key (the primary key is appended as a
    tie-breaker); its columns must be non-null. ``cursor`` and ``limit`` default to the
    request's ``?cursor=`` and ``?limit=``.

    Args:
        session: The session to run on.
        stmt: A ``select()`` of one entity, ordered.
        cursor: The ``next_cursor`` of the previous page; ``None`` for the first page.
        limit: Items per page, capped at ``max_limit``.
        max_limit: Upper bound for client-chosen page sizes.
        count: Also compute ``total`` (a ``count(*)`` over the whole query).
    """
    keys = _sort_keys(stmt)
    size = min(max(1, _query_int(session, "limit", limit, DEFAULT_PER_PAGE)), max_limit)
    if cursor is None and session.request is not None:
        cursor = session.request.query.get("cursor") or None
    ordered = stmt.order_by(None).order_by(
        *[col.desc() if desc else col.asc() for col, desc in keys]
    )
    query = ordered
    if cursor:
        values = decode_cursor(cursor)
        if len(values) != len(keys):
            raise HTTPException(422, detail="cursor does not match this listing")
        query = ordered.where(_after(keys, values))
    rows = list((await session.execute(query.limit(size + 1))).scalars().all())
    items, more = rows[:size], len(rows) > size
    next_cursor = (
        encode_cursor([_value_of(items[-1], col) for col, _ in keys]) if more and items else None
    )
    total = await _count(session, stmt) if count else None
    links = {
        "self": _link(session, cursor=cursor, limit=size),
        "next": _link(session, cursor=next_cursor, limit=size) if next_cursor else None,
    }
    return CursorPage(items, size, next_cursor, total, links)
