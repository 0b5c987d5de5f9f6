"""Shared pieces of the TechEmpower database apps (``bench/tfb/README`` has the rules)."""

from __future__ import annotations

import os

import jinja2

#: The TechEmpower database on the local PostgreSQL (``bench/tfb/setup_postgres.sh``).
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL",
    "postgresql://benchmarkdbuser:benchmarkdbpass@127.0.0.1:5432/hello_world",
)
#: Connections per worker, for every framework (a fixed pool: no overflow connections).
POOL_SIZE = 15
ADDITIONAL_FORTUNE = "Additional fortune added at request time."

FORTUNES_TEMPLATE = jinja2.Environment(autoescape=True).from_string(
    "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
    "<tr><th>id</th><th>message</th></tr>"
    "{% for id, message in fortunes %}<tr><td>{{ id }}</td><td>{{ message }}</td></tr>"
    "{% endfor %}</table></body></html>"
)


def clamp_queries(text: str | None) -> int:
    """TechEmpower's rule: missing, non-integer or < 1 -> 1; > 500 -> 500."""
    try:
        count = int(text) if text else 1
    except ValueError:
        return 1
    return min(max(count, 1), 500)


def render_fortunes(rows: list[tuple[int, str]]) -> str:
    """Add the request-time fortune, sort by message (code points) and render escaped."""
    rows = [*rows, (0, ADDITIONAL_FORTUNE)]
    rows.sort(key=lambda row: row[1])
    return FORTUNES_TEMPLATE.render(fortunes=rows)
