"""The in-process tier of ``@cached``: finished responses kept as objects in memory.

A hit in memory shares one stored page between requests: nothing done to one answer (an
after-request hook, an ASGI middleware editing the message) may reach the stored page or the
next answer. The same checks run on Redis, where each hit decodes a copy.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from redis.asyncio import Redis

from transom import App, Request, Response, Settings
from transom._types import ASGIApp, Message, Receive, Scope, Send
from transom.cache import Cache, cached
from transom.cache.views import _local_key, _Policy

from .conftest import REDIS_URL, CacheFactory

pytestmark = pytest.mark.anyio

BODY = {"items": list(range(20))}


class EditsTheStartMessage:
    """An ASGI middleware that changes the header list of every answer in place."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def edit(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"].append((b"x-middleware", b"1"))
                message["headers"][0] = (b"x-replaced", b"yes")
            await send(message)

        await self.app(scope, receive, edit)


def build(cache: Cache, *, middleware: bool = False) -> tuple[App, list[int]]:
    app = App(Settings(secret_key="cache-memory-tests"))
    app.install(cache)
    if middleware:
        app.add_middleware(EditsTheStartMessage)
    calls: list[int] = []

    @app.get("/list")
    @cached(ttl=60, tags=("list",))
    async def listed() -> dict[str, Any]:
        calls.append(1)
        return BODY

    @app.get("/items/{name}")
    @cached(ttl=60)
    async def item(name: str, q: str = "") -> dict[str, Any]:
        calls.append(1)
        return {"name": name, "q": q}

    @app.after_request
    def meddle(request: Request, response: Response) -> Response | None:
        how = request.headers.get("x-meddle")
        if how == "headers":
            response.headers["X-Meddled"] = "1"
            response.raw_headers.append((b"etag", b'"forged"'))
        elif how == "body":
            response.body = b'{"items":"changed"}'
            response.status_code = 203
        elif how == "cookie":
            response.set_cookie("meddled", "1")
        elif how == "replace":
            return Response(b"other", media_type="text/plain")
        return None

    return app, calls


async def test_a_changed_answer_never_changes_the_stored_page(make_cache: CacheFactory) -> None:
    app, calls = build(make_cache())
    async with app.async_test_client() as client:
        first = await client.get("/list")
        reference = (first.content, first.headers["etag"], first.headers["content-length"])
        headers = await client.get("/list", headers={"X-Meddle": "headers"})
        assert headers.headers["x-meddled"] == "1"
        assert headers.headers.get_list("etag") == [reference[1], '"forged"']
        body = await client.get("/list", headers={"X-Meddle": "body"})
        assert (body.status_code, body.content) == (203, b'{"items":"changed"}')
        assert body.headers["content-length"] == str(len(b'{"items":"changed"}'))
        cookie = await client.get("/list", headers={"X-Meddle": "cookie"})
        assert cookie.headers["set-cookie"].startswith("meddled=1")
        assert cookie.content == reference[0]
        client.cookies.clear()
        replaced = await client.get("/list", headers={"X-Meddle": "replace"})
        assert replaced.content == b"other"
        for _ in range(2):
            again = await client.get("/list")
            assert again.status_code == 200
            assert (again.content, again.headers["etag"], again.headers["content-length"]) == (
                reference
            )
            assert "x-meddled" not in again.headers
            assert "set-cookie" not in again.headers
            assert again.headers.get_list("etag") == [reference[1]]
    assert calls == [1]  # every answer above but the first was a hit


async def test_a_middleware_editing_the_message_never_changes_the_next_hit(
    make_cache: CacheFactory,
) -> None:
    app, calls = build(make_cache(), middleware=True)
    async with app.async_test_client() as client:
        answers = [await client.get("/list") for _ in range(4)]
        head = await client.head("/list")
    assert calls == [1]
    for answer in answers:
        assert answer.json() == BODY
        assert answer.headers.get_list("x-middleware") == ["1"]  # once, not once per hit
        assert answer.headers["x-replaced"] == "yes"
    # The middleware replaced the first header (Content-Type) of each answer, never the page's.
    assert [a.headers.get("content-type") for a in answers] == [None] * 4
    assert head.content == b""
    assert head.headers["content-length"] == answers[0].headers["content-length"]
    assert head.headers.get_list("x-middleware") == ["1"]


async def test_hits_follow_the_app_header_block(make_cache: CacheFactory) -> None:
    # The page's merged headers are remembered per header block: a change to the app's
    # default headers (the app rebuilt) is on the very next hit.
    app, calls = build(make_cache())
    async with app.async_test_client() as client:
        await client.get("/list")
        assert (await client.get("/list")).headers["x-frame-options"] == "DENY"
        app.default_headers["X-Frame-Options"] = "SAMEORIGIN"
        app.invalidate()
        assert (await client.get("/list")).headers["x-frame-options"] == "SAMEORIGIN"
    assert calls == [1]


async def test_paths_queries_and_long_urls_are_keyed_apart(make_cache: CacheFactory) -> None:
    app, calls = build(make_cache())
    long = "x" * 600  # past the short-key limit: digested
    async with app.async_test_client() as client:
        for _ in range(2):
            assert (await client.get("/items/a%0Ab")).json() == {"name": "a\nb", "q": ""}
            assert (await client.get("/items/a", params={"q": "b"})).json() == {
                "name": "a",
                "q": "b",
            }
            assert (await client.get(f"/items/{long}")).json()["name"] == long
            assert (await client.get(f"/items/{long}", params={"q": "1"})).json()["q"] == "1"
    assert len(calls) == 4


def test_local_keys_are_injective() -> None:
    policy = _Policy(60, (), False, ())

    def key(host: bytes, path: str, query: bytes) -> str:
        scope = {
            "type": "http",
            "scheme": "http",
            "path": path,
            "root_path": "",
            "query_string": query,
            "headers": [(b"host", host)],
        }
        return _local_key(Request(scope), policy, host)

    # Joined naively by newlines these two would be the same string.
    assert key(b"a\nb", "/c", b"") != key(b"a", "b\n/c", b"")
    assert key(b"h", "/p\n", b"q") != key(b"h", "/p", b"\nq")
    assert key(b"h", "/p", b"q") == key(b"h", "/p", b"q")
    assert key(b"h", "/p", b"q").count("\n") == 3  # the short form, no digest
    assert key(b"h", "/p", b"q" * 600).count("\n") == 0  # long: a digest


async def test_object_entries_in_memory(make_cache: CacheFactory, kind: str) -> None:
    cache = make_cache(max_entries=100, max_bytes=10_000)
    page = ("an", "immutable", "value")
    stored = await cache.set_object("page", page, size=100, ttl=60, tags=("t",))
    if kind == "redis":
        assert not cache.stores_objects
        assert stored is False
        assert cache.get_object("page") is None
        return
    assert cache.stores_objects
    assert stored
    assert cache.get_object("page") is page  # the object itself, no copy
    assert await cache.get("page") is None  # not bytes: the bytes API sees no entry
    with pytest.raises(ValueError, match="does not hold an integer"):
        await cache.incr("page")
    assert await cache.touch("page", 60)
    assert cache.get_object("page") is page
    assert cache.backend.bytes >= 100  # type: ignore[attr-defined]
    await cache.delete_tags("t")
    assert cache.get_object("page") is None
    await cache.set_object("big", page, size=20_000, ttl=math.inf)  # larger than the bound
    assert cache.get_object("big") is None
    await cache.set_object("p2", page, size=100)
    assert await cache.clear() >= 1
    assert cache.get_object("p2") is None
    assert cache.backend.bytes < 100  # type: ignore[attr-defined]


async def test_an_unreadable_stored_page_is_a_miss(
    make_cache: CacheFactory, kind: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    if kind != "redis":
        pytest.skip("only Redis holds pages serialised")
    app, calls = build(make_cache())
    client_redis = Redis.from_url(REDIS_URL)
    try:
        async with app.async_test_client() as client:
            assert (await client.get("/list")).status_code == 200
            keys = [k async for k in client_redis.scan_iter(match=f"{prefix}:*view:*")]
            assert keys
            for key in keys:
                await client_redis.set(key, b"\x00b{not json\n{}")
            again = await client.get("/list")
            assert (again.status_code, again.json()) == (200, BODY)
    finally:
        await client_redis.aclose()
    assert len(calls) == 2
    assert "Unreadable cached view" in caplog.text


async def test_a_hit_repeats_the_content_type_as_it_was_sent(make_cache: CacheFactory) -> None:
    app = App(Settings(secret_key="cache-memory-tests"))
    app.install(make_cache())

    @app.get("/bare-text")
    @cached(ttl=60)
    async def bare_text() -> Response:
        response = Response(b"plain")
        response.content_type = "text/plain"  # no charset, on purpose
        return response

    async with app.async_test_client() as client:
        answers = [await client.get("/bare-text") for _ in range(3)]
    assert [a.headers["content-type"] for a in answers] == ["text/plain"] * 3
    assert [a.content for a in answers] == [b"plain"] * 3
