"""AsyncAPI 3.0 document for the app's WebSocket routes (and the channels batteries declare).

Served at ``/asyncapi.json`` next to ``/openapi.json`` (``Settings.asyncapi_url``; ``""``
turns it off). Each ``@app.websocket`` route is a channel: its address is the route's path
(path parameters become channel parameters; query and header parameters go in the ``ws``
binding), and the message types the route declares (``receives=`` what the client sends,
``sends=`` what the server sends) become messages with their JSON Schema and one
``receive`` / ``send`` operation each, from the app's point of view. A battery adds its own
channels with :func:`add_asyncapi_hook` (the realtime battery documents declared channels).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, get_args, get_origin

import orjson
from pydantic import TypeAdapter

from transom._signature import ParamSpec
from transom.responses import JSONResponse, Response, json_dumps

if TYPE_CHECKING:
    from transom.app import App
    from transom.websockets import WebSocketRoute

__all__ = [
    "AsyncAPIHook",
    "MessageTypes",
    "SchemaRegistry",
    "add_asyncapi_hook",
    "asyncapi_document",
    "install_asyncapi_route",
    "message_types",
]

#: ``hook(document, schemas)`` adds to the AsyncAPI document in place; ``schemas`` turns
#: Python types into ``components/schemas`` references (see :class:`SchemaRegistry`).
AsyncAPIHook = Callable[[dict[str, Any], "SchemaRegistry"], None]
#: What a WebSocket route declares it receives or sends: one type, or several.
MessageTypes = type[Any] | Sequence[type[Any]] | None

_HOOKS_KEY = "transom.asyncapi.hooks"
_REF = "#/components/schemas/{model}"
_KEY_RE = re.compile(r"[^A-Za-z0-9_.-]+")
_WS_BINDING_VERSION = "0.1.0"


class SchemaRegistry:
    """Collects the types the document needs and resolves them in one pass, so a model
    shared by several messages lands once in ``components/schemas``."""

    def __init__(self) -> None:
        self._inputs: list[tuple[int, Any, TypeAdapter[Any]]] = []
        self._targets: list[tuple[dict[str, Any], str, dict[str, Any] | None]] = []
        self._messages: dict[str, dict[str, Any]] = {}

    def schema(
        self, annotation: Any, target: dict[str, Any], key: str, extra: dict[str, Any] | None = None
    ) -> None:
        """Put the JSON Schema of ``annotation`` (plus ``extra`` keys) at ``target[key]``,
        filled in by :meth:`resolve`."""
        adapter = annotation if isinstance(annotation, TypeAdapter) else TypeAdapter(annotation)
        self._inputs.append((len(self._inputs), "serialization", adapter))
        self._targets.append((target, key, extra))

    def message(self, annotation: Any, *, name: str | None = None) -> str:
        """Register ``annotation`` as a message of ``components/messages``; returns its key."""
        key = component_key(name or type_name(annotation))
        if key not in self._messages:
            message: dict[str, Any] = {"name": key, "contentType": "application/json"}
            doc = getattr(annotation, "__doc__", None)
            if isinstance(annotation, type) and doc and not _is_builtin(annotation):
                message["summary"] = doc.strip().split("\n\n")[0].strip()
            self.schema(annotation, message, "payload")
            self._messages[key] = message
        return key

    def resolve(self, document: dict[str, Any]) -> None:
        components = document.setdefault("components", {})
        if self._inputs:
            found, definitions = TypeAdapter.json_schemas(self._inputs, ref_template=_REF)
            for (index, mode, _), (target, key, extra) in zip(
                self._inputs, self._targets, strict=True
            ):
                target[key] = {**found[(index, mode)], **extra} if extra else found[(index, mode)]
            schemas = components.setdefault("schemas", {})
            for name, schema in definitions.get("$defs", {}).items():
                schemas.setdefault(name, schema)
        if self._messages:
            components.setdefault("messages", {}).update(self._messages)


def component_key(text: str) -> str:
    """``text`` as a key AsyncAPI accepts for components, channels and operations."""
    return _KEY_RE.sub("_", text).strip("_") or "item"


def type_name(annotation: Any) -> str:
    """A readable name for a message type: the class name, or ``list_Item`` and the like."""
    origin = get_origin(annotation)
    if origin is not None:
        args = "_".join(type_name(a) for a in get_args(annotation))
        return f"{getattr(origin, '__name__', 'type')}_{args}" if args else str(origin)
    return str(getattr(annotation, "__name__", None) or repr(annotation))


def _is_builtin(annotation: type[Any]) -> bool:
    return annotation.__module__ == "builtins"


def message_types(declared: MessageTypes) -> tuple[type[Any], ...]:
    """``receives=`` / ``sends=`` as a tuple of types (validated at route creation)."""
    if declared is None:
        return ()
    if isinstance(declared, Sequence) and not isinstance(declared, str | bytes):
        types = tuple(declared)
    else:
        types = (declared,)
    for item in types:
        TypeAdapter(item)  # raises now, at declaration, for a type with no schema
    return types


def add_asyncapi_hook(app: App, hook: AsyncAPIHook) -> None:
    """Let ``hook(document, schemas)`` add channels, operations or messages to the document."""
    app.extensions.setdefault(_HOOKS_KEY, []).append(hook)


def asyncapi_document(app: App) -> dict[str, Any]:
    """Build the AsyncAPI 3.0 document of ``app`` (routes are compiled first if needed)."""
    from transom.websockets import WebSocketRoute

    app.route_table  # noqa: B018 (compiles the routes first)
    settings = app.settings
    registry = SchemaRegistry()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    document: dict[str, Any] = {
        "asyncapi": "3.0.0",
        "info": {"title": settings.title, "version": settings.version},
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
    }
    for route in app.iter_routes():
        if isinstance(route, WebSocketRoute) and route.include_in_asyncapi:
            _add_route(route, channels, operations, registry)
    for hook in app.extensions.get(_HOOKS_KEY, ()):
        hook(document, registry)
    registry.resolve(document)
    return document


def _add_route(
    route: WebSocketRoute,
    channels: dict[str, Any],
    operations: dict[str, Any],
    registry: SchemaRegistry,
) -> None:
    if route.dependant is None:
        route.compile()
    key = _unique(component_key(route.name), channels)
    address = "/" + "/".join(f"{{{s.param}}}" if s.param else s.text for s in route.segments)
    channel: dict[str, Any] = {"address": address}
    doc = (route.endpoint.__doc__ or "").strip()
    summary, _, rest = doc.partition("\n\n")
    if route.summary or summary:
        channel["summary"] = route.summary or " ".join(summary.split())
    if route.description or rest.strip():
        channel["description"] = route.description or rest.strip()
    if route.tags:
        channel["tags"] = [{"name": tag} for tag in route.tags]
    specs = route.param_specs()
    parameters = {
        s.alias: _parameter(s)
        for s in specs
        if s.location == "path" and s.alias in route.param_names
    }
    for name in route.param_names:  # a path parameter only a dependency reads by request
        parameters.setdefault(name, {})
    if parameters:
        channel["parameters"] = parameters
    binding: dict[str, Any] = {"method": "GET"}
    for location, field in (("query", "query"), ("header", "headers")):
        properties: dict[str, Any] = {}  # filled in when the schemas are resolved
        required: list[str] = []
        for spec in specs:
            if spec.location == location:
                registry.schema(
                    spec.adapter or spec.annotation, properties, spec.alias, _default(spec)
                )
                if spec.required:
                    required.append(spec.alias)
        if any(spec.location == location for spec in specs):
            binding[field] = {"type": "object", "properties": properties}
            if required:
                binding[field]["required"] = required
    binding["bindingVersion"] = _WS_BINDING_VERSION
    channel["bindings"] = {"ws": binding}
    messages: dict[str, Any] = {}
    for action, declared, what in (
        ("receive", route.receives, "Messages the client sends"),
        ("send", route.sends, "Messages the server sends"),
    ):
        if not declared:
            continue
        refs = []
        for annotation in declared:
            name = registry.message(annotation)
            messages[name] = {"$ref": f"#/components/messages/{name}"}
            refs.append({"$ref": f"#/channels/{key}/messages/{name}"})
        operations[_unique(f"{key}_{action}", operations)] = {
            "action": action,
            "channel": {"$ref": f"#/channels/{key}"},
            "summary": what,
            "messages": refs,
        }
    if messages:
        channel["messages"] = messages
    channels[key] = channel


def _parameter(spec: ParamSpec) -> dict[str, Any]:
    """An AsyncAPI 3.0 parameter (a string: no schema, but ``enum``, ``default``...)."""
    parameter: dict[str, Any] = {}
    marker = spec.marker
    if marker is not None and marker.description:
        parameter["description"] = marker.description
    if spec.adapter is not None:
        schema = spec.adapter.json_schema()
        if "enum" in schema:
            parameter["enum"] = [str(v) for v in schema["enum"]]
        elif schema.get("type") in ("integer", "number"):
            parameter.setdefault("description", f"An {schema['type']}")
    return parameter


def _default(spec: ParamSpec) -> dict[str, Any] | None:
    if spec.required or spec.default is None:
        return None
    try:
        return {"default": orjson.loads(json_dumps(spec.default))}
    except TypeError:  # a default with no JSON form is simply not documented
        return None


def _unique(candidate: str, taken: dict[str, Any]) -> str:
    name, n = candidate, 2
    while name in taken:
        name, n = f"{candidate}_{n}", n + 1
    return name


def install_asyncapi_route(app: App) -> None:
    """Serve the document at ``Settings.asyncapi_url`` (``""``: not served)."""
    url = app.settings.asyncapi_url
    if not url:
        return

    async def asyncapi_json() -> Response:
        # Keyed by the route table like /openapi.json: a new route makes a new document.
        table = app.route_table
        hooks = len(app.extensions.get(_HOOKS_KEY, ()))
        cached = app.extensions.get("transom.asyncapi.document")
        if cached is None or cached[0] is not table or cached[2] != hooks:
            cached = (table, JSONResponse(asyncapi_document(app)).body, hooks)
            app.extensions["transom.asyncapi.document"] = cached
        return Response(cached[1], media_type="application/json")

    app.add_route(url, asyncapi_json, ["GET"], name="asyncapi", include_in_schema=False)
