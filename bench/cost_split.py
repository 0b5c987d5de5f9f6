#!/usr/bin/env python3
"""Where a framework's microseconds per request go: a measured split by part.

``python bench/cost_split.py [--only transom,transom-secure] [--endpoints json,html,typed]``

Two measurements, both in-process as ``bench/micro.py --concurrency 8`` (CPU time per request):

* ``--variants``: the same app with one part of the request path turned off (request ids,
  the security battery), measured interleaved with the full app, so the difference is that
  part's cost.
* the split: a cProfile of the loop (after the start-up and a warm-up), each function's own
  time (builtins charged to the function that called them) put in one part by its module,
  the shares then scaled to the CPU time measured without the profiler. cProfile charges
  every call a little, so parts made of many small calls read somewhat high; the variants
  check the biggest of them.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import pstats
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent.parent)]

from bench.micro import (  # noqa: E402  (bench.micro puts src/ on the path too)
    ENDPOINTS_BY_NAME,
    FRAMEWORKS,
    Endpoint,
    _loop,
    asgi_lifespan,
    asgi_loop,
)

#: (where the function is defined, part): the first match wins.
PARTS: list[tuple[str, str]] = [
    ("bench/apps/", "handler (the app's own code)"),
    ("bench/micro.py", "server stand-in (micro.py send/receive)"),
    ("transom/security/", "Security hooks (CSRF check, header block, nonce)"),
    ("transom/logs.py", "request id (pooled id)"),
    ("transom/_trie.py", "routing (trie match, path converters)"),
    ("transom/converters.py", "routing (trie match, path converters)"),
    ("transom/app.py:_route", "App._route (mounts, method, before hooks)"),
    ("transom/app.py", "App.__call__/_http (header scan, Host, hook loops, id contextvar, header)"),
    (
        "transom/_hosts.py",
        "App.__call__/_http (header scan, Host, hook loops, id contextvar, header)",
    ),
    ("transom/requests.py:__init__", "Request object"),
    ("transom/requests.py:query", "query string (QueryParams)"),
    ("transom/datastructures.py", "query string (QueryParams)"),
    ("transom/requests.py", "body read (receive, Content-Length, Content-Type)"),
    ("validate_json", "pydantic body validation (validate_json)"),
    ("transom/_signature.py", "parameter extraction (solve, extractors, body checks)"),
    ("transom/routing.py", "Route.handle (path params, handler call)"),
    ("orjson", "JSON encoding (orjson)"),
    ("transom/responses.py", "response object, header block and send"),
]
OTHER = "event loop and the rest"


def part_of(func: tuple[str, int, str]) -> str | None:
    filename, _, name = func
    where = f"{filename}:{name}"
    for needle, part in PARTS:
        if needle in where:
            return part
    return None


def _app(framework: str, endpoint: Endpoint) -> Any:
    module = FRAMEWORKS[framework].module
    assert module is not None
    return getattr(importlib.import_module(module), endpoint.app)


async def _measure(app: Any, endpoint: Endpoint, count: int) -> float:
    return (await asgi_loop(app, endpoint, count, 8))[0] * 1e6


def split(framework: str, endpoint: Endpoint, count: int) -> dict[str, float]:
    """Seconds of own time per part over ``count`` requests, from cProfile."""
    app = _app(framework, endpoint)
    profiler = cProfile.Profile()

    async def main() -> None:
        await asgi_lifespan(app, "lifespan.startup")
        await _measure(app, endpoint, count)  # warm-up: caches, plans, pools
        profiler.enable()
        await _measure(app, endpoint, count)
        profiler.disable()

    _loop().run_until_complete(main())
    stats: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    parts: dict[str, float] = {}
    for func, (_, _, own, _, callers) in stats.items():
        part = part_of(func)
        if part is not None:
            parts[part] = parts.get(part, 0.0) + own
            continue
        # A builtin or a library function: charge its own time to whoever called it.
        charged = 0.0
        for caller, (_, _, caller_own, _) in callers.items():
            caller_part = part_of(caller)
            if caller_part is not None:
                parts[caller_part] = parts.get(caller_part, 0.0) + caller_own
                charged += caller_own
        parts[OTHER] = parts.get(OTHER, 0.0) + max(0.0, own - charged)
    return parts


#: The bench-only variants, each the full app with one part turned off.
VARIANTS = ("full", "no request ids", "no Security hooks", "Route.handle stubbed")


def _variant(framework: str, endpoint: Endpoint, variant: str) -> Any | None:
    """A fresh app of ``framework`` with one part off (``None``: the variant does not apply)."""
    if variant == "full" or framework == "raw":
        return _app(framework, endpoint) if variant == "full" else None
    module = importlib.import_module(FRAMEWORKS[framework].module or "")
    secure = getattr(module, "secure", None)
    if variant == "no Security hooks" and secure is None:
        return None
    app = importlib.import_module("bench.apps.transom_app").make_app()
    if variant == "no request ids":
        app.settings.request_id_header = ""
    return secure(app) if secure is not None else app


def _turn_off(app: Any, endpoint: Endpoint, variant: str) -> None:
    """What can only be turned off once the app is built (after its start-up)."""
    if variant == "no Security hooks":
        app._before.clear()  # the CSRF check (a no-op on GET)
        app._headers_hooks.clear()  # the CSP/HSTS header block, the nonce
    elif variant == "Route.handle stubbed":
        # The handler's parameters, body, call and response object, replaced by one
        # response made in advance: what is left is the app around the handler.
        trie, _, _ = app.route_table
        path = endpoint.path.partition("?")[0]
        leaf, _ = trie.match(path)
        route = leaf.methods[endpoint.method]
        answer = importlib.import_module("transom").Response(
            endpoint.expect_body, media_type=endpoint.expect_type
        )

        async def handle(request: Any, values: Any, context: Any) -> Any:
            return answer

        route.handle = handle


def variants(
    frameworks: Sequence[str], endpoints: Sequence[Endpoint], count: int, rounds: int
) -> dict[tuple[str, str, str], float]:
    """Best CPU us per request of each app and each of its variants, interleaved rounds."""
    apps: dict[tuple[str, str, str], Any] = {}
    for framework in frameworks:
        for endpoint in endpoints:
            for variant in VARIANTS:
                app = _variant(framework, endpoint, variant)
                if app is not None:
                    apps[framework, endpoint.name, variant] = app
    best: dict[tuple[str, str, str], float] = {}

    async def main() -> None:
        started: set[int] = set()
        for key, app in apps.items():
            if id(app) not in started:
                started.add(id(app))
                await asgi_lifespan(app, "lifespan.startup")
            _turn_off(app, ENDPOINTS_BY_NAME[key[1]], key[2])
        for _ in range(rounds):
            for key, app in apps.items():
                endpoint = ENDPOINTS_BY_NAME[key[1]]
                value = await _measure(app, endpoint, count)
                best[key] = min(value, best.get(key, value))

    _loop().run_until_complete(main())
    return best


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--only", default="raw,transom,transom-secure")
    parser.add_argument("--endpoints", default="json,html,typed")
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--profile-requests", type=int, default=20000)
    args = parser.parse_args(argv)
    frameworks = [f for f in args.only.split(",") if f]
    endpoints = [ENDPOINTS_BY_NAME[e] for e in args.endpoints.split(",") if e]
    best = variants(frameworks, endpoints, args.requests, args.rounds)
    print("## CPU microseconds per request, 8 in flight (best of interleaved rounds)\n")
    print("| app | variant | " + " | ".join(e.name for e in endpoints) + " |")
    print("|---|---|" + "---|" * len(endpoints))
    for framework in frameworks:
        for variant in VARIANTS:
            if (framework, endpoints[0].name, variant) not in best:
                continue
            cells = [f"{best[framework, e.name, variant]:.2f}" for e in endpoints]
            print(f"| {framework} | {variant} | " + " | ".join(cells) + " |")
    for framework in frameworks:
        if framework == "raw":
            continue
        for endpoint in endpoints:
            measured = best[framework, endpoint.name, "full"]
            raw = best.get(("raw", endpoint.name, "full"))
            parts = split(framework, endpoint, args.profile_requests)
            total = sum(parts.values())
            title = f"{framework} /{endpoint.name}: {measured:.2f} us"
            if raw is not None:
                title += f" (raw {raw:.2f}, +{measured - raw:.2f})"
            print(f"\n### {title}\n\n| part | share | us |\n|---|---|---|")
            for part, own in sorted(parts.items(), key=lambda item: -item[1]):
                share = own / total
                print(f"| {part} | {share:.0%} | {share * measured:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
