"""Prometheus metrics: ``Metrics(app)`` serves ``/metrics`` to loopback or a bearer token.

::

    from transom.metrics import Metrics, MetricsConfig

    Metrics(app)                                       # or:
    app.install(Metrics(MetricsConfig(token=os.environ["METRICS_TOKEN"])))

Requests by route template, method and status, a latency histogram, requests in flight and
database pool use; summed over every worker when ``PROMETHEUS_MULTIPROC_DIR`` is set. Needs
``pip install 'transom[metrics]'``. See ``docs/deployment.md``.
"""

from __future__ import annotations

from transom.metrics.battery import (
    MULTIPROC_ENV,
    Metrics,
    MetricsConfig,
    MetricsMiddleware,
    clear_multiproc_dir,
)

__all__ = ["MULTIPROC_ENV", "Metrics", "MetricsConfig", "MetricsMiddleware", "clear_multiproc_dir"]
