"""OpenTelemetry traces: ``Tracing(app)`` makes a span per request and per database query.

::

    from transom.tracing import Tracing

    Tracing(app)

It uses the OpenTelemetry API only (``pip install 'transom[tracing]'``): the spans go wherever
the SDK you install and configure sends them (an OTLP exporter to a collector, Jaeger...);
without an SDK they cost next to nothing. See ``docs/deployment.md``.
"""

from __future__ import annotations

from transom.tracing.battery import Tracing, TracingConfig, TracingMiddleware

__all__ = ["Tracing", "TracingConfig", "TracingMiddleware"]
