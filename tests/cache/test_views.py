"""``@cached`` views, ``@cache_control`` and conditional GET, in memory and on Redis."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from _services import TcpProxy
from _services import remove_redis_keys as remove_keys
from transom import App, Request, Response, Settings
from transom.cache import (
    Cache,
    CacheConfig,
    cache_control,
    cached,
    is_not_modified,
    not_modified,
)
from transom.security import Security, SecurityConfig, SessionDataDep

from .conftest import REDIS_HOST, REDIS_PORT, REDIS_URL, CacheFactory

pytestmark = pytest.mark.anyio


def build(cache: Cache, *, security: bool = False) -> tuple[App, dict[str, int]]:
    """An app whose handlers count their calls."""
    app = App(Settings(secret_key="cache-view-tests"))
    if security:
        Security(app)
    app.install(cache)
    calls: dict[str, int] = {}

    def hit(name: str) -> int:
        calls[name] = calls.get(name, 0) + 1
        return calls[name]

    @app.get("/posts")
    @cached(ttl=60, tags=("posts",))
    async def posts(page: int = 1) -> dict[str, Any]:
        return {"page": page, "call": hit("posts")}

    @cached(ttl=60)  # above the route decorator works too
    @app.get("/above")
    async def above() -> dict[str, int]:
        return {"call": hit("above")}

    @app.get("/lang")
    @cached(vary=("Accept-Language",))
    async def lang(request: Request) -> dict[str, Any]:
        return {"lang": request.headers.get("accept-language"), "call": hit("lang")}

    @app.get("/undeclared-vary")
    @cached()
    async def undeclared() -> Response:
        hit("undeclared")
        return Response("x", headers={"Vary": "Accept-Language"})

    @app.get("/cookie")
    @cached()
    async def cookie() -> Response:
        response = Response(str(hit("cookie")))
        response.set_cookie("theme", "dark")
        return response

    @app.get("/private")
    @cached()
    async def private() -> Response:
        return Response(str(hit("private")), headers={"Cache-Control": "private"})

    @app.get("/no-store")
    @cached()
    async def no_store() -> Response:
        return Response(str(hit("no-store")), headers={"Cache-Control": "no-store"})

    @app.get("/error")
    @cached()
    async def error() -> Response:
        return Response(str(hit("error")), 500)

    @app.get("/missing")
    @cached()
    async def missing() -> Response:
        return Response(str(hit("missing")), 404)

    @app.get("/session-write")
    @cached()
    async def session_write(session: SessionDataDep) -> dict[str, int]:
        session["seen"] = True
        return {"call": hit("session-write")}

    @app.get("/controlled")
    @cache_control(max_age=60, public=True)
    async def controlled() -> dict[str, str]:
        hit("controlled")
        return {"logo": "/static/logo.png"}

    @app.get("/dated")
    async def dated(request: Request) -> Response:
        changed = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
        if is_not_modified(request, last_modified=changed):
            return not_modified(last_modified=changed)
        return Response("v1", headers={"Last-Modified": "Tue, 02 Jan 2024 03:04:05 GMT"})

    return app, calls


async def test_cached_view_runs_once_per_url(make_cache: CacheFactory) -> None:
    app, calls = build(make_cache())
    async with app.async_test_client() as client:
        first = await client.get("/posts")
        again = await client.get("/posts")
        assert first.json() == again.json() == {"page": 1, "call": 1}
        assert again.headers["content-type"] == "application/json"
        assert (await client.get("/posts?page=2")).json() == {"page": 2, "call": 2}
        head = await client.head("/posts")
        assert head.status_code == 200
        assert head.content == b""
        assert calls["posts"] == 2
        await client.get("/above")
        await client.get("/above")
        assert calls["above"] == 1
    assert Cache.of(app).stats.hits >= 3


async def test_no_middleware_and_untouched_routes_pay_nothing(make_cache: CacheFactory) -> None:
    app, calls = build(make_cache(), security=True)

    @app.get("/plain")
    async def plain(request: Request) -> dict[str, bool]:
        return {"state": "transom.cache.view" in request.scope}

    app.build()
    app.build()  # built twice: the store hook is registered once
    assert app._middleware == []  # the core's no-middleware path serves it
    assert len(app._headers_hooks) == 2  # the security battery's, then the cache's
    async with app.async_test_client() as client:
        assert (await client.get("/plain")).json() == {"state": False}
        await client.get("/posts")
        await client.get("/posts")
    assert calls["posts"] == 1


async def test_tags_invalidate_views(make_cache: CacheFactory) -> None:
    cache = make_cache()
    app, _calls = build(cache)
    async with app.async_test_client() as client:
        await client.get("/posts")
        await cache.delete_tags("posts")
        assert (await client.get("/posts")).json()["call"] == 2


async def test_vary_headers_are_part_of_the_key(make_cache: CacheFactory) -> None:
    app, calls = build(make_cache())
    async with app.async_test_client() as client:
        fr = await client.get("/lang", headers={"Accept-Language": "fr"})
        en = await client.get("/lang", headers={"Accept-Language": "en"})
        assert fr.json() == {"lang": "fr", "call": 1}
        assert en.json() == {"lang": "en", "call": 2}
        assert (await client.get("/lang", headers={"Accept-Language": "fr"})).json()["call"] == 1
        # A Vary the decorator doesn't know: the page can't be keyed right, so it isn't stored.
        await client.get("/undeclared-vary")
        await client.get("/undeclared-vary")
        assert calls["undeclared"] == 2


@pytest.mark.parametrize("path", ["/cookie", "/private", "/no-store", "/error", "/missing"])
async def test_uncacheable_responses_are_not_stored(make_cache: CacheFactory, path: str) -> None:
    app, calls = build(make_cache())
    async with app.async_test_client() as client:
        await client.get(path)
        client.cookies.clear()
        await client.get(path)
    assert calls[path.strip("/")] == 2


async def test_requests_with_credentials_bypass_the_cache(make_cache: CacheFactory) -> None:
    app, _calls = build(make_cache())
    async with app.async_test_client() as client:
        await client.get("/posts")
        with_cookie = await client.get("/posts", headers={"Cookie": "session=alice"})
        with_auth = await client.get("/posts", headers={"Authorization": "Bearer x"})
        # Neither served the anonymous copy, nor stored theirs for others.
        assert with_cookie.json()["call"] == 2
        assert with_auth.json()["call"] == 3
        assert (await client.get("/posts")).json()["call"] == 1


async def test_ignored_cookies_do_not_make_a_request_private(make_cache: CacheFactory) -> None:
    app, _calls = build(make_cache(ignore_cookies=["_ga*"]))
    async with app.async_test_client() as client:
        await client.get("/posts")
        assert (await client.get("/posts", headers={"Cookie": "_ga=GA1.2"})).json()["call"] == 1
        assert (await client.get("/posts", headers={"Cookie": "_ga=1; sid=2"})).json()["call"] == 2


async def test_a_cookie_added_on_the_way_out_is_never_stored(make_cache: CacheFactory) -> None:
    # The security battery sets the session cookie after the handler and the after-request
    # hooks ran: the store decision is taken on what the client receives.
    app, calls = build(make_cache(), security=True)
    async with app.async_test_client() as client:
        first = await client.get("/session-write")
        assert "set-cookie" in first.headers
        client.cookies.clear()
        second = await client.get("/session-write")
        assert "set-cookie" in second.headers  # a fresh session of its own, not a replay
    assert calls["session-write"] == 2


async def test_pages_using_the_csp_nonce_are_not_stored(make_cache: CacheFactory) -> None:
    from transom.security import CSPNonce

    app = App(Settings(secret_key="cache-view-tests"))
    Security(app)
    Cache(app, make_cache().config)
    calls = 0

    @app.get("/script")
    @cached()
    async def script(nonce: CSPNonce) -> Response:
        nonlocal calls
        calls += 1
        return Response(f'<script nonce="{nonce}"></script>', media_type="text/html")

    async with app.async_test_client() as client:
        first = await client.get("/script")
        second = await client.get("/script")
    assert calls == 2
    for response in (first, second):
        nonce = response.text.split('"')[1]
        assert f"'nonce-{nonce}'" in response.headers["content-security-policy"]


async def test_etag_and_304(make_cache: CacheFactory) -> None:
    app, calls = build(make_cache())
    async with app.async_test_client() as client:
        first = await client.get("/posts")
        etag = first.headers["etag"]
        miss_304 = await client.get("/posts?page=3", headers={"If-None-Match": '"nope"'})
        assert miss_304.status_code == 200
        hit = await client.get("/posts", headers={"If-None-Match": etag})
        assert hit.status_code == 304
        assert hit.content == b""
        assert hit.headers["etag"] == etag
        # A conditional request on a miss answers 304 too, and still stores the page.
        fresh = await client.get("/posts?page=9", headers={"If-None-Match": "*"})
        assert fresh.status_code == 304
        assert (await client.get("/posts?page=9")).json()["call"] == calls["posts"]


async def test_cache_control_on_an_uncached_handler(make_cache: CacheFactory) -> None:
    app, calls = build(make_cache())
    async with app.async_test_client() as client:
        first = await client.get("/controlled")
        assert first.headers["cache-control"] == "public, max-age=60"
        again = await client.get("/controlled", headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304
        assert again.headers["cache-control"] == "public, max-age=60"
        assert calls["controlled"] == 2  # not stored: cache_control is about HTTP caches
        stamp = "Tue, 02 Jan 2024 03:04:05 GMT"
        assert (await client.get("/dated", headers={"If-Modified-Since": stamp})).status_code == 304
        older = "Mon, 01 Jan 2024 00:00:00 GMT"
        assert (await client.get("/dated", headers={"If-Modified-Since": older})).status_code == 200
        bad = await client.get("/dated", headers={"If-Modified-Since": "not a date"})
        assert bad.status_code == 200


async def test_cached_views_answer_while_redis_is_down(prefix: str) -> None:
    from _services import require_service

    require_service("Redis", REDIS_HOST, REDIS_PORT)
    proxy = TcpProxy(REDIS_HOST, REDIS_PORT)
    await proxy.start()
    cache = Cache(CacheConfig(url=f"redis://127.0.0.1:{proxy.port}/0", key_prefix=prefix))
    app, _calls = build(cache)
    try:
        async with app.async_test_client() as client:
            assert (await client.get("/posts")).json()["call"] == 1
            assert (await client.get("/posts")).json()["call"] == 1
            await proxy.cut()
            for n in range(2, 6):
                response = await client.get("/posts")
                assert response.status_code == 200
                assert response.json()["call"] == n  # computed each time: no 500, no cache
            await proxy.restore()
    finally:
        await proxy.cut()
        await remove_keys(prefix)
    assert REDIS_URL  # the live server itself was never touched


async def test_cached_views_are_stored_behind_a_trusted_proxy(make_cache: CacheFactory) -> None:
    # Behind nginx every request carries X-Forwarded-*: the proxy-headers middleware must not
    # hand the app a copy of the scope, or the store step (which reads what the app wrote into
    # the scope) never sees the miss and nothing is ever cached (seen with bench/hosts.py).
    app = App(Settings(secret_key="cache-view-tests"))
    app.install(Security(SecurityConfig(trusted_proxies=["10.0.0.0/8"])))
    app.install(make_cache())
    calls: list[int] = []

    @app.get("/listed")
    @cached(ttl=60)
    async def listed() -> dict[str, int]:
        calls.append(1)
        return {"call": len(calls)}

    forwarded = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    async with app.async_test_client(client_address=("10.0.0.5", 4000)) as client:
        answers = [(await client.get("/listed", headers=forwarded)).json() for _ in range(3)]
    assert answers == [{"call": 1}] * 3
    assert len(calls) == 1
