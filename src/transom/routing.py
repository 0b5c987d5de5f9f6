"""Routes, routers (blueprint-style groups that nest) and mounted ASGI applications."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlencode

from transom._signature import Dependant, ParamSpec, SolveContext, compile_dependant
from transom._signature import where as signature_where
from transom._trie import Segment, parse_template
from transom._types import ASGIApp
from transom.params import Depends
from transom.responses import Response, to_response

if TYPE_CHECKING:
    from transom._response_model import Output
    from transom.requests import Request

__all__ = ["Mount", "Route", "Router"]

F = TypeVar("F", bound=Callable[..., Any])
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


class Route:
    """One path template + methods + handler. Its signature is compiled when the app starts."""

    def __init__(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        methods: Sequence[str] = ("GET",),
        name: str | None = None,
        status_code: int | None = None,
        tags: Sequence[str] = (),
        summary: str | None = None,
        description: str | None = None,
        response_model: Any = None,
        responses: dict[int, Any] | None = None,
        dependencies: Sequence[Depends] = (),
        include_in_schema: bool = True,
        deprecated: bool = False,
        operation_id: str | None = None,
        localns: dict[str, Any] | None = None,
    ) -> None:
        self.path = path
        # Names visible where the handler was defined, to resolve string annotations
        # (``from __future__ import annotations``) of handlers defined inside functions.
        self.localns = localns
        self.endpoint = endpoint
        self.methods = [m.upper() for m in methods]
        for method in self.methods:
            if method not in HTTP_METHODS:
                raise ValueError(f"unknown HTTP method {method!r} for route {path!r}")
        self.name: str = name or str(getattr(endpoint, "__name__", "route"))
        self.status_code = status_code
        self.tags = list(tags)
        self.summary = summary
        self.description = description
        self.response_model = response_model
        self.responses = dict(responses or {})
        self.dependencies = list(dependencies)
        self.include_in_schema = include_in_schema
        self.deprecated = deprecated
        self.operation_id = operation_id
        # '' means "the router's prefix itself" (Router("/books") + "" -> "/books").
        self.segments: list[Segment] = parse_template(path) if path else []
        self.param_names: list[str] = [s.param for s in self.segments if s.param]
        self.dependant: Dependant | None = None
        self._guards: list[Dependant] = []
        self._needs_context = False
        self._is_async = False
        self._has_params = True
        self._output: Output | None = None  # the declared response model, if any

    def __repr__(self) -> str:
        return f"<Route {','.join(self.methods)} {self.path} name={self.name!r}>"

    def compile(self) -> None:
        """Analyse the handler once; called by the app before it serves the first request."""
        from transom._response_model import output_adapter

        names = frozenset(self.param_names)
        self.dependant = compile_dependant(self.endpoint, names, self.localns)
        # Decorators (``@limit``, ``@requires``) attach dependencies to the handler itself.
        attached = getattr(self.endpoint, "__transom_dependencies__", ())
        self._guards = [
            compile_dependant(d.dependency, names, self.localns)
            for d in [*self.dependencies, *attached]
            if d.dependency
        ]
        self._check_path_params(names)
        self._needs_context = self.dependant.needs_context or bool(self._guards)
        self._is_async = self.dependant.kind == "async"
        self._has_params = bool(self.dependant.params or self.dependant.request_names)
        if self.dependant.kind in ("async_gen", "sync_gen"):
            raise TypeError(f"handler {self.name!r} is a generator; return a StreamingResponse")
        self._output = output_adapter(self.endpoint, self.response_model)

    def derive_options(self, include_in_schema: bool) -> dict[str, Any]:
        """Keyword arguments a subclass needs to be copied under a router's prefix (its own
        options), given the router's ``include_in_schema``."""
        return {}

    def required_batteries(self) -> list[type[Any]]:
        """The battery classes this route's dependencies declare with an attribute
        ``__transom_requires__`` (a tuple of classes) on the dependency callable, however
        deep; the route is compiled first if it was not."""
        if self.dependant is None:
            self.compile()
        assert self.dependant is not None
        found: list[type[Any]] = []
        for root in (self.dependant, *self._guards):
            for dependant in root.walk():
                for battery in getattr(dependant.call, "__transom_requires__", ()):
                    if battery not in found:
                        found.append(battery)
        return found

    @property
    def guards(self) -> tuple[Dependant, ...]:
        """The compiled dependencies run before the handler (``dependencies=`` and those that
        decorators such as ``@limit`` attach); empty until the route is compiled."""
        return tuple(self._guards)

    def param_specs(self) -> list[ParamSpec]:
        """Every parameter a request to this route carries, however deep in its guards and
        handler (guards' first), each ``(location, alias)`` once: what the OpenAPI and
        AsyncAPI documents describe. The route must be compiled."""
        assert self.dependant is not None
        specs: list[ParamSpec] = []
        seen: set[tuple[str, str]] = set()
        for root in (*self._guards, self.dependant):
            for node in root.walk():
                for spec in node.params:
                    key = (spec.location, spec.alias)
                    if key not in seen:
                        seen.add(key)
                        specs.append(spec)
        return specs

    @property
    def output(self) -> Output | None:
        """The declared response type and its adapter (``None``: the result is sent as it is);
        known once the route is compiled."""
        return self._output

    def _check_path_params(self, names: frozenset[str]) -> None:
        """Refuse a path parameter that nothing takes: a misspelt argument would otherwise
        silently become a required query parameter, and every request would get 422."""
        assert self.dependant is not None
        used: set[str] = set()
        free: list[str] = []
        for root in (self.dependant, *self._guards):
            for dependant in root.walk():
                if dependant.request_names or _takes_kwargs(dependant.call):
                    return  # it may read request.path_params itself
                for spec in dependant.params:
                    if spec.location == "path":
                        used.add(spec.alias)
                    elif spec.location == "query" and dependant is self.dependant:
                        free.append(spec.name)
        missing = sorted(names - used)
        if not missing:
            return
        where = signature_where(self.endpoint)
        hint = (
            f"; did you mean to name the argument {missing[0]!r} instead of "
            f"{', '.join(repr(f) for f in free)}?"
            if free
            else f"; add an argument {missing[0]!r}"
        )
        raise TypeError(
            f"route {self.path!r}: path parameter{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(m) for m in missing)} not taken by handler "
            f"{getattr(self.endpoint, '__qualname__', self.name)} ({where}){hint}"
        )

    async def handle(
        self, request: Request, values: list[Any], context: SolveContext | None
    ) -> Response:
        """Extract parameters, call the handler and turn its result into a response."""
        dependant = self.dependant
        assert dependant is not None
        if not values:
            path = {}
        elif len(values) == 1:  # the commonest dynamic route: one parameter, no zip
            path = {self.param_names[0]: values[0]}
        else:
            path = dict(zip(self.param_names, values, strict=True))
        request.path_params = path
        if context is None:
            kwargs = await dependant.solve(request, path, None) if self._has_params else {}
            if self._is_async:
                result = await self.endpoint(**kwargs)
            else:
                from transom._concurrency import run_sync

                result = await run_sync(self.endpoint, **kwargs)
            return self._respond(result)
        try:
            for guard in self._guards:
                await context.resolve(Depends(guard.call), guard, request, path)
            kwargs = await dependant.solve(request, path, context)
            if self._is_async:
                result = await self.endpoint(**kwargs)
            else:
                from transom._concurrency import run_sync

                result = await run_sync(self.endpoint, **kwargs)
            response = self._respond(result)
        except BaseException as exc:
            await context.close(exc)
            raise
        await context.close(None)
        return response

    def _respond(self, result: Any) -> Response:
        if self._output is not None and not isinstance(result, Response):
            from transom._response_model import render_output

            return render_output(self._output, result, self.status_code)
        return to_response(result, self.status_code)

    def url_path(self, prefix: str = "", **params: Any) -> str:
        """Build this route's path from parameter values; extra values become the query string."""
        parts: list[str] = []
        for segment in self.segments:
            if segment.param is None:
                parts.append(segment.text)
                continue
            if segment.param not in params:
                raise KeyError(f"url_for({self.name!r}) is missing the parameter {segment.param!r}")
            assert segment.converter is not None
            text = segment.converter.to_url(params.pop(segment.param))
            parts.append(quote(text, safe="/" if segment.converter.greedy else ""))
        url = prefix + "/" + "/".join(parts)
        if params:
            url += "?" + urlencode([(k, v) for k, v in params.items() if v is not None], doseq=True)
        return url


class Mount:
    """Any ASGI application served under a path prefix (``root_path`` is extended for it)."""

    def __init__(self, prefix: str, app: ASGIApp, name: str | None = None) -> None:
        if not prefix.startswith("/") or prefix.endswith("/"):
            raise ValueError(f"mount prefix {prefix!r} must start and not end with '/'")
        self.prefix = prefix
        self.app = app
        self.name = name

    def url_path(self, prefix: str = "", path: str = "", **params: Any) -> str:
        url = prefix + self.prefix + "/" + quote(str(path).lstrip("/"), safe="/")
        if params:
            url += "?" + urlencode(params, doseq=True)
        return url

    def __repr__(self) -> str:
        return f"<Mount {self.prefix} name={self.name!r}>"


class Router:
    """A group of routes with a shared prefix, name, tags and dependencies (a "blueprint").

    Routers nest with :meth:`include_router`; an app includes them the same way. Route names
    are prefixed by the router's ``name`` (``"blog.show"``), so ``url_for`` stays unambiguous.
    """

    def __init__(
        self,
        prefix: str = "",
        *,
        name: str | None = None,
        tags: Sequence[str] = (),
        dependencies: Sequence[Depends] = (),
        include_in_schema: bool = True,
    ) -> None:
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ValueError(f"router prefix {prefix!r} must start and not end with '/'")
        self.prefix = prefix
        self.name = name
        self.tags = list(tags)
        self.dependencies = list(dependencies)
        self.include_in_schema = include_in_schema
        self.routes: list[Route] = []
        self.mounts: list[Mount] = []
        self._children: list[tuple[Router, str]] = []

    # -- registration --------------------------------------------------------------------------
    def add_route(
        self,
        path: str,
        endpoint: Callable[..., Any],
        methods: Sequence[str] = ("GET",),
        route_class: type[Route] = Route,
        **options: Any,
    ) -> Route:
        route = route_class(path, endpoint, methods=methods, **options)
        self.routes.append(route)
        return route

    def route(
        self, path: str, methods: Sequence[str] = ("GET",), **options: Any
    ) -> Callable[[F], F]:
        """Register the decorated function for ``path`` and ``methods``."""

        def decorator(func: F) -> F:
            options.setdefault("localns", dict(sys._getframe(1).f_locals))
            self.add_route(path, func, methods, **options)
            return func

        return decorator

    def get(self, path: str, **options: Any) -> Callable[[F], F]:
        return self.route(path, ("GET",), **options)

    def post(self, path: str, **options: Any) -> Callable[[F], F]:
        return self.route(path, ("POST",), **options)

    def put(self, path: str, **options: Any) -> Callable[[F], F]:
        return self.route(path, ("PUT",), **options)

    def patch(self, path: str, **options: Any) -> Callable[[F], F]:
        return self.route(path, ("PATCH",), **options)

    def delete(self, path: str, **options: Any) -> Callable[[F], F]:
        return self.route(path, ("DELETE",), **options)

    def websocket(self, path: str, **options: Any) -> Callable[[F], F]:
        """Register the decorated ``async def handler(ws: WebSocket, ...)`` for WebSocket
        connections to ``path`` (see :mod:`transom.websockets`)."""

        def decorator(func: F) -> F:
            options.setdefault("localns", dict(sys._getframe(1).f_locals))
            self.add_websocket_route(path, func, **options)
            return func

        return decorator

    def add_websocket_route(self, path: str, endpoint: Callable[..., Any], **options: Any) -> Route:
        from transom.websockets import WebSocketRoute

        return self.add_route(path, endpoint, (), route_class=WebSocketRoute, **options)

    def include_router(self, router: Router, prefix: str = "") -> None:
        """Serve ``router``'s routes under ``prefix`` + its own prefix (resolved at start-up)."""
        if router is self:
            raise ValueError("a router cannot include itself")
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ValueError(f"include prefix {prefix!r} must start and not end with '/'")
        self._children.append((router, prefix))

    def mount(self, prefix: str, app: ASGIApp, name: str | None = None) -> None:
        """Serve any ASGI application (static files, another framework...) under ``prefix``."""
        self.mounts.append(Mount(prefix, app, name))

    # -- flattening ----------------------------------------------------------------------------
    def iter_routes(
        self,
        prefix: str = "",
        name_prefix: str = "",
        tags: Sequence[str] = (),
        dependencies: Sequence[Depends] = (),
        include_in_schema: bool = True,
        _seen: frozenset[int] = frozenset(),
    ) -> Iterator[Route | Mount]:
        """Every route and mount with prefixes, names, tags and dependencies applied."""
        if id(self) in _seen:
            raise ValueError("router inclusion forms a cycle")
        seen = _seen | {id(self)}
        prefix = prefix + self.prefix
        if self.name:
            name_prefix = f"{name_prefix}{self.name}."
        tags = [*tags, *self.tags]
        dependencies = [*dependencies, *self.dependencies]
        include_in_schema = include_in_schema and self.include_in_schema
        for route in self.routes:
            yield _derive(route, prefix, name_prefix, tags, dependencies, include_in_schema)
        for mount in self.mounts:
            name = f"{name_prefix}{mount.name}" if mount.name else None
            yield Mount(prefix + mount.prefix, mount.app, name)
        for child, child_prefix in self._children:
            yield from child.iter_routes(
                prefix + child_prefix, name_prefix, tags, dependencies, include_in_schema, seen
            )


def _derive(
    route: Route,
    prefix: str,
    name_prefix: str,
    tags: Sequence[str],
    dependencies: Sequence[Depends],
    include_in_schema: bool,
) -> Route:
    if not (prefix or name_prefix or tags or dependencies) and include_in_schema:
        return route
    options: dict[str, Any] = {
        "include_in_schema": include_in_schema and route.include_in_schema,
        **route.derive_options(include_in_schema),
    }
    return type(route)(
        prefix + route.path,
        route.endpoint,
        methods=route.methods,
        name=name_prefix + route.name,
        status_code=route.status_code,
        tags=[*tags, *[t for t in route.tags if t not in tags]],
        summary=route.summary,
        description=route.description,
        response_model=route.response_model,
        responses=route.responses,
        dependencies=[*dependencies, *route.dependencies],
        deprecated=route.deprecated,
        operation_id=route.operation_id,
        localns=route.localns,
        **options,
    )


def _takes_kwargs(call: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(call).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
