"""``ModelResource``: a model served as a complete, documented JSON API.

::

    class Posts(ModelResource, model=Post, prefix="/api/posts"):
        read_only = ["id", "author", "created_at"]
        filters = ["author", "published_at__gte", "tags"]
        ordering = ["-created_at", "title"]
        search = ["title", "body"]
        permissions = [IsAuthenticatedOrReadOnly, OwnerCanEdit("author")]

    app.include(Posts)

serves ``GET/POST /api/posts`` and ``GET/PUT/PATCH/DELETE /api/posts/{id}``, each in
``/openapi.json``. Each request is one transaction: the handler commits before answering, so a
failing write answers its error (409, 422, 503) and changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar, Literal, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ValidationError
from sqlalchemy import Select, select

from transom.db import DbSessionDep, paginate_cursor, paginate_offset
from transom.db.errors import is_unstorable_value, to_http_exception
from transom.exceptions import HTTPException
from transom.openapi import declare_responses
from transom.requests import Request
from transom.responses import Response
from transom.rest.battery import EXTENSION_KEY, Rest, RestConfig
from transom.rest.compiled import Compiled, OperationDoc, list_parameters, scalar_schema
from transom.rest.context import Context, _Action, extensions_of
from transom.rest.errors import ErrorFormat, Problem, error_schemas, problem_response
from transom.rest.filters import (
    apply_filters,
    ordering_clauses,
    search_clause,
)
from transom.rest.permissions import IsAuthenticatedOrReadOnly, Permission
from transom.rest.reader import Reader, links
from transom.rest.schemas import FieldSpec
from transom.rest.statuses import error_statuses
from transom.routing import Router

__all__ = ["ModelResource"]

logger = logging.getLogger("transom.rest")
F = TypeVar("F", bound=Callable[..., Any])
OPERATIONS = ("list", "retrieve", "create", "update", "partial_update", "destroy")
_JSON = "application/json"


class ModelResource:
    """Base class of resources; subclass it with ``model=`` and ``prefix=`` keywords.

    Class attributes (all optional) shape the API; methods are hooks to override.
    """

    #: The SQLAlchemy model served.
    model: ClassVar[type[Any]]
    #: The URL prefix of the collection (``"/api/posts"``).
    prefix: ClassVar[str]
    #: Route-name prefix and operationId prefix (default: the model name in lower case).
    name: ClassVar[str | None] = None
    #: The field that identifies an object in URLs (default: the primary key); unique.
    lookup: ClassVar[str | None] = None
    #: Public fields (default: columns and many-to-one relations); collections by name.
    fields: ClassVar[Sequence[str] | None] = None
    exclude: ClassVar[Sequence[str]] = ()
    #: Sent, never accepted (the primary key always is).
    read_only: ClassVar[Sequence[str]] = ()
    #: Accepted, never sent (a password).
    write_only: ClassVar[Sequence[str]] = ()
    #: Relations sent as objects: ``{"author": True}`` (its columns), a resource class (its
    #: read schema) or a Pydantic model. Loaded eagerly: no query per item.
    nested: ClassVar[Mapping[str, Any]] = {}
    #: Relations sent as links, the path of the related object's retrieve route
    #: (``"/api/users/3"``; a list of them for a collection): ``["author"]``, or
    #: ``{"author": Users}`` to name the resource linked to when several serve the model.
    links: ClassVar[Sequence[str] | Mapping[str, type[ModelResource]]] = ()
    #: ``"field"`` or ``"field__lookup"`` (gt, gte, lt, lte, in, isnull, icontains).
    filters: ClassVar[Sequence[str]] = ()
    #: Fields ``?ordering=`` may name (``-`` for descending); as written, the default order.
    ordering: ClassVar[Sequence[str]] = ()
    #: Text fields ``?search=`` looks in.
    search: ClassVar[Sequence[str]] = ()
    pagination: ClassVar[Literal["offset", "cursor"]] = "offset"
    #: Count the rows of each list (``total``); turn off on big tables.
    count: ClassVar[bool] = True
    default_limit: ClassVar[int | None] = None
    max_limit: ClassVar[int | None] = None
    permissions: ClassVar[Sequence[Permission | type[Permission]]] = (IsAuthenticatedOrReadOnly,)
    #: The standard operations served (drop some for a read-only API).
    operations: ClassVar[Sequence[str]] = OPERATIONS
    #: Pydantic models replacing the derived ones.
    read_schema: ClassVar[type[BaseModel] | None] = None
    create_schema: ClassVar[type[BaseModel] | None] = None
    update_schema: ClassVar[type[BaseModel] | None] = None
    #: Per-resource overrides of :class:`~transom.rest.RestConfig`.
    error_format: ClassVar[ErrorFormat | None] = None
    unknown_fields: ClassVar[Literal["forbid", "ignore"] | None] = None
    #: A rate limit for every route of the resource (``"100/minute"``, Security battery).
    throttle: ClassVar[str | None] = None
    tags: ClassVar[Sequence[str] | None] = None
    #: Names of the generated schemas: ``<prefix>Read``, ``Create``, ``Patch``, ``Page``
    #: (default: the class name).
    schema_prefix: ClassVar[str | None] = None

    def __init_subclass__(
        cls, *, model: type[Any] | None = None, prefix: str | None = None, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        if model is not None:
            cls.model = model
        if prefix is not None:
            cls.prefix = prefix

    def __init__(self) -> None:
        self._compiled: Compiled | None = None
        self._config: RestConfig | None = None

    # -- hooks ------------------------------------------------------------------------------
    def query(self, ctx: Context) -> Select[Any]:
        """The objects this resource serves: override to scope them (``.where(...)``)."""
        return select(self.model)

    async def before_create(self, ctx: Context, obj: Any) -> None:
        """Called with the new object before it is inserted (same transaction)."""

    async def after_create(self, ctx: Context, obj: Any) -> None:
        """Called after the insert was flushed (it has its id), before the commit."""

    async def before_update(self, ctx: Context, obj: Any, changes: dict[str, Any]) -> None:
        """Called before ``changes`` (field name -> value) are applied."""

    async def after_update(self, ctx: Context, obj: Any) -> None:
        """Called after the update was flushed, before the commit."""

    async def before_delete(self, ctx: Context, obj: Any) -> None:
        """Called before the object is deleted."""

    async def after_delete(self, ctx: Context, obj: Any) -> None:
        """Called after the delete was flushed, before the commit."""

    # -- building -----------------------------------------------------------------------------
    @classmethod
    def resource_name(cls) -> str:
        """Route names (``posts.list``) and operationIds (``posts_list``) start with it: the
        ``name`` attribute, else the class name in lower case."""
        return cls.name or cls.__name__.lower()

    def fields_by_name(self) -> dict[str, FieldSpec]:
        """The public fields of the resource (after ``fields``/``exclude``)."""
        return self._compiled_for(self._config or RestConfig()).fields

    @property
    def compiled(self) -> Compiled | None:
        """What the resource was compiled into (its fields, statements, schemas and links)
        once its routes are built; ``None`` before."""
        return self._compiled

    def _compiled_for(self, config: RestConfig) -> Compiled:
        if self._compiled is None:
            self._config = config
            self._compiled = Compiled(self, config)
        return self._compiled

    def _state(self, request: Request) -> Compiled:
        compiled = self._compiled
        if compiled is None:
            battery = extensions_of(request).get(EXTENSION_KEY)
            config = battery.config if isinstance(battery, Rest) else RestConfig()
            compiled = self._compiled_for(config)
        return compiled

    @classmethod
    def __transom_router__(cls, app: Any) -> Router:
        """The routes of this resource (``app.include(Posts)`` calls it): one instance of the
        resource per app."""
        return cls().router(app)

    def router(self, app: Any) -> Router:
        """Build the routes (each carries what the OpenAPI document needs)."""
        cls = type(self)
        if not hasattr(cls, "model") or not hasattr(cls, "prefix"):
            raise TypeError(f"{cls.__name__} needs model= and prefix= (class keywords)")
        # Installed now with its defaults unless the app installed it first: the routes are
        # built from its settings (a later app.install(Rest(...)) fails loudly).
        battery = app.batteries.find(Rest) or app.install(Rest())
        compiled = self._compiled_for(battery.config)
        name = cls.resource_name()
        tags = list(cls.tags) if cls.tags is not None else [name]
        router = Router(cls.prefix, name=name, tags=tags)
        lookup = compiled.lookup
        converter = {int: ":int"}.get(lookup.annotation, "")
        if getattr(lookup.annotation, "__name__", "") == "UUID":
            converter = ":uuid"
        item = f"/{{{lookup.name}{converter}}}"
        _, media, _ = error_schemas(compiled.error_format)
        errors_name = error_schemas(compiled.error_format)[0]
        error = {"content": {media: {"schema": {"$ref": f"#/components/schemas/{errors_name}"}}}}
        path_param = {
            "name": lookup.name,
            "in": "path",
            "required": True,
            "schema": scalar_schema(lookup.annotation),
        }
        std: dict[str, tuple[str, str, Callable[[Context], Awaitable[Response]], int, Any]] = {
            "list": ("", "GET", self._list, 200, compiled.list_model),
            "create": ("", "POST", self._create, 201, compiled.read_model),
            "retrieve": (item, "GET", self._retrieve, 200, compiled.read_model),
            "update": (item, "PUT", self._update, 200, compiled.read_model),
            "partial_update": (item, "PATCH", self._partial_update, 200, compiled.read_model),
            "destroy": (item, "DELETE", self._destroy, 204, None),
        }
        throttle = self._throttle()  # one budget for every route of the resource
        # Custom actions first: a static segment (``/drafts``) before ``/{id}``.
        for attr in dir(cls):
            declared = getattr(getattr(cls, attr, None), "__transom_action__", None)
            if not isinstance(declared, _Action):
                continue
            path = f"{item}/{declared.path}" if declared.detail else f"/{declared.path}"
            for method in declared.methods:
                op_id = f"{name}_{declared.name}_{method.lower()}"
                endpoint = self._endpoint(
                    declared.name, self._run_action(declared), declared.detail, declared.perm
                )
                router.add_route(
                    path,
                    endpoint,
                    [method],
                    name=f"{declared.name}_{method.lower()}",
                    status_code=declared.status_code,
                    operation_id=op_id,
                    summary=declared.summary or f"{declared.name.replace('_', ' ').capitalize()}",
                    dependencies=throttle,
                )
                codes = error_statuses(cls.model, compiled, declared.name, method, declared.detail)
                _document_errors(endpoint, error, codes)
                endpoint.__transom_rest_doc__ = OperationDoc(  # type: ignore[attr-defined]
                    [path_param] if declared.detail else [], None
                )
        for op in cls.operations:
            if op not in std:
                raise ValueError(f"{cls.__name__}: unknown operation {op!r} ({OPERATIONS})")
            path, method, handler, status, out = std[op]
            op_id = f"{name}_{op}"
            endpoint = self._endpoint(op, handler, path == item, None)
            # How links find the retrieve route of a model (transom.rest.links).
            endpoint.__transom_rest_route__ = (self, op, cls.prefix + path)  # type: ignore[attr-defined]
            if out is None:
                endpoint.__annotations__["return"] = None  # documented as 204, no body
            router.add_route(
                path,
                endpoint,
                [method],
                name=op,
                status_code=status,
                response_model=out,
                operation_id=op_id,
                summary=f"{_phrase_op(op)} {cls.model.__name__}",
                dependencies=throttle,
            )
            codes = error_statuses(cls.model, compiled, op, method, path == item)
            _document_errors(endpoint, error, codes)
            params: list[dict[str, Any]] = [path_param] if path == item else []
            if op == "list":
                params += list_parameters(cls, compiled)
            if op in ("update", "partial_update", "destroy"):
                params.append(
                    {
                        "name": "If-Match",
                        "in": "header",
                        "required": False,
                        "description": "The ETag of the version read: 412 when it changed.",
                        "schema": {"type": "string"},
                    }
                )
            body = {"create": compiled.create_model, "update": compiled.create_model}.get(op)
            if op == "partial_update":
                body = compiled.update_model
            endpoint.__transom_rest_doc__ = OperationDoc(params, body)  # type: ignore[attr-defined]
        return router

    def _throttle(self) -> list[Any]:
        rate = type(self).throttle
        if not rate:
            return []
        from transom.security.ratelimit import limit

        return [limit(rate)]

    # -- the generic handler ------------------------------------------------------------------
    def _endpoint(
        self,
        action_name: str,
        handler: Callable[[Context], Awaitable[Response]],
        detail: bool,
        perm: str | None,
    ) -> Callable[..., Any]:
        resource = self

        async def endpoint(request: Request, db: DbSessionDep) -> Any:
            compiled = resource._state(request)
            ctx = Context(resource, request, db, action_name, detail, perm)
            try:
                return await handler(ctx)
            except Problem as exc:
                problem = exc
            except HTTPException as exc:
                problem = Problem.from_http(exc)
            except Exception as exc:
                database = db.database
                translated = to_http_exception(
                    exc, database.metadatas, retry_after=database.config.retry_after
                )
                if translated is None:
                    raise
                problem = Problem.from_http(translated)
            try:
                await db.rollback()  # an error changes nothing
            except Exception:  # the database is gone: the answer says so already
                logger.warning("rollback failed after a %s answer", problem.status, exc_info=True)
            return problem_response(problem, compiled.error_format)

        endpoint.__name__ = f"{type(self).resource_name()}_{action_name}"
        endpoint.__qualname__ = f"{type(self).__name__}.{action_name}"
        endpoint.__doc__ = None
        return endpoint

    async def _check(self, ctx: Context, obj: Any = None) -> None:
        compiled = self._state(ctx.request)
        for permission in compiled.permissions:
            allowed = (
                await permission.has_permission(ctx)
                if obj is None
                else await permission.has_object_permission(ctx, obj)
            )
            if not allowed:
                await self._deny(ctx)

    async def _deny(self, ctx: Context) -> None:
        if await ctx.get_user() is None:
            headers = {}
            auth = extensions_of(ctx.request).get("transom.auth")
            schemes = getattr(auth, "token_schemes", None)
            if schemes:
                headers["WWW-Authenticate"] = next(iter(schemes)).capitalize()
            raise Problem(401, "Authentication required", headers=headers)
        raise Problem(403, "Permission denied")

    def _statement(self, ctx: Context) -> Select[Any]:
        compiled = self._state(ctx.request)
        stmt = self.query(ctx)
        return stmt.options(*compiled.loads) if compiled.loads else stmt

    async def _get(self, ctx: Context) -> Any:
        compiled = self._state(ctx.request)
        value = ctx.request.path_params[compiled.lookup.name]
        column = getattr(self.model, compiled.lookup.attr)
        stmt = self._statement(ctx).where(column == value)
        try:
            obj = (await ctx.db.execute(stmt)).unique().scalar_one_or_none()
        except Exception as exc:
            # A key the column cannot even hold (an id beyond 64 bits) names no object; the
            # driver refused it before sending, so the transaction is untouched.
            if not is_unstorable_value(exc):
                raise
            obj = None
        if obj is None:
            raise Problem(404, f"{self.model.__name__} not found")
        return obj

    async def _read_row(self, ctx: Context, compiled: Compiled, reader: Reader) -> bytes:
        value = ctx.request.path_params[compiled.lookup.name]
        try:
            items = await reader.rows(ctx.db, reader.get_stmt, {"_rest_key": value})
        except Exception as exc:
            if not is_unstorable_value(exc):  # as in _get: a key no column can hold
                raise
            items = []
        if not items:
            raise Problem(404, f"{self.model.__name__} not found")
        return reader.item_adapter.dump_json(items[0])

    async def _reload(self, ctx: Context, obj: Any) -> Any:
        # Server defaults and nested relations as the database has them now.
        compiled = self._state(ctx.request)
        pk = getattr(obj, compiled.pk_attr)
        stmt = (
            self._statement(ctx)
            .where(compiled.pk_column == pk)
            .execution_options(populate_existing=True)
        )
        return (await ctx.db.execute(stmt)).unique().scalar_one()

    def _send(self, compiled: Compiled, obj: Any, status: int, **headers: str) -> Response:
        body = compiled.render(obj)
        return Response(body, status, {"ETag": compiled.etag(body), **headers}, _JSON)

    async def _body(self, ctx: Context, schema: type[BaseModel]) -> BaseModel:
        data = await ctx.request.json()
        try:
            return schema.model_validate(data)
        except ValidationError as exc:
            raise Problem(
                422,
                errors=[
                    {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                    for e in exc.errors(include_url=False)
                ],
            ) from None

    def _check_if_match(self, ctx: Context, compiled: Compiled, obj: Any) -> None:
        header = ctx.request.headers.get("if-match")
        if header is None:
            return
        tags = [t.strip() for t in str(header).split(",")]
        if "*" in tags:
            return
        if compiled.etag(compiled.render(obj)) not in tags:
            raise Problem(412, "The object changed since it was read (ETag mismatch)")

    async def _apply(self, ctx: Context, obj: Any, values: dict[str, Any]) -> None:
        compiled = self._state(ctx.request)
        for name, value in values.items():
            spec = compiled.writable.get(name)
            if spec is None:
                continue  # accepted by an override schema but not a model field
            if spec.kind == "collection":
                value = await self._related(ctx, spec, value or [])
            setattr(obj, spec.attr, value)

    async def _related(self, ctx: Context, spec: FieldSpec, ids: list[Any]) -> list[Any]:
        target = spec.target
        assert target is not None
        assert spec.relationship is not None
        pk = spec.relationship.mapper.primary_key[0]
        wanted = list(dict.fromkeys(ids))
        found = list((await ctx.db.execute(select(target).where(pk.in_(wanted)))).scalars())
        key = spec.relationship.mapper.get_property_by_column(pk).key
        missing = set(wanted) - {getattr(o, key) for o in found}
        if missing:
            raise Problem(
                422,
                errors=[
                    {
                        "loc": ["body", spec.name],
                        "msg": f"unknown ids: {sorted(missing, key=str)}",
                        "type": "db.foreign_key",
                    }
                ],
            )
        return found

    # -- the operations ----------------------------------------------------------------------
    async def _list(self, ctx: Context) -> Response:
        compiled = self._state(ctx.request)
        await self._check(ctx)
        query = ctx.request.query
        reader = compiled.reader
        if reader is not None and type(self).pagination == "offset":
            return await self._list_rows(ctx, compiled, reader)
        stmt = apply_filters(self._statement(ctx), self.model, compiled.filters, query)
        raw_search = query.get("search")
        if raw_search and compiled.search_columns:
            clause = search_clause(raw_search, compiled.search_columns)
            if clause is not None:
                stmt = stmt.where(clause)
        order, names = ordering_clauses(
            query.get("ordering") if compiled.order_columns else None,
            compiled.order_columns,
            compiled.default_order,
        )
        # The primary key breaks ties (pages never overlap), unless the order names it.
        if compiled.pk_attr not in names:
            order.append(compiled.pk_column.asc())
        stmt = stmt.order_by(*order)
        limit = _int_param(query, "limit", compiled.default_limit, 1)
        limit = min(limit, compiled.max_limit)
        data: dict[str, Any]
        if type(self).pagination == "cursor":
            page = await paginate_cursor(
                ctx.db,
                stmt,
                cursor=query.get("cursor") or None,
                limit=limit,
                max_limit=compiled.max_limit,
                count=type(self).count,
            )
            data = {
                "items": [compiled.to_data(o) for o in page.items],
                "limit": page.limit,
                "next_cursor": page.next_cursor,
                "total": page.total,
                "links": page.links,
            }
        else:
            offset = _int_param(query, "offset", 0, 0)
            window = await paginate_offset(
                ctx.db,
                stmt,
                limit=limit,
                offset=offset,
                max_limit=compiled.max_limit,
                count=type(self).count,
            )
            data = {
                "items": [compiled.to_data(o) for o in window.items],
                "total": window.total,
                "limit": window.limit,
                "offset": window.offset,
                "links": window.links,
            }
        value = compiled.list_adapter.validate_python(data, from_attributes=True)
        return Response(compiled.list_adapter.dump_json(value, by_alias=True), 200, None, _JSON)

    async def _list_rows(self, ctx: Context, compiled: Compiled, reader: Reader) -> Response:
        # The list in Core rows (see transom.rest.reader): same answer as the ORM path below.
        query = ctx.request.query
        clauses: list[Any] = [
            item.clause(self.model, query[item.param])
            for item in compiled.filters
            if item.param in query
        ]
        raw_search = query.get("search")
        if raw_search and compiled.search_columns:
            clause = search_clause(raw_search, compiled.search_columns)
            if clause is not None:
                clauses.append(clause)
        raw_order = query.get("ordering") if compiled.order_columns else None
        order = None  # the prebuilt statement's, unless the query string names one
        if raw_order:
            order, names = ordering_clauses(raw_order, reader.order_columns, compiled.default_order)
            if compiled.pk_attr not in names:
                order.append(compiled.pk_column.asc())
        limit = min(_int_param(query, "limit", compiled.default_limit, 1), compiled.max_limit)
        offset = _int_param(query, "offset", 0, 0)
        counted = type(self).count
        items, total = await reader.page(ctx.db, clauses, order, limit, offset, counted)
        has_next = offset + limit < total if total is not None else len(items) == limit
        data = {
            "items": items,
            "total": total,
            "limit": limit,
            "offset": offset,
            "links": links(str(ctx.request.url), limit, offset, has_next),
        }
        return Response(reader.page_adapter.dump_json(data), 200, None, _JSON)

    async def _retrieve(self, ctx: Context) -> Response:
        compiled = self._state(ctx.request)
        await self._check(ctx)
        if compiled.fast_retrieve:
            assert compiled.reader is not None
            body = await self._read_row(ctx, compiled, compiled.reader)
        else:
            obj = await self._get(ctx)
            await self._check(ctx, obj)
            body = compiled.render(obj)
        etag = compiled.etag(body)
        none_match = ctx.request.headers.get("if-none-match")
        if none_match is not None and etag in [
            t.strip().removeprefix("W/") for t in str(none_match).split(",")
        ]:
            return Response(b"", 304, {"ETag": etag})
        return Response(body, 200, {"ETag": etag}, _JSON)

    async def _create(self, ctx: Context) -> Response:
        compiled = self._state(ctx.request)
        await self._check(ctx)
        data = await self._body(ctx, compiled.create_model)
        obj = self.model()
        await self._apply(ctx, obj, data.model_dump(exclude_unset=True))
        for permission in compiled.permissions:
            await permission.before_create(ctx, obj)
        await self.before_create(ctx, obj)
        ctx.db.add(obj)
        await ctx.db.flush()
        await self.after_create(ctx, obj)
        await ctx.db.commit()
        obj = await self._reload(ctx, obj)
        location = (
            ctx.request.url.path.rstrip("/")
            + "/"
            + quote(str(getattr(obj, compiled.lookup.attr)), safe="")
        )
        return self._send(compiled, obj, 201, Location=location)

    async def _update(self, ctx: Context) -> Response:
        return await self._change(ctx, partial=False)

    async def _partial_update(self, ctx: Context) -> Response:
        return await self._change(ctx, partial=True)

    async def _change(self, ctx: Context, *, partial: bool) -> Response:
        compiled = self._state(ctx.request)
        await self._check(ctx)
        obj = await self._get(ctx)
        await self._check(ctx, obj)
        self._check_if_match(ctx, compiled, obj)
        schema = compiled.update_model if partial else compiled.create_model
        data = await self._body(ctx, schema)
        changes = data.model_dump(exclude_unset=True)
        if not partial:
            # A replacement: what the client left out goes back to its default.
            for name, spec in compiled.writable.items():
                if name not in changes and not spec.generated:
                    changes[name] = None if spec.default is ... else spec.default
        await self.before_update(ctx, obj, changes)
        await self._apply(ctx, obj, changes)
        await ctx.db.flush()
        await self.after_update(ctx, obj)
        await ctx.db.commit()
        obj = await self._reload(ctx, obj)
        return self._send(compiled, obj, 200)

    async def _destroy(self, ctx: Context) -> Response:
        compiled = self._state(ctx.request)
        await self._check(ctx)
        obj = await self._get(ctx)
        await self._check(ctx, obj)
        self._check_if_match(ctx, compiled, obj)
        await self.before_delete(ctx, obj)
        await ctx.db.delete(obj)
        await ctx.db.flush()
        await self.after_delete(ctx, obj)
        await ctx.db.commit()
        return Response(b"", 204)

    def _run_action(self, declared: _Action) -> Callable[[Context], Awaitable[Response]]:
        method = getattr(self, declared.name)

        async def run(ctx: Context) -> Response:
            compiled = self._state(ctx.request)
            await self._check(ctx)
            if declared.detail:
                obj = await self._get(ctx)
                await self._check(ctx, obj)
                result = await method(ctx, obj)
            else:
                result = await method(ctx)
            if ctx.method not in ("GET", "HEAD"):
                await ctx.db.commit()
            if isinstance(result, Response):
                return result
            if isinstance(result, self.model):
                result = await self._reload(ctx, result)
                return self._send(compiled, result, declared.status_code)
            from transom.responses import to_response

            if result is None:
                return Response(b"", 204)
            return to_response(result, declared.status_code)

        return run


def _int_param(query: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise Problem(
            422,
            errors=[
                {
                    "loc": ["query", name],
                    "msg": f"must be an integer >= {minimum}",
                    "type": "int_parsing",
                }
            ],
        )
    return value


def _phrase(status: int) -> str:
    from http import HTTPStatus

    return HTTPStatus(status).phrase


def _document_errors(endpoint: Any, error: dict[str, Any], statuses: Sequence[int]) -> None:
    # Declared by the handler (not the route's own responses=): they merge with what else
    # can refuse the request, such as the CSRF check's 403, which has the framework's shape.
    declare_responses({c: {"description": _phrase(c), **error} for c in statuses})(endpoint)


def _phrase_op(op: str) -> str:
    return {
        "list": "List",
        "retrieve": "Get",
        "create": "Create",
        "update": "Replace",
        "partial_update": "Update",
        "destroy": "Delete",
    }[op]
