"""OpenAPI 3.1 document generated from the routes, and the interactive docs page.

The document is built from what the signature compiler learned about each handler (parameters,
bodies, declared response models), so it always matches what the app validates. Swagger UI's
assets ship inside the package: ``/docs`` works offline and loads nothing from a CDN.
"""

from __future__ import annotations

import copy
import gzip
import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal, TypeVar, get_origin

import orjson
from pydantic import BaseModel, TypeAdapter

from transom._signature import Dependant, ParamSpec
from transom.requests import Request
from transom.responses import HTMLResponse, JSONResponse, Response, json_dumps
from transom.routing import Route

if TYPE_CHECKING:
    from transom.app import App

__all__ = [
    "DocsCSRFProvider",
    "OpenAPIHook",
    "ResponseSpec",
    "ResponsesProvider",
    "add_responses_provider",
    "add_security_scheme",
    "declare_responses",
    "error_response",
    "install_openapi_routes",
    "openapi_document",
    "set_docs_csrf_provider",
]

#: ``hook(document)`` post-processes the OpenAPI document; it edits it in place (and returns
#: ``None``) or returns a replacement. Register with :meth:`App.openapi_hook`.
OpenAPIHook = Callable[[dict[str, Any]], "dict[str, Any] | None"]

JsonMode = Literal["validation", "serialization"]
_REF = "#/components/schemas/{model}"
_VALIDATION_ERROR = {
    "title": "HTTPValidationError",
    "type": "object",
    "properties": {
        "detail": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["loc", "msg", "type"],
                "properties": {
                    "loc": {
                        "type": "array",
                        "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                    },
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                    "input": {},
                },
            },
        }
    },
}
_ERROR = {
    "title": "HTTPError",
    "description": "The framework's error body: `detail` says what went wrong.",
    "type": "object",
    "required": ["detail"],
    "properties": {"detail": {}},
}
T = TypeVar("T")
#: One documented response: a description (an error status then gets the app's error body,
#: ``HTTPError``), or a whole OpenAPI response object.
ResponseSpec = str | Mapping[str, Any]
#: ``provider(route, method)`` returns the responses a battery can produce on that operation
#: (or ``None``); register with :func:`add_responses_provider`.
ResponsesProvider = Callable[[Route, str], "Mapping[int, ResponseSpec] | None"]
_DECLARED_ATTR = "__openapi_responses__"
_PROVIDERS_KEY = "transom.openapi.responses_providers"
_DOCS_CSRF_KEY = "transom.openapi.docs_csrf"
#: ``provider(request)`` returns ``(header name, token)`` for the ``/docs`` page to send with
#: unsafe "Try it out" calls, or ``None`` (no token needed); see :func:`set_docs_csrf_provider`.
DocsCSRFProvider = Callable[[Request], Awaitable["tuple[str, str] | None"]]


def error_response(description: str) -> dict[str, Any]:
    """An OpenAPI response object for an error the framework renders (``{"detail": ...}``)."""
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF.format(model="HTTPError")}}},
    }


def declare_responses(
    responses: Mapping[int, ResponseSpec], *, methods: Iterable[str] | None = None
) -> Callable[[T], T]:
    """Declare the responses a dependency, guard or handler can produce (a decorator).

    Every operation whose handler, dependencies or guards (however deep) carry the
    declaration documents those responses; a route's own ``responses={...}`` still wins for
    the same status. This is how batteries document their errors (``CurrentUser``: 401)
    without the core knowing them. ``methods`` limits the declaration to those HTTP methods.

    Example:
        >>> @declare_responses({404: "No such book"})
        ... async def load_book(book_id: int) -> dict[str, int]:
        ...     return {"id": book_id}
    """
    only = frozenset(m.upper() for m in methods) if methods is not None else None

    def decorate(target: T) -> T:
        found = getattr(target, _DECLARED_ATTR, ())
        entries = (*found, *((int(code), spec, only) for code, spec in responses.items()))
        setattr(target, _DECLARED_ATTR, entries)
        return target

    return decorate


def set_docs_csrf_provider(app: App, provider: DocsCSRFProvider) -> None:
    """Let the ``/docs`` page send a CSRF token with unsafe "Try it out" calls.

    The security battery sets it: the page embeds the token ``provider(request)`` gives
    (in data attributes, so the strict script policy holds) and Swagger UI's request
    interceptor adds it as a header to unsafe requests to this site.
    """
    app.extensions[_DOCS_CSRF_KEY] = provider


def add_responses_provider(app: App, provider: ResponsesProvider) -> None:
    """Let ``provider(route, method)`` add responses to every operation of ``app``.

    For what no dependency declares: a check that runs on every unsafe request (CSRF),
    say. Its entries merge with the dependencies' ones; the route's own still win.
    """
    app.extensions.setdefault(_PROVIDERS_KEY, []).append(provider)


class _SchemaCollector:
    """Gathers every type that needs a schema, then asks Pydantic for all of them at once so
    shared models land once in ``components/schemas`` and are referenced everywhere."""

    def __init__(self) -> None:
        self.inputs: list[tuple[int, JsonMode, TypeAdapter[Any]]] = []
        self.slots: list[tuple[dict[str, Any], str, dict[str, Any] | None]] = []

    def want(
        self,
        adapter: TypeAdapter[Any],
        mode: JsonMode,
        target: dict[str, Any],
        key: str,
        extra: dict[str, Any] | None = None,
    ) -> None:
        index = len(self.inputs)
        self.inputs.append((index, mode, adapter))
        self.slots.append((target, key, extra))

    def resolve(self) -> dict[str, Any]:
        if not self.inputs:
            return {}
        schemas, definitions = TypeAdapter.json_schemas(self.inputs, ref_template=_REF)
        for (index, mode, _), (target, key, extra) in zip(self.inputs, self.slots, strict=True):
            schema = schemas[(index, mode)]
            target[key] = {**schema, **extra} if extra else schema
        return dict(definitions.get("$defs", {}))


def openapi_document(app: App) -> dict[str, Any]:
    """Build the OpenAPI 3.1 document for ``app`` (routes are compiled first if needed)."""
    app.route_table  # noqa: B018 (compiles the routes first)
    settings = app.settings
    collector = _SchemaCollector()
    paths: dict[str, dict[str, Any]] = {}
    operation_ids: set[str] = set()
    needs_validation_error = False
    providers: list[ResponsesProvider] = list(app.extensions.get(_PROVIDERS_KEY, ()))
    for item in app.iter_routes():
        if not isinstance(item, Route) or not item.include_in_schema:
            continue
        route = item
        if route.dependant is None:
            route.compile()
        template = _openapi_path(route)
        for method in route.methods:
            if method in ("HEAD", "OPTIONS"):
                continue
            operation, has_input = _operation(route, method, collector, operation_ids, providers)
            needs_validation_error |= has_input
            paths.setdefault(template, {})[method.lower()] = operation
    schemas = collector.resolve()
    if needs_validation_error:
        schemas["HTTPValidationError"] = _VALIDATION_ERROR
    schemas.setdefault("HTTPError", _ERROR)
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": settings.title, "version": settings.version},
        "paths": paths,
        "components": {"schemas": schemas},
    }
    for hook in app.openapi_hooks:
        replaced = hook(document)
        if replaced is not None:
            document = replaced
    return document


def add_security_scheme(
    document: dict[str, Any], name: str, scheme: dict[str, Any], *, optional: bool = True
) -> None:
    """Declare a security scheme in ``document`` (from an :data:`OpenAPIHook`).

    The scheme goes in ``components/securitySchemes`` and is listed as one alternative of the
    top-level ``security`` requirement, so Swagger UI's "Authorize" button offers it and sends
    the credential with every call. ``optional`` keeps an empty alternative (``{}``) in that
    list: endpoints that also serve anonymous clients are not documented as requiring it.
    """
    document.setdefault("components", {}).setdefault("securitySchemes", {})[name] = scheme
    security: list[dict[str, list[str]]] = document.setdefault("security", [])
    if optional and {} not in security:
        security.insert(0, {})
    if {name: []} not in security:
        security.append({name: []})


def _openapi_path(route: Route) -> str:
    parts = [f"{{{s.param}}}" if s.param else s.text for s in route.segments]
    return "/" + "/".join(parts)


def _operation(
    route: Route,
    method: str,
    collector: _SchemaCollector,
    ids: set[str],
    providers: list[ResponsesProvider],
) -> tuple[dict[str, Any], bool]:
    assert route.dependant is not None
    doc = inspect.getdoc(route.endpoint) or ""
    summary, _, rest = doc.partition("\n\n")
    operation: dict[str, Any] = {
        "summary": route.summary or summary.strip() or route.name.replace("_", " ").capitalize(),
        "operationId": _unique_id(route.operation_id or f"{route.name}_{method.lower()}", ids),
    }
    description = route.description or rest.strip()
    if description:
        operation["description"] = description
    if route.tags:
        operation["tags"] = list(route.tags)
    if route.deprecated:
        operation["deprecated"] = True
    specs = route.param_specs()
    parameters: list[dict[str, Any]] = []
    for spec in specs:
        if spec.location in ("path", "query", "header", "cookie"):
            parameters.extend(_parameters(route, spec, collector))
    parameters.extend(_declared_query(route, {p["name"] for p in parameters}))
    if parameters:
        operation["parameters"] = parameters
    body_specs = [s for s in specs if s.location == "body"]
    form_specs = [s for s in specs if s.location in ("form", "file")]
    if body_specs:
        operation["requestBody"] = _json_body(route.dependant, body_specs, collector)
    elif form_specs:
        operation["requestBody"] = _form_body(form_specs, collector)
    operation["responses"] = _responses(route, method, collector, bool(specs), providers)
    return operation, bool(specs)


def _response_object(code: int, spec: Any) -> dict[str, Any]:
    if isinstance(spec, Mapping):
        # A copy per operation: one declaration serves many, and hooks edit in place.
        return copy.deepcopy(dict(spec))
    return error_response(str(spec)) if code >= 400 else {"description": str(spec)}


def _declared(
    route: Route, method: str, providers: list[ResponsesProvider]
) -> dict[str, dict[str, Any]]:
    """The responses the route's handler, dependencies, guards and the app's providers
    declare for ``method``, merged by status."""
    assert route.dependant is not None
    found: dict[str, list[dict[str, Any]]] = {}
    for root in (route.dependant, *route.guards):
        for node in root.walk():
            for code, spec, only in getattr(node.call, _DECLARED_ATTR, ()):
                if only is None or method in only:
                    found.setdefault(str(code), []).append(_response_object(code, spec))
    for provider in providers:
        for code, spec in (provider(route, method) or {}).items():
            found.setdefault(str(code), []).append(_response_object(int(code), spec))
    return {code: _merge(entries) for code, entries in sorted(found.items())}


def _merge(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """One response object for several causes of the same status: descriptions joined, and
    per media type the schema, or ``anyOf`` the different ones."""
    if len(entries) == 1:
        return entries[0]
    descriptions: list[str] = []
    schemas: dict[str, list[Any]] = {}
    headers: dict[str, Any] = {}
    for entry in entries:
        text = str(entry.get("description", ""))
        if text and text not in descriptions:
            descriptions.append(text)
        for media, content in (entry.get("content") or {}).items():
            known = schemas.setdefault(media, [])
            schema = content.get("schema", {}) if isinstance(content, Mapping) else {}
            if schema not in known:
                known.append(schema)
        headers.update(entry.get("headers") or {})
    merged: dict[str, Any] = {"description": "; or ".join(descriptions) or "Error"}
    if schemas:
        merged["content"] = {
            media: {"schema": found[0] if len(found) == 1 else {"anyOf": found}}
            for media, found in schemas.items()
        }
    if headers:
        merged["headers"] = headers
    return merged


def _declared_query(route: Route, taken: set[str]) -> list[dict[str, Any]]:
    """Query parameters a declared response type reads itself (``Page[X]``: ``?page=``).

    A type says so with a class attribute ``__openapi_query__`` (a list of OpenAPI parameter
    objects): the core learns what a battery's type reads without importing the battery.
    """
    output = route.output
    if output is None:
        return []
    model = output.model
    cls = get_origin(model) or model
    declared = getattr(cls, "__openapi_query__", ())
    return [dict(p) for p in declared if p["name"] not in taken]


def _unique_id(candidate: str, ids: set[str]) -> str:
    name, n = candidate, 2
    while name in ids:
        name, n = f"{candidate}_{n}", n + 1
    ids.add(name)
    return name


def _parameters(route: Route, spec: ParamSpec, collector: _SchemaCollector) -> list[dict[str, Any]]:
    marker = spec.marker
    if marker is not None and not marker.include_in_schema:
        return []
    if (
        spec.is_model
        and isinstance(spec.annotation, type)
        and issubclass(spec.annotation, BaseModel)
    ):
        out = []
        for name, field in spec.annotation.model_fields.items():
            param: dict[str, Any] = {
                "name": field.alias or name,
                "in": spec.location,
                "required": field.is_required(),
            }
            collector.want(TypeAdapter(field.annotation or Any), "validation", param, "schema")
            if field.description:
                param["description"] = field.description
            out.append(param)
        return out
    param = {
        "name": spec.alias,
        "in": spec.location,
        "required": spec.location == "path" or spec.required,
    }
    if spec.adapter is not None:
        collector.want(spec.adapter, "validation", param, "schema", _default(spec))
    else:
        segment = next((s for s in route.segments if s.param == spec.alias), None)
        param["schema"] = (
            dict(segment.converter.json_schema) if segment and segment.converter else {}
        )
    if marker is not None:
        if marker.description:
            param["description"] = marker.description
        if marker.deprecated:
            param["deprecated"] = True
        if marker.examples:
            param["examples"] = {f"example{i}": {"value": v} for i, v in enumerate(marker.examples)}
    return [param]


def _json_body(
    dependant: Dependant, specs: list[ParamSpec], collector: _SchemaCollector
) -> dict[str, Any]:
    media: dict[str, Any] = {}
    if len(specs) == 1 and not dependant.embed_body:
        spec = specs[0]
        if spec.adapter is not None:
            collector.want(spec.adapter, "validation", media, "schema")
        required = spec.required
    else:
        properties: dict[str, Any] = {}
        for spec in specs:
            if spec.adapter is not None:
                collector.want(spec.adapter, "validation", properties, spec.alias)
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        names = [s.alias for s in specs if s.required]
        if names:
            schema["required"] = names
        media["schema"] = schema
        required = bool(names)
    return {"required": required, "content": {"application/json": media}}


def _form_body(specs: list[ParamSpec], collector: _SchemaCollector) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    multipart = False
    whole: dict[str, Any] | None = None
    for spec in specs:
        if spec.is_model and spec.adapter is not None:
            whole = {}
            collector.want(spec.adapter, "validation", whole, "schema")
            continue
        if spec.location == "file":
            multipart = True
            binary = {"type": "string", "contentMediaType": "application/octet-stream"}
            properties[spec.alias] = {"type": "array", "items": binary} if spec.is_list else binary
        elif spec.adapter is not None:
            collector.want(spec.adapter, "validation", properties, spec.alias)
        if spec.required:
            required.append(spec.alias)
    if whole is not None and not properties:
        schema_holder = whole
    else:
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        schema_holder = {"schema": schema}
    media_type = "multipart/form-data" if multipart else "application/x-www-form-urlencoded"
    return {"required": bool(required) or whole is not None, "content": {media_type: schema_holder}}


def _responses(
    route: Route,
    method: str,
    collector: _SchemaCollector,
    has_input: bool,
    providers: list[ResponsesProvider],
) -> dict[str, Any]:
    status = str(route.status_code or 200)
    success: dict[str, Any] = {"description": "Successful response"}
    if route.output is not None:
        media: dict[str, Any] = {}
        collector.want(route.output.adapter, "serialization", media, "schema")
        success["content"] = {"application/json": media}
    else:
        annotation = inspect.signature(route.endpoint).return_annotation
        if annotation in (None, "None"):
            # What it answers: no body, and 204 unless the route chose a status.
            status = str(route.status_code or 204)
        elif annotation in (str, "str"):
            success["content"] = {"text/html": {"schema": {"type": "string"}}}
        elif annotation in (dict, list, "dict", "list") or route.status_code not in (204,):
            success["content"] = {"application/json": {"schema": {}}}
    if status == "204":
        success.pop("content", None)
    responses: dict[str, Any] = {status: success}
    for code, extra in route.responses.items():
        responses[str(code)] = _response_object(int(code), extra)
    for status_key, entry in _declared(route, method, providers).items():
        responses.setdefault(status_key, entry)  # the route's own entry documents its format
    if has_input and "422" not in responses:
        responses["422"] = {
            "description": "Validation error",
            "content": {
                "application/json": {"schema": {"$ref": _REF.format(model="HTTPValidationError")}}
            },
        }
    return responses


# -- serving ---------------------------------------------------------------------------------------

_DOCS_FILES = {
    "swagger-ui-bundle.js": "application/javascript",
    "swagger-ui.css": "text/css",
    "init.js": "application/javascript",
}
_INIT_JS = b"""window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  var csrfHeader = root.dataset.csrfHeader, csrfToken = root.dataset.csrfToken;
  var safe = /^(GET|HEAD|OPTIONS|TRACE)$/i;
  window.ui = SwaggerUIBundle({ url: root.dataset.openapi, dom_id: "#swagger-ui",
    deepLinking: true, presets: [SwaggerUIBundle.presets.apis],
    validatorUrl: null,
    requestInterceptor: function (req) {
      // "Try it out" as the logged-in user: unsafe calls to this site carry the CSRF token.
      var url = new URL(req.url, window.location.href);
      if (csrfHeader && csrfToken && !safe.test(req.method || "GET") &&
          url.origin === window.location.origin) {
        req.headers[csrfHeader] = csrfToken;
      }
      return req;
    } });
});
"""


@cache
def _asset(name: str) -> bytes:
    if name == "init.js":
        return _INIT_JS
    return resources.files("transom").joinpath("_static", "swagger-ui", name).read_bytes()


@cache
def _gzipped(name: str) -> bytes:
    # Once per process: the 1.7 MB bundle goes out as about 0.5 MB.
    return gzip.compress(_asset(name), compresslevel=6, mtime=0)


def _accepts_gzip(request: Request) -> bool:
    for part in str(request.headers.get("accept-encoding", "")).split(","):
        coding, _, params = part.partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            quality = params.strip().lower()
            return quality not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def install_openapi_routes(app: App) -> None:
    """Add ``/openapi.json``, ``/docs`` and ``/asyncapi.json`` (per settings) once, unless
    they are turned off."""
    if app.extensions.get("transom.openapi.installed"):
        return
    app.extensions["transom.openapi.installed"] = True
    from transom.asyncapi import install_asyncapi_route

    install_asyncapi_route(app)
    settings = app.settings
    openapi_url, docs_url = settings.openapi_url, settings.docs_url
    if not openapi_url:
        return

    async def openapi_json() -> Response:
        # Keyed by the route table itself: adding a route makes a new one, and a new document.
        table = app.route_table
        cached = app.extensions.get("transom.openapi.document")
        # Hooks and providers are added at setup, but a test may add one later: counted too.
        version = (len(app.openapi_hooks), len(app.extensions.get(_PROVIDERS_KEY, ())))
        if cached is None or cached[0] is not table or cached[2] != version:
            cached = (table, JSONResponse(openapi_document(app)).body, version)
            app.extensions["transom.openapi.document"] = cached
        return Response(cached[1], media_type="application/json")

    app.add_route(openapi_url, openapi_json, ["GET"], name="openapi", include_in_schema=False)
    if not docs_url:
        return

    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        title = _escape(settings.title)
        provider = app.extensions.get(_DOCS_CSRF_KEY)
        csrf = await provider(request) if provider is not None else None
        csrf_attrs = (
            f" data-csrf-header='{_escape(csrf[0])}' data-csrf-token='{_escape(csrf[1])}'"
            if csrf
            else ""
        )
        page = (
            "<!doctype html><html lang=en><head><meta charset=utf-8>"
            "<meta name=viewport content='width=device-width,initial-scale=1'>"
            f"<title>{title} — API docs</title>"
            f"<link rel=stylesheet href='{root}{docs_url}/swagger-ui.css'></head><body>"
            f"<div id=swagger-ui data-openapi='{_escape(root + openapi_url)}'{csrf_attrs}></div>"
            f"<script src='{root}{docs_url}/swagger-ui-bundle.js'></script>"
            f"<script src='{root}{docs_url}/init.js'></script></body></html>"
        )
        # A page holding a token is the user's own: no shared cache may keep it.
        return HTMLResponse(page, headers={"Cache-Control": "no-store"} if csrf else None)

    async def docs_asset(name: str, request: Request) -> Response:
        media_type = _DOCS_FILES.get(name)
        if media_type is None:
            from transom.exceptions import HTTPException

            raise HTTPException(404)
        headers = {"Cache-Control": "public, max-age=86400", "Vary": "Accept-Encoding"}
        if _accepts_gzip(request):
            headers["Content-Encoding"] = "gzip"
            return Response(_gzipped(name), media_type=media_type, headers=headers)
        return Response(_asset(name), media_type=media_type, headers=headers)

    app.add_route(docs_url, docs, ["GET"], name="docs", include_in_schema=False)
    app.add_route(
        docs_url + "/{name}", docs_asset, ["GET"], name="docs_asset", include_in_schema=False
    )


def _escape(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def _default(spec: ParamSpec) -> dict[str, Any] | None:
    if spec.required or spec.default is None:
        return None
    try:
        return {"default": orjson.loads(json_dumps(spec.default))}
    except TypeError:  # a default that has no JSON form is simply not documented
        return None
