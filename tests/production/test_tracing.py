"""OpenTelemetry traces with the real SDK (in-memory exporter) and PostgreSQL: a span per
request named by its route template, continuing an incoming traceparent, with each SQL
statement as a child span."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import MetaData, text

from transom import App, Settings
from transom.db import Database, DatabaseConfig, DbSessionDep
from transom.health import Health
from transom.tracing import Tracing, TracingConfig

pytestmark = pytest.mark.anyio

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


async def test_requests_and_queries_are_traced(pg_url: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = App(Settings(secret_key="k" * 50))
    app.install(Database(DatabaseConfig(url=pg_url), metadata=MetaData()))
    Health(app)
    Tracing(app, TracingConfig(tracer_provider=provider))

    @app.get("/items/{item_id:int}")
    async def item(item_id: int, db: DbSessionDep) -> dict[str, int]:
        value = await db.scalar(text("SELECT :n + 1"), {"n": item_id})
        return {"next": int(value or 0)}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    async with app.async_test_client() as client:
        response = await client.get(
            "/items/41", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}
        )
        failed = await client.get("/boom")
        await client.get("/healthz")
    assert response.json() == {"next": 42}
    assert failed.status_code == 500
    spans: list[ReadableSpan] = list(exporter.get_finished_spans())
    servers = [s for s in spans if s.kind == SpanKind.SERVER]
    assert [s.name for s in servers] == ["GET /items/{item_id:int}", "GET /boom"]  # no probe
    request = servers[0]
    assert request.attributes is not None
    assert request.attributes["http.route"] == "/items/{item_id:int}"
    assert request.attributes["http.response.status_code"] == 200
    assert request.attributes["transom.request_id"] == response.headers["x-request-id"]
    # It continues the caller's trace.
    assert request.context is not None
    assert format(request.context.trace_id, "032x") == TRACE_ID
    assert request.parent is not None
    assert format(request.parent.span_id, "016x") == PARENT_ID
    # The statement is a child of the request's span, without its parameters.
    [query] = [s for s in spans if s.kind == SpanKind.CLIENT and "+ 1" in str(s.attributes)]
    assert query.parent is not None
    assert query.parent.span_id == request.context.span_id
    assert query.attributes is not None
    assert query.attributes["db.system"] == "postgresql"
    assert str(query.attributes["db.statement"]).startswith("SELECT $1")  # asyncpg's placeholder
    assert "41" not in str(query.attributes["db.statement"])
    # A 500 is an error.
    assert servers[1].status.status_code == StatusCode.ERROR
    await Database.of(app).dispose()
