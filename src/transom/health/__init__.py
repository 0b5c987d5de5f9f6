"""Liveness and readiness probes: ``Health(app)`` serves ``/healthz`` and ``/readyz``.

::

    from transom.health import Health

    Health(app)

``/healthz`` answers 200 while the process can answer at all (a liveness probe: restart the
process when it fails). ``/readyz`` answers 200 when what the app needs is reachable: the
database (and its migrations applied), the cache's server, the task broker, where those
batteries are installed, plus the checks you add; otherwise 503 with ``Retry-After`` and a
JSON body naming the failing parts (a readiness probe: send no traffic here for now).

See ``docs/deployment.md``.
"""

from __future__ import annotations

from transom.health.battery import Check, Health, HealthConfig, HealthMiddleware, NotReady

__all__ = ["Check", "Health", "HealthConfig", "HealthMiddleware", "NotReady"]
