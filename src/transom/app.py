"""The application: an ASGI callable that routes requests to handlers."""

from __future__ import annotations

import contextlib
import inspect
import logging
import pkgutil
import sys
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from transom import _errors
from transom._concurrency import configure_thread_pool
from transom._hosts import AllowedHosts
from transom._lifespan import call_hook, run_lifespan
from transom._signature import Dependant, Invalid, SolveContext, compile_dependant
from transom._trie import Trie
from transom._types import ASGIApp, Receive, Scope, Send
from transom.accesslog import AccessLog
from transom.batteries import Batteries, Battery
from transom.datastructures import MutableHeaders, State
from transom.exceptions import ClientDisconnect, HTTPException, RequestValidationError
from transom.logs import (
    REQUEST_ID_SCOPE_KEY,
    RequestIds,
    request_id_var,
    with_request_id,
)
from transom.requests import Request
from transom.responses import RedirectResponse, Response, to_response
from transom.routing import Mount, Route, Router
from transom.settings import Settings
from transom.staticfiles import MANIFEST_NAME, StaticFiles, load_manifest
from transom.websockets import WebSocketRoute, close_all, serve_websocket

if TYPE_CHECKING:
    from transom.openapi import OpenAPIHook
    from transom.testing import AsyncTestClient, TestClient

__all__ = ["App"]

logger = logging.getLogger("transom")
F = TypeVar("F", bound=Callable[..., Any])
B = TypeVar("B", bound=Battery)
H = TypeVar("H", bound="OpenAPIHook")
Lifespan = Callable[["App"], contextlib.AbstractAsyncContextManager[Any]]
ExceptionHandler = Callable[[Request, Any], Response | Awaitable[Response]]
RawHeaders = list[tuple[bytes, bytes]]
#: ``hook(request, response, headers)`` -> the header block to append (see
#: :meth:`App.response_headers_hook`); a coroutine when it has to wait for something.
HeadersHook = Callable[[Request, Response, RawHeaders], RawHeaders | Awaitable[RawHeaders]]
#: A WebSocket handshake guard (see :meth:`App.websocket_guard`): False when it refused.
WebSocketGuard = Callable[[Scope, Receive, Send], Awaitable[bool]]

#: Headers every response carries unless changed on ``app.default_headers``.
DEFAULT_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class App(Router):
    """A Transom application.

    ``App()`` works with no configuration (settings come from ``TRANSOM_*`` environment
    variables); pass a :class:`~transom.settings.Settings` to configure it in code.
    """

    #: What :meth:`test_client` and :meth:`async_test_client` make, as ``module:Class``
    #: import strings resolved when called: the core has no dependency on the test client
    #: (nor httpx) until a test asks for one, and a project can name its own subclass.
    test_client_class: ClassVar[str] = "transom.testing:TestClient"
    async_test_client_class: ClassVar[str] = "transom.testing:AsyncTestClient"

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        lifespan: Lifespan | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings if settings is not None else Settings()
        #: The folder of the module that created the app: templates/ and static/ live here.
        self.root_path = _caller_folder()
        self.state = State()
        #: Per-app storage for batteries (``app.extensions["transom.db"]``).
        self.extensions: dict[str, Any] = {}
        #: The installed batteries (:mod:`transom.batteries`): ``app.install(Security())``.
        self.batteries = Batteries(self)
        #: Replace a dependency in tests: ``app.dependency_overrides[get_db] = fake_db``.
        self.dependency_overrides: dict[Callable[..., Any], Callable[..., Any]] = {}
        self.default_headers = MutableHeaders(dict(DEFAULT_HEADERS))
        #: Paths the access log leaves out (the health battery adds its probes); read when
        #: the app is built.
        self.access_log_exclude: set[str] = set()
        #: Post-processors of the OpenAPI document, in order (:meth:`openapi_hook`).
        self.openapi_hooks: list[OpenAPIHook] = []
        self._lifespan = lifespan
        self._lifespan_cm: contextlib.AbstractAsyncContextManager[Any] | None = None
        self._on_startup: list[Callable[[], Any]] = []
        self._on_shutdown: list[Callable[[], Any]] = []
        self._before: list[Callable[[Request], Any]] = []
        self._after: list[Callable[[Request, Response], Any]] = []
        self._headers_hooks: list[HeadersHook] = []
        self._ws_guards: list[WebSocketGuard] = []
        self._checks: list[Callable[[], None]] = []
        self._middleware: list[tuple[Callable[..., ASGIApp], dict[str, Any]]] = []
        self._handlers: dict[type[BaseException] | int, ExceptionHandler] = {}
        self._asgi: ASGIApp | None = None
        self._table: tuple[Trie[Route], list[Mount], dict[str, Route | Mount]] | None = None
        self._compiled: list[Route] = []  # the routes of _table
        self._ws_trie: Trie[Route] | None = None  # the @websocket routes, built with _table
        self._override_cache: dict[Callable[..., Any], Dependant] = {}
        #: The request limits from settings, set when the app is built: max body, max upload,
        #: max form fields, max form files, max JSON depth, upload spool size (what
        #: :class:`~transom.requests.Request` enforces while reading a body).
        self.request_limits: tuple[int, int, int, int, int, int] = (10, 10, 10, 10, 10, 10)
        self._default_raw: list[tuple[bytes, bytes]] = []
        self._hosts = AllowedHosts(())
        self._started = False
        self._direct_http = False
        self._request_ids: RequestIds | None = None
        self._max_headers = 100
        self._max_header_bytes = 32 * 1024

    # -- registration ----------------------------------------------------------------------------
    def add_route(self, *args: Any, **kwargs: Any) -> Route:
        self._table = None
        return super().add_route(*args, **kwargs)

    def include_router(self, router: Router, prefix: str = "") -> None:
        self._table = None
        super().include_router(router, prefix)

    def include(self, item: Any, prefix: str = "") -> None:
        """Serve a router, or anything that builds one, under ``prefix``.

        ``item`` is a :class:`Router` or an object with ``__transom_router__(app) -> Router``
        (a REST resource class: ``app.include(Posts)``); the core learns what a battery's
        class serves without importing the battery.
        """
        if isinstance(item, Router):
            self.include_router(item, prefix)
            return
        build = getattr(item, "__transom_router__", None)
        if build is None:
            raise TypeError(f"app.include() takes a Router or a resource, not {item!r}")
        self.include_router(build(self), prefix)

    def mount(self, prefix: str, app: ASGIApp, name: str | None = None) -> None:
        self._table = None
        super().mount(prefix, app, name)

    def on_startup(self, func: F) -> F:
        """Run ``func`` (sync or async, no arguments) when the server starts."""
        self._on_startup.append(func)
        return func

    def on_shutdown(self, func: F) -> F:
        """Run ``func`` (sync or async, no arguments) when the server stops, newest first."""
        self._on_shutdown.append(func)
        return func

    def install(self, battery: B) -> B:
        """Install a battery (``app.install(Security(SecurityConfig(...)))``); returns it.

        See :mod:`transom.batteries` for the rules every battery follows.
        """
        return battery.install(self)

    def openapi_hook(self, func: H) -> H:
        """Register ``func(document)`` to post-process the ``/openapi.json`` document.

        It edits the dict in place (returning ``None``) or returns a replacement; hooks run in
        the order registered, after the document is built from the routes. Batteries declare
        their security schemes this way (:func:`transom.openapi.add_security_scheme`).
        """
        self.openapi_hooks.append(func)
        return func

    def add_check(self, func: Callable[[], None]) -> None:
        """Run ``func()`` when the app is built, before it serves anything (or a server forks).

        A check raises :class:`~transom.exceptions.ImproperlyConfigured` to refuse to start
        with a clear message; batteries use it for what they need (a secret key, say).
        """
        self._checks.append(func)

    def before_request(self, func: F) -> F:
        """Run ``func(request)`` before each routed request; returning a Response short-circuits."""
        self._before.append(func)
        return func

    def after_request(self, func: F) -> F:
        """Run ``func(request, response)`` after each routed request; may return a new Response."""
        self._after.append(func)
        return func

    def websocket_guard(self, func: WebSocketGuard) -> WebSocketGuard:
        """Run ``await func(scope, receive, send)`` on every WebSocket handshake, before
        routing; returning False means it refused the handshake itself (it sent the answer).

        HTTP requests never pay for it. The security battery checks ``Origin`` here.
        """
        self._ws_guards.append(func)
        return func

    def response_headers_hook(self, func: HeadersHook) -> HeadersHook:
        """Let ``func(request, response, headers)`` choose the block of headers appended to
        every response the app answers itself (routed, error and 404 answers alike; a mounted
        app answers for itself), just before it starts.

        ``headers`` is the block so far (``app.default_headers``, then what earlier hooks
        returned); return it, or a new list: never change it in place, it is shared by every
        request. The response's own headers win over a header of the block with the same name
        (``Set-Cookie`` and ``Vary`` add to them). Return a coroutine only when there is
        something to wait for: a plain list costs the request nothing more. An exception
        raised here is answered like a handler's, and the hooks run again on that answer.

        Batteries use it for what belongs on every response (the security battery's CSP, HSTS
        and session cookie) without wrapping the app in an ASGI middleware.
        """
        self._headers_hooks.append(func)
        return func

    def exception_handler(self, key: type[BaseException] | int) -> Callable[[F], F]:
        """Handle an exception class (and subclasses) or an HTTP status code::

        @app.exception_handler(404)
        def not_found(request, exc): return HTMLResponse("<h1>Nope</h1>", 404)
        """

        def decorator(func: F) -> F:
            self._handlers[key] = func
            return func

        return decorator

    def add_exception_handler(
        self, key: type[BaseException] | int, handler: ExceptionHandler
    ) -> None:
        self._handlers[key] = handler

    def add_middleware(self, middleware: Callable[..., ASGIApp], **options: Any) -> None:
        """Wrap the app in a standard ASGI middleware (the last added runs first)."""
        if self._asgi is not None:
            raise RuntimeError("add middleware before the app starts serving")
        self._middleware.append((middleware, options))

    # -- build -----------------------------------------------------------------------------------
    def _route_table(self) -> tuple[Trie[Route], list[Mount], dict[str, Route | Mount]]:
        if self._table is None:
            from transom.openapi import install_openapi_routes

            install_openapi_routes(self)
            self._install_static()
            trie: Trie[Route] = Trie()
            mounts: list[Mount] = []
            names: dict[str, Route | Mount] = {}
            compiled: list[Route] = []
            ws_trie: Trie[Route] | None = None
            for item in self.iter_routes():
                if isinstance(item, Mount):
                    mounts.append(item)
                else:
                    item.compile()
                    compiled.append(item)
                    if isinstance(item, WebSocketRoute):  # a trie of their own: no 405/Allow mixing
                        ws_trie = ws_trie or Trie()
                        ws_trie.insert(item.path, item.methods, item)
                    else:
                        trie.insert(item.path, item.methods, item)
                if item.name:
                    names.setdefault(item.name, item)
            mounts.sort(key=lambda m: len(m.prefix), reverse=True)
            self._compiled = compiled
            self._ws_trie = ws_trie
            self._table = (trie, mounts, names)
        return self._table

    @property
    def route_table(self) -> tuple[Trie[Route], list[Mount], dict[str, Route | Mount]]:
        """The compiled routes: ``(trie, mounts, routes by name)``, built on first use."""
        return self._route_table()

    def build(self) -> ASGIApp:
        """Make the app ready to serve (once): install the batteries that installed ones
        require, run the start-up checks, compile every route, assemble the middleware.

        Servers and the test client call it; call it yourself to fail fast (``transom run``
        does, before it starts a server). Raises
        :class:`~transom.exceptions.ImproperlyConfigured` for settings the app can't run with.
        """
        return self._build()

    @property
    def is_built(self) -> bool:
        """Whether :meth:`build` has run (and :meth:`invalidate` not since)."""
        return self._asgi is not None

    def invalidate(self) -> None:
        """Forget what :meth:`build` derived from the settings, so the next request (or
        ``build()``) derives it again: call it after changing ``app.settings`` on an app that
        may have been built (the test client does, when it allows its host name).

        The route table stays: it follows route changes by itself.
        """
        self._asgi = None
        # The hot path checks this flag before `_asgi`: it must not skip the rebuild.
        self._direct_http = False

    def route_requirements(self) -> list[type[Battery]]:
        """The battery classes the app's routes declare through their dependencies
        (``__transom_requires__``, see :mod:`transom.batteries`)."""
        found: list[type[Battery]] = []
        if self._table is not None:
            routes: Iterable[Route] = self._compiled
        else:  # not built: look at the routes without building the table (no side effects)
            routes = (item for item in self.iter_routes() if isinstance(item, Route))
        for route in routes:
            try:
                declared = route.required_batteries()
            except Exception:
                continue
            found.extend(b for b in declared if b not in found)
        return found

    def _build(self) -> ASGIApp:
        if self._asgi is None:
            self.batteries.install_requirements()
            settings = self.settings
            settings.check()
            # What the routes' dependencies declare; installing it may add routes (Auth's
            # pages) that declare more, hence the loop.
            while True:
                self._route_table()
                missing = [b for b in self.route_requirements() if not self.batteries.find(b)]
                if not missing:
                    break
                self.batteries.install_requirements(missing)
            for check in self._checks:
                check()
            configure_thread_pool(settings.thread_pool_size)
            self.request_limits = (
                settings.max_body_size,
                settings.max_upload_size,
                settings.max_form_fields,
                settings.max_form_files,
                settings.max_json_depth,
                settings.upload_spool_size,
            )
            self._max_headers = settings.max_headers
            self._max_header_bytes = settings.max_header_bytes
            self._hosts = AllowedHosts(settings.allowed_hosts)
            self._route_table()
            self._default_raw = list(self.default_headers.raw)
            asgi: ASGIApp = self._dispatch
            for middleware, options in self._middleware:
                asgi = middleware(asgi, **options)
            if settings.access_log:
                # Outermost, so what a middleware answers (a CORS preflight...) is logged too.
                asgi = AccessLog(asgi, settings.access_log_format, self.access_log_exclude)
            self._request_ids = None
            if settings.request_id_header:
                # Named on the request path itself (__call__ and _http), not by a middleware.
                # The proxies whose id is kept are the security battery's (read from its
                # extension entry: the core imports no battery).
                security = self.extensions.get("transom.security")
                trusted = getattr(security, "trusted_proxies", ())
                self._request_ids = RequestIds(settings.request_id_header, trusted)
            self._asgi = asgi
            self._direct_http = not self._middleware and not settings.access_log
        return self._asgi

    def _static_folders(self) -> list[Path]:
        settings = self.settings
        folders = [self.root_path / settings.static_dir]
        collected = self.root_path / settings.static_root
        if not settings.debug and (collected / MANIFEST_NAME).exists():
            folders.insert(0, collected)
        return [f for f in folders if f.is_dir()]

    def _install_static(self) -> None:
        url = self.settings.static_url.rstrip("/")
        if not url or self.extensions.get("transom.static.installed"):
            return
        self.extensions["transom.static.installed"] = True
        folders = self._static_folders()
        taken = any(isinstance(m, Mount) and m.prefix == url for m in self.iter_routes())
        if folders and not taken:
            Router.mount(self, url, StaticFiles(folders), name="static")

    def static_url(self, path: str) -> str:
        """URL of a static file; the fingerprinted name after ``collectstatic`` (debug off)."""
        manifest = self.extensions.get("transom.static.manifest")
        if manifest is None:
            collected = self.root_path / self.settings.static_root
            manifest = {} if self.settings.debug else (load_manifest(collected) or {})
            self.extensions["transom.static.manifest"] = manifest
        clean = path.lstrip("/")
        return f"{self.settings.static_url.rstrip('/')}/{manifest.get(clean, clean)}"

    def url_path_for(self, name: str, /, **params: Any) -> str:
        """The path of the named route (or mount, with ``path=``); extra params go in the query."""
        _, _, names = self._route_table()
        try:
            target = names[name]
        except KeyError:
            raise KeyError(f"no route named {name!r}") from None
        return target.url_path("", **params)

    url_for = url_path_for

    # -- ASGI ------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._direct_http and scope["type"] == "http":
            # No ASGI middleware: skip the dispatch layer on the hot path.
            await self._http(scope, receive, send)
            return
        asgi = self._asgi
        if asgi is None:
            try:
                asgi = self._build()
            except Exception as exc:
                if scope["type"] == "lifespan":
                    await receive()
                    logger.error("Application start-up failed: %s", exc)
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                raise
        ids = self._request_ids
        if ids is not None and scope["type"] == "http" and REQUEST_ID_SCOPE_KEY not in scope:
            # Named before the middleware and the access log run, so their lines and answers
            # (a CORS preflight...) carry the id too.
            rid = ids.of(scope)
            scope[REQUEST_ID_SCOPE_KEY] = rid
            token = request_id_var.set(rid)
            try:
                await asgi(scope, receive, with_request_id(send, (ids.header, rid.encode())))
            finally:
                request_id_var.reset(token)
            return
        await asgi(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await run_lifespan(self, receive, send)
        elif kind == "websocket":
            for guard in self._ws_guards:
                if not await guard(scope, receive, send):
                    return
            self._route_table()
            await serve_websocket(
                self,
                scope,
                receive,
                send,
                self._ws_trie,
                lambda: SolveContext(self.dependency_overrides, self._compile_override),
            )
        else:
            raise RuntimeError(f"unsupported ASGI scope type {kind!r}")

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, self)
        ids = self._request_ids
        token = id_header = None
        if ids is not None and REQUEST_ID_SCOPE_KEY not in scope:
            # The request's id, here rather than in a middleware: a look-up in a pool of
            # random ids, a context variable for the log lines, one header appended. Named
            # already: a middleware ran first (__call__ named it), or this app is mounted in
            # another that did.
            rid = ids.of(scope)
            scope[REQUEST_ID_SCOPE_KEY] = rid
            id_header = (ids.header, rid.encode())
            token = request_id_var.set(rid)
        try:
            try:
                # One pass over the headers for both checks (this runs on every request).
                headers = scope["headers"]
                size = 0
                host = None
                framing = 0  # 1: Transfer-Encoding seen, 2: Content-Length seen
                for key, value in headers:
                    size += len(key) + len(value)
                    if key == b"host":
                        if host is None:
                            host = value
                    elif key == b"transfer-encoding":
                        framing |= 1
                    elif key == b"content-length":
                        framing |= 2
                if framing == 3:
                    # Both framings at once is how requests are smuggled: a proxy in front may
                    # have read the body by one and the server by the other, so what follows on
                    # this connection can't be trusted. Refuse whatever the server accepted, and
                    # close the connection so a request hidden behind this one is never served.
                    raise HTTPException(
                        400,
                        "Request has both Content-Length and Transfer-Encoding",
                        headers={"Connection": "close"},
                    )
                if len(headers) > self._max_headers or size > self._max_header_bytes:
                    raise HTTPException(
                        431,
                        f"Request headers too large (limit {self._max_headers} headers, "
                        f"{self._max_header_bytes} bytes)",
                    )
                if not self._hosts.allows(host):
                    logging.getLogger("transom.security").warning(
                        "Rejected request with disallowed Host header %r",
                        request.headers.get("host"),
                    )
                    raise HTTPException(400, "Invalid Host header")
                response = await self._route(scope, receive, send, request, id_header)
                if response is None:  # a mounted app answered
                    return
                if response.deferred:
                    response = await response.resolve(request)
            except ClientDisconnect:
                # The client is gone: nothing to answer, and not a server error.
                await request.close()
                return
            except Exception as exc:
                response = await self._handle_exception(request, exc)
            if self._after and request.route is not None:
                try:
                    for after in self._after:
                        result = after(request, response)
                        if result is None:
                            continue  # the common answer: skip the awaitable test
                        if inspect.isawaitable(result):
                            result = await result
                        if result is not None:
                            response = (
                                result
                                if isinstance(result, Response)
                                else to_response(result, None)
                            )
                except Exception as exc:
                    response = await self._handle_exception(request, exc)
            extra = self._default_raw
            if self._headers_hooks:
                try:
                    # Inline (not _hook_headers): no coroutine per request for hooks that answer
                    # with a precomputed list.
                    for hook in self._headers_hooks:
                        result = hook(request, response, extra)
                        extra = result if type(result) is list else await result  # type: ignore[misc]
                except Exception as exc:
                    response = await self._handle_exception(request, exc)
                    try:
                        extra = await self._hook_headers(request, response)
                    except Exception:
                        logger.exception("A response headers hook failed on an error response")
                        extra = self._default_raw
            if id_header is not None:
                extra = [*extra, id_header]  # a new list: `extra` is shared by every request
            try:
                await response.send_to(scope, send, extra)
            finally:
                if request.form_loaded:
                    await request.close()
        finally:
            if token is not None:
                request_id_var.reset(token)

    async def _hook_headers(self, request: Request, response: Response) -> RawHeaders:
        headers = self._default_raw
        for hook in self._headers_hooks:
            result = hook(request, response, headers)
            headers = result if type(result) is list else await result  # type: ignore[misc]
        return headers

    async def _route(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        request: Request,
        id_header: tuple[bytes, bytes] | None = None,
    ) -> Response | None:
        trie, mounts, _ = self._table or self._route_table()
        path: str = scope["path"]
        root = scope.get("root_path")
        if root and path.startswith(root):
            path = path[len(root) :] or "/"
        if mounts:
            for mount in mounts:
                prefix = mount.prefix
                if path == prefix or path.startswith(prefix + "/"):
                    child = dict(scope)
                    child["root_path"] = (root or "") + prefix
                    if id_header is not None:  # the mounted app answers: it gets the id too
                        send = with_request_id(send, id_header)
                    await mount.app(child, receive, send)
                    return None
        found = trie.match(path)
        if found is None:
            return self._no_route(scope, path, trie)
        leaf, values = found
        method = scope["method"]
        route = leaf.methods.get(method)
        if route is None:
            if method == "HEAD":
                route = leaf.methods.get("GET")
            if route is None:
                if method == "OPTIONS":
                    return Response(b"", 204, {"Allow": leaf.allow})
                raise HTTPException(405, headers={"Allow": leaf.allow})
        request.route = route
        for before in self._before:
            result = before(request)
            if result is None:
                continue  # the common answer: skip the awaitable test
            if inspect.isawaitable(result):
                result = await result
            if result is not None:
                return result if isinstance(result, Response) else to_response(result, None)
        context = (
            SolveContext(self.dependency_overrides, self._compile_override)
            if route._needs_context
            else None
        )
        if context is None and self.dependency_overrides and route.dependant:
            context = SolveContext(self.dependency_overrides, self._compile_override)
        try:
            return await route.handle(request, values, context)
        except Invalid as exc:
            raise RequestValidationError(exc.errors) from None

    def _no_route(self, scope: Scope, path: str, trie: Trie[Route]) -> Response:
        if self.settings.trailing_slash == "redirect" and path != "/":
            other = path[:-1] if path.endswith("/") else path + "/"
            if trie.match(other) is not None:
                location = (scope.get("root_path") or "") + other
                # '//host' would be a protocol-relative URL: never redirect off-site.
                location = "/" + location.lstrip("/")
                query = scope.get("query_string", b"")
                if query:
                    location += "?" + query.decode("latin-1")
                return RedirectResponse(location, 308)
        raise HTTPException(404)

    def _compile_override(self, call: Callable[..., Any]) -> Dependant:
        dependant = self._override_cache.get(call)
        if dependant is None:
            dependant = self._override_cache[call] = compile_dependant(call, frozenset())
        return dependant

    async def _handle_exception(self, request: Request, exc: Exception) -> Response:
        handler: ExceptionHandler | None = None
        if isinstance(exc, HTTPException):
            handler = self._handlers.get(exc.status_code)
        if handler is None:
            for cls in type(exc).__mro__:
                handler = self._handlers.get(cls)
                if handler is not None:
                    break
        if handler is not None:
            try:
                result = handler(request, exc)
                if inspect.isawaitable(result):
                    result = await result
                response = result if isinstance(result, Response) else to_response(result, None)
                return await response.resolve(request) if response.deferred else response
            except Exception as handler_exc:
                exc = handler_exc
        if isinstance(exc, HTTPException):
            response = _errors.http_error_response(request, exc)
        else:
            response = _errors.server_error_response(request, exc, self.settings.debug)
        # A battery's error page (the templates' 404.html) renders here.
        return await response.resolve(request) if response.deferred else response

    # -- lifespan --------------------------------------------------------------------------------
    async def startup(self) -> None:
        """Run the lifespan context and startup hooks (the server or test client calls this)."""
        if self._started:
            return
        self._build()
        if self._lifespan is not None:
            self._lifespan_cm = self._lifespan(self)
            await self._lifespan_cm.__aenter__()
        for func in self._on_startup:
            await call_hook(func)
        self._started = True

    @property
    def started(self) -> bool:
        """Whether :meth:`startup` has run (and :meth:`shutdown` not since)."""
        return self._started

    async def shutdown(self) -> None:
        """Run shutdown hooks (newest first), then leave the lifespan context."""
        if not self._started:
            return
        self._started = False
        errors: list[BaseException] = []
        # Open WebSockets get 1001 and event streams end first: nothing waits on them after.
        await close_all(self)
        for func in reversed(self._on_shutdown):
            try:
                await call_hook(func)
            except Exception as exc:  # every hook gets its chance to release resources
                logger.exception("shutdown hook %r failed", func)
                errors.append(exc)
        if self._lifespan_cm is not None:
            cm, self._lifespan_cm = self._lifespan_cm, None
            await cm.__aexit__(None, None, None)
        if errors:
            raise errors[0]

    # -- conveniences ----------------------------------------------------------------------------
    def test_client(self, **kwargs: Any) -> TestClient:
        """A synchronous httpx client that calls this app in-process (:mod:`transom.testing`),
        of the class :attr:`test_client_class` names."""
        client: TestClient = pkgutil.resolve_name(self.test_client_class)(self, **kwargs)
        return client

    def async_test_client(self, **kwargs: Any) -> AsyncTestClient:
        """An ``httpx.AsyncClient`` that calls this app in-process (of the class
        :attr:`async_test_client_class` names)."""
        client: AsyncTestClient = pkgutil.resolve_name(self.async_test_client_class)(self, **kwargs)
        return client

    def run(
        self,
        host: str = "127.0.0.1",
        port: int = 8000,
        *,
        reload: bool | None = None,
        workers: int = 1,
        server: str | None = None,
        backlog: int | None = None,
        graceful_timeout: int | None = None,
        keep_alive_timeout: int | None = None,
    ) -> None:
        """Serve the app with a production ASGI server (granian by default) until stopped.

        Call it from the script that defines the app (``if __name__ == "__main__":
        app.run()``): the server's workers import that script by name. ``reload`` defaults to
        debug mode, ``server`` to ``settings.server``. ``backlog`` (1024),
        ``graceful_timeout`` (30 s) and ``keep_alive_timeout`` (5 s) default to what
        ``transom run`` uses, as do their environment variables (``TRANSOM_BACKLOG``,
        ``TRANSOM_GRACEFUL_TIMEOUT``, ``TRANSOM_KEEP_ALIVE_TIMEOUT``). See
        :func:`transom.serving.serve`.
        """
        from transom import serving

        self.build()  # fail fast on bad settings, before a server forks workers
        serving.serve(
            serving.location_of(self),
            host=host,
            port=port,
            reload=self.settings.debug if reload is None else reload,
            workers=workers,
            server=server or self.settings.server,
            backlog=serving.option_from_env("TRANSOM_BACKLOG", backlog, serving.DEFAULT_BACKLOG),
            graceful_timeout=serving.option_from_env(
                "TRANSOM_GRACEFUL_TIMEOUT", graceful_timeout, serving.DEFAULT_GRACEFUL_TIMEOUT
            ),
            keep_alive_timeout=serving.option_from_env(
                "TRANSOM_KEEP_ALIVE_TIMEOUT", keep_alive_timeout, serving.DEFAULT_KEEP_ALIVE_TIMEOUT
            ),
        )

    @property
    def all_routes(self) -> list[Route | Mount]:
        """Every route and mount, flattened, in registration order."""
        return list(self.iter_routes())


def _caller_folder() -> Path:
    # Walk out of transom's own frames (App subclasses call through __init__).
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").startswith("transom."):
        frame = frame.f_back  # type: ignore[assignment]
    filename = frame.f_globals.get("__file__") if frame is not None else None
    return Path(filename).resolve().parent if filename else Path.cwd()
