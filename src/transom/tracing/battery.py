"""The :class:`Tracing` battery: an OpenTelemetry span per HTTP request and per SQL statement.

A request's span (kind SERVER) is named ``"GET /posts/{slug}"`` (the route template: span
names must not grow with every URL), continues the trace of an incoming ``traceparent``
header (W3C trace context, through OpenTelemetry's configured propagator), and carries the
method, route, path, status and the request id (:mod:`transom.logs`); a 5xx marks it as an
error. Each statement the database battery's engines run is a child span (kind CLIENT) with
the database system, name and statement text (never its parameters).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, overload

from transom._types import ASGIApp, Message, Receive, Scope, Send
from transom.batteries import Battery, split_arguments
from transom.requests import Request

if TYPE_CHECKING:
    from transom.app import App

__all__ = ["Tracing", "TracingConfig", "TracingMiddleware"]

_SLOT = "transom.tracing.route"
_SPAN = "transom.tracing.span"


@dataclasses.dataclass
class TracingConfig:
    """The settings of :class:`Tracing`.

    Attributes:
        tracer_provider: Where spans go (default: OpenTelemetry's global provider, which the
            SDK's set-up configures).
        database: Trace the database battery's statements too.
        exclude: Paths never traced (the health probes and metrics by default).
    """

    tracer_provider: Any = None
    database: bool = True
    exclude: Iterable[str] = ("/healthz", "/readyz", "/metrics")


class Tracing(Battery):
    """OpenTelemetry spans for requests and queries: ``Tracing(app)``.

    Needs ``opentelemetry-api`` (``pip install 'transom[tracing]'``) and, to send the spans
    anywhere, an SDK set up by the application.
    """

    name = "transom.tracing"

    @overload
    def __init__(self, config: TracingConfig | None = None, /) -> None: ...
    @overload
    def __init__(self, app: App, config: TracingConfig | None = None, /) -> None: ...
    def __init__(self, first: Any = None, second: Any = None, /) -> None:
        from opentelemetry import trace

        super().__init__()
        app, config = split_arguments(Tracing, TracingConfig, (first, second), {})
        self.config = config
        self.tracer = trace.get_tracer("transom", tracer_provider=config.tracer_provider)
        self.exclude = frozenset(config.exclude)
        self._watched: set[int] = set()
        if app is not None:
            self.install(app)

    def setup(self, app: App) -> None:
        app.add_middleware(TracingMiddleware, tracing=self)
        app.before_request(self._name_route)
        if self.config.database:
            app.on_startup(self._watch_database)

    def _name_route(self, request: Request) -> None:
        slot = request.scope.get(_SLOT)
        if slot is not None and request.route is not None:
            slot.append(request.route.path)
            span = request.scope.get(_SPAN)
            if span is not None:
                span.update_name(f"{request.method} {request.route.path}")
                span.set_attribute("http.route", request.route.path)

    async def _watch_database(self) -> None:
        database = self.app.extensions.get("transom.db")
        if database is None:
            return
        from sqlalchemy import event

        engines = [database.engine.sync_engine, *(e.sync_engine for e in database.replicas)]
        for engine in engines:
            if id(engine) in self._watched:
                continue
            self._watched.add(id(engine))
            event.listen(engine, "before_cursor_execute", self._statement_started)
            event.listen(engine, "after_cursor_execute", self._statement_ended)
            event.listen(engine, "handle_error", self._statement_failed)

    # SQLAlchemy runs these in the task of the request (through its greenlet bridge), so the
    # request's span is the current one and becomes the statement's parent.
    def _statement_started(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        from opentelemetry import trace

        url = conn.engine.url
        span = self.tracer.start_span(
            statement.split(None, 1)[0].upper() if statement.strip() else "SQL",
            kind=trace.SpanKind.CLIENT,
            attributes={
                "db.system": url.get_backend_name(),
                "db.name": url.database or "",
                "db.statement": statement,
                "server.address": url.host or "",
            },
        )
        conn.info.setdefault(_SPAN, []).append(span)

    def _statement_ended(self, conn: Any, *args: Any) -> None:
        spans = conn.info.get(_SPAN)
        if spans:
            spans.pop().end()

    def _statement_failed(self, context: Any) -> None:
        from opentelemetry.trace import Status, StatusCode

        conn = context.connection
        spans = conn.info.get(_SPAN) if conn is not None else None
        if spans:
            span = spans.pop()
            span.record_exception(context.original_exception)
            span.set_status(Status(StatusCode.ERROR, type(context.original_exception).__name__))
            span.end()


class TracingMiddleware:
    """Opens the request's span (installed by :class:`Tracing`)."""

    __slots__ = ("app", "tracing")

    def __init__(self, app: ASGIApp, tracing: Tracing) -> None:
        self.app = app
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.tracing.exclude:
            await self.app(scope, receive, send)
            return
        from opentelemetry import context, propagate, trace
        from opentelemetry.trace import Status, StatusCode

        carrier: dict[str, list[str]] = {}
        for name, value in scope["headers"]:
            carrier.setdefault(name.decode("latin-1"), []).append(value.decode("latin-1"))
        # ASGI header names are lower case, as the propagators' field names are.
        parent = propagate.extract(carrier)
        method = scope["method"]
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.path": scope["path"],
            "url.scheme": scope.get("scheme", "http"),
        }
        rid = scope.get("transom.request_id")
        if rid:
            attributes["transom.request_id"] = rid
        span = self.tracing.tracer.start_span(
            method, context=parent, kind=trace.SpanKind.SERVER, attributes=attributes
        )
        scope[_SLOT] = []
        scope[_SPAN] = span
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        token = context.attach(trace.set_span_in_context(span, parent))
        try:
            await self.app(scope, receive, send_status)
        except BaseException as exc:
            span.record_exception(exc)
            raise
        finally:
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            context.detach(token)
            span.end()
