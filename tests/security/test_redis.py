"""Redis backends against the real server: sessions, rate limits, two processes, outages."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from _services import TcpProxy
from transom import App, Settings
from transom.exceptions import ImproperlyConfigured
from transom.security import Security, SecurityConfig, SessionConfig, limit
from transom.security.backends.redis import RedisRateLimitBackend, RedisSessionBackend

from .conftest import REDIS_HOST, REDIS_PORT, SECRET, AppFactory, build_app, fetch_token

HERE = Path(__file__).resolve().parent


async def _keys(url: str, prefix: str) -> list[bytes]:
    client = Redis.from_url(url)
    try:
        return [k async for k in client.scan_iter(match=prefix + "*")]
    finally:
        await client.aclose()


async def _cleanup(url: str, prefix: str) -> None:
    client = Redis.from_url(url)
    try:
        keys = [k async for k in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
def redis_sessions(redis_url: str, redis_prefix: str) -> Iterator[SessionConfig]:
    yield SessionConfig(backend=RedisSessionBackend(redis_url, prefix=redis_prefix))
    asyncio.run(_cleanup(redis_url, redis_prefix))


def test_redis_session_round_trip(
    make_app: AppFactory, redis_sessions: SessionConfig, redis_url: str, redis_prefix: str
) -> None:
    with make_app(sessions=redis_sessions).test_client() as client:
        key = client.get("/set?key=cart&value=3").json()["key"]
        assert client.get("/session").json() == {"cart": "3"}
        assert "cart" not in str(client.cookies["session"])
    assert asyncio.run(_keys(redis_url, redis_prefix)) == [(redis_prefix + key).encode()]


def test_redis_session_ttl_is_the_idle_timeout(
    make_app: AppFactory, redis_url: str, redis_prefix: str
) -> None:
    config = SessionConfig(
        backend=RedisSessionBackend(redis_url, prefix=redis_prefix), idle_timeout=120
    )
    with make_app(sessions=config).test_client() as client:
        key = client.get("/set?key=a&value=1").json()["key"]

    async def ttl() -> int:
        redis = Redis.from_url(redis_url)
        try:
            return int(await redis.ttl(redis_prefix + key))
        finally:
            await redis.delete(redis_prefix + key)
            await redis.aclose()

    assert 100 < asyncio.run(ttl()) <= 120


def test_redis_login_cycles_key_and_logout_deletes(
    make_app: AppFactory, redis_sessions: SessionConfig, redis_url: str, redis_prefix: str
) -> None:
    with make_app(sessions=redis_sessions).test_client() as client:
        token = fetch_token(client)
        before = client.get("/key").json()["key"]
        after = client.post("/login", headers={"X-CSRF-Token": token}).json()["key"]
        assert after != before
        assert asyncio.run(_keys(redis_url, redis_prefix)) == [(redis_prefix + after).encode()]
        stale_cookie = client.cookies["session"]
        client.post("/logout", headers={"X-CSRF-Token": fetch_token(client)})
        assert asyncio.run(_keys(redis_url, redis_prefix)) == []
        client.cookies.clear()
        response = client.get("/key", headers={"Cookie": f"session={stale_cookie}"})
        assert response.json()["key"] not in (before, after)


def test_redis_unknown_key_is_not_adopted(
    make_app: AppFactory, redis_sessions: SessionConfig
) -> None:
    from .test_sessions import sign

    planted = "Z" * 43
    with make_app(sessions=redis_sessions).test_client() as client:
        cookie = sign(planted, kind="key")
        response = client.get("/set?key=a&value=1", headers={"Cookie": f"session={cookie}"})
    assert response.json()["key"] != planted


@pytest.mark.anyio
async def test_redis_rate_limit_backend_counts_atomically(
    redis_url: str, redis_prefix: str
) -> None:
    backend = RedisRateLimitBackend(redis_url, prefix=redis_prefix)
    try:
        results = await asyncio.gather(*(backend.hit("k", 60) for _ in range(20)))
        assert sorted(count for count, _ in results) == list(range(1, 21))
        assert all(0 < reset <= 60 for _, reset in results)
    finally:
        await backend.close()
        await _cleanup(redis_url, redis_prefix)


# -- two real server processes sharing Redis ------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, process: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early: {process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        try:
            httpx.get(url + "/get", timeout=0.5)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not start in time")


@pytest.fixture
def two_servers(redis_url: str, redis_prefix: str) -> Iterator[list[str]]:
    env = {
        **os.environ,
        "TRANSOM_SECRET_KEY": SECRET,
        "TRANSOM_TEST_REDIS_URL": redis_url,
        "TRANSOM_TEST_REDIS_PREFIX": redis_prefix,
        "PYTHONPATH": str(HERE),
    }
    processes: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        for _ in range(2):
            port = _free_port()
            command = [sys.executable, "-m", "uvicorn", "redis_app:app", "--host", "127.0.0.1"]
            command += ["--port", str(port), "--log-level", "warning"]
            processes.append(subprocess.Popen(command, env=env, cwd=HERE, stderr=subprocess.PIPE))
            urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 20
        for url, process in zip(urls, processes, strict=True):
            _wait_ready(url, process, deadline)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        asyncio.run(_cleanup(redis_url, redis_prefix))


def test_rate_limit_is_shared_by_two_processes(two_servers: list[str]) -> None:
    first, second = two_servers
    results: list[tuple[int, Any]] = []
    with httpx.Client(timeout=5) as client:
        for i in range(8):
            response = client.get((first if i % 2 == 0 else second) + "/limited")
            results.append((response.status_code, response))
    codes = [code for code, _ in results]
    assert codes == [200] * 5 + [429] * 3
    pids = {response.json()["pid"] for code, response in results if code == 200}
    assert len(pids) == 2  # both processes answered
    assert 1 <= int(results[-1][1].headers["retry-after"]) <= 60


def test_session_is_shared_by_two_processes(two_servers: list[str]) -> None:
    first, second = two_servers
    with httpx.Client(timeout=5) as client:
        set_response = client.get(first + "/set", params={"value": "shared"})
        cookie = set_response.headers["set-cookie"].split(";")[0]
        response = client.get(second + "/get", headers={"Cookie": cookie})
    assert response.json()["value"] == "shared"
    assert response.json()["pid"] != set_response.json()["pid"]


# -- Redis outage: 503 + Retry-After, one warning per request, recovery without restart ----


async def _app_behind_proxy(proxy: TcpProxy, prefix: str, **limit_options: Any) -> App:
    url = f"redis://127.0.0.1:{proxy.port}/0"
    app = build_app(
        sessions=SessionConfig(backend=RedisSessionBackend(url, prefix=prefix + "s:")),
        rate_limit_backend=RedisRateLimitBackend(url, prefix=prefix + "r:"),
    )

    @app.get("/limited")
    @limit("100/minute", **limit_options)
    async def limited() -> dict[str, bool]:
        return {"ok": True}

    return app


def _outage_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    caplog.clear()
    return records


@pytest.mark.anyio
async def test_redis_outage_gives_503_and_recovers(
    redis_url: str, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = TcpProxy(REDIS_HOST, REDIS_PORT)
    await proxy.start()
    app = await _app_behind_proxy(proxy, redis_prefix)
    try:
        async with app.async_test_client() as client:
            assert (await client.get("/set?key=cart&value=3")).status_code == 200
            assert (await client.get("/limited")).status_code == 200
            token = (await client.get("/token")).json()["token"]
            cookie = client.cookies["session"]

            await proxy.cut()
            caplog.clear()
            for path in ("/session", "/limited", "/session", "/limited"):
                response = await client.get(path)
                assert response.status_code == 503, (path, response.text)
                assert response.headers["retry-after"] == "5"
                assert "set-cookie" not in response.headers
                records = _outage_records(caplog)
                assert [(r.name, r.levelname) for r in records] == [
                    ("transom.security", "WARNING")
                ], path
                assert "Redis" in records[0].getMessage()
                assert records[0].exc_info is None  # one line, not a traceback per request
            # CSRF checks need the session's secret: same answer, not a 403 nor a 500.
            response = await client.post("/submit", headers={"X-CSRF-Token": token})
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "5"
            assert len(_outage_records(caplog)) == 1
            # A new visitor's session can't be saved either: 503, not a cookie for nothing.
            client.cookies.clear()
            response = await client.get("/set?key=cart&value=4")
            assert response.status_code == 503
            assert response.headers["retry-after"] == "5"
            assert "set-cookie" not in response.headers
            assert len(_outage_records(caplog)) == 1

            await proxy.restore()  # same client objects, no restart
            client.cookies.set("session", cookie)
            response = await client.get("/session")
            assert response.status_code == 200, response.text
            assert response.json()["cart"] == "3"
            assert (await client.get("/limited")).status_code == 200
            assert _outage_records(caplog) == []
    finally:
        await proxy.cut()
        await _cleanup(redis_url, redis_prefix)


@pytest.mark.anyio
async def test_rate_limit_fail_open_lets_requests_through_an_outage(
    redis_url: str, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = TcpProxy(REDIS_HOST, REDIS_PORT)
    await proxy.start()
    app = await _app_behind_proxy(proxy, redis_prefix, fail_open=True)
    try:
        async with app.async_test_client() as client:
            await proxy.cut()
            caplog.clear()
            response = await client.get("/limited")  # no session involved
            assert response.status_code == 200, response.text
            records = _outage_records(caplog)
            assert [(r.name, r.levelname) for r in records] == [("transom.security", "WARNING")]
            assert "fail_open" in records[0].getMessage()
    finally:
        await proxy.cut()
        await _cleanup(redis_url, redis_prefix)


def test_rate_limits_go_to_redis_from_the_environment(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # TRANSOM_RATE_LIMIT_URL: every process and host of a deployment counts in one place.
    monkeypatch.setenv("TRANSOM_RATE_LIMIT_URL", redis_url)
    scope = f"env-test-{uuid.uuid4().hex[:12]}"  # a counter no other run touches

    def build() -> App:
        app = App(Settings(secret_key=SECRET))
        security = app.install(Security())
        assert isinstance(security.rate_limit_backend, RedisRateLimitBackend)

        @app.get("/limited")
        @limit("2/minute", scope=scope)
        async def limited() -> dict[str, bool]:
            return {"ok": True}

        return app

    with build().test_client() as first:
        assert [first.get("/limited").status_code for _ in range(2)] == [200, 200]
    with build().test_client() as second:  # another "process": same counter
        assert second.get("/limited").status_code == 429
    counters = asyncio.run(_keys(redis_url, f"transom:ratelimit:{scope}"))
    assert counters  # counted in Redis, under the default prefix
    asyncio.run(_delete(redis_url, counters))


async def _delete(url: str, keys: list[bytes]) -> None:
    client = Redis.from_url(url)
    try:
        await client.delete(*keys)
    finally:
        await client.aclose()


def test_a_rate_limit_url_that_is_not_redis_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSOM_RATE_LIMIT_URL", "memcached://127.0.0.1")
    with pytest.raises(ImproperlyConfigured, match="TRANSOM_RATE_LIMIT_URL"):
        SecurityConfig()
