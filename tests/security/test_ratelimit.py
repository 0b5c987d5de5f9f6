"""Rate limiting in memory: per IP, per user, per key, on routes and routers; 429 + Retry-After."""

from __future__ import annotations

import pytest

from transom import App, Request, Router, Settings
from transom.security import (
    CSRFToken,
    MemoryRateLimitBackend,
    Security,
    csrf_token,
    limit,
    parse_rate,
    start_session,
)
from transom.security.ratelimit import RateLimit

from .conftest import SECRET


def make() -> App:
    app = App(Settings(secret_key=SECRET))
    Security(app)

    @app.get("/ip")
    @limit("3/minute")
    async def per_ip() -> str:
        return "ok"

    @app.get("/key")
    @limit("2/hour", key=lambda request: request.headers.get("x-api-key"))
    async def per_key() -> str:
        return "ok"

    @app.get("/user")
    @limit("2/minute", key="user")
    async def per_user() -> str:
        return "ok"

    @app.get("/t")
    async def token(token: CSRFToken) -> str:
        return token

    @app.post("/login")
    async def do_login(request: Request) -> None:
        await start_session(request, request.query["user"])

    api = Router("/api", name="api")

    @api.get("/a")
    async def a() -> str:
        return "a"

    @api.get("/b")
    async def b() -> str:
        return "b"

    limit("3/minute")(api)
    app.include_router(api)

    @app.get("/dep", dependencies=[limit("1/minute")])
    async def dep() -> str:
        return "dep"

    @app.get("/writes-token")
    async def writes_token(request: Request) -> str:
        return await csrf_token(request)

    @app.route("/writes", methods=["GET", "POST"])
    @limit("1/minute", methods={"POST"})
    @limit("10/minute")
    async def writes() -> str:
        return "w"

    return app


def test_per_ip_limit_and_retry_after() -> None:
    app = make()
    with app.test_client() as one, app.test_client(client_address=("10.9.9.9", 1)) as two:
        assert [one.get("/ip").status_code for _ in range(3)] == [200, 200, 200]
        refused = one.get("/ip")
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert "Rate limit exceeded" in refused.json()["detail"]
        assert two.get("/ip").status_code == 200  # another address, another budget


def test_per_key_limit() -> None:
    app = make()
    with app.test_client() as client:
        codes = [client.get("/key", headers={"X-API-Key": "k1"}).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        assert client.get("/key", headers={"X-API-Key": "k2"}).status_code == 200
        # key() returning None: not limited.
        assert all(client.get("/key").status_code == 200 for _ in range(4))


def test_per_user_limit_follows_the_user_across_addresses() -> None:
    app = make()
    with app.test_client() as first:
        csrf = first.get("/t").text
        first.post("/login?user=alice", headers={"X-CSRF-Token": csrf})
        assert [first.get("/user").status_code for _ in range(3)] == [200, 200, 429]
        cookies = dict(first.cookies)
    with app.test_client(client_address=("10.1.1.1", 2), cookies=cookies) as second:
        assert second.get("/user").status_code == 429  # same user, other address
    with app.test_client(client_address=("10.1.1.1", 2)) as anonymous:
        assert anonymous.get("/user").status_code == 200  # falls back to the IP


def test_router_limit_is_shared_by_its_routes() -> None:
    with make().test_client() as client:
        codes = [client.get(path).status_code for path in ("/api/a", "/api/b", "/api/a", "/api/b")]
    assert codes == [200, 200, 200, 429]


def test_limit_as_dependency() -> None:
    with make().test_client() as client:
        assert [client.get("/dep").status_code for _ in range(2)] == [200, 429]


def test_stacked_limits_and_methods() -> None:
    with make().test_client() as client:
        assert client.get("/writes").status_code == 200
        assert client.get("/writes").status_code == 200
        token = client.get("/writes-token").text  # the browser now has a session
        # A forged POST is refused by CSRF before the handler's limits are counted...
        assert client.post("/writes").status_code == 403
        # ...so the POST budget (1/minute) is still whole for a real one.
        assert client.post("/writes", headers={"X-CSRF-Token": token}).status_code == 200
        assert client.post("/writes", headers={"X-CSRF-Token": token}).status_code == 429


def test_limit_decorator_works_without_the_security_battery() -> None:
    app = App(Settings(secret_key=SECRET))

    @limit("1/minute")  # above the route decorator: order does not matter
    @app.get("/once")
    async def once() -> str:
        return "ok"

    with app.test_client() as client:
        assert [client.get("/once").status_code for _ in range(2)] == [200, 429]


def test_window_resets() -> None:
    import asyncio

    backend = MemoryRateLimitBackend()

    async def run() -> list[int]:
        counts = [(await backend.hit("k", 1))[0] for _ in range(3)]
        await asyncio.sleep(1.05)
        counts.append((await backend.hit("k", 1))[0])
        return counts

    assert asyncio.run(run()) == [1, 2, 3, 1]


def test_memory_backend_is_bounded() -> None:
    import asyncio

    backend = MemoryRateLimitBackend(max_keys=10)

    async def run() -> None:
        for i in range(100):
            await backend.hit(f"k{i}", 60)

    asyncio.run(run())
    assert len(backend._windows) <= 10


def test_limit_works_without_security_as_a_dependency() -> None:
    app = App(Settings(secret_key=SECRET))

    @app.get("/x", dependencies=[limit("1/minute")])
    async def x() -> str:
        return "x"

    with app.test_client() as client:
        assert [client.get("/x").status_code for _ in range(2)] == [200, 429]


@pytest.mark.parametrize(
    ("rate", "parsed"),
    [
        ("10/minute", (10, 60)),
        ("10/minutes", (10, 60)),
        ("5/10s", (5, 10)),
        ("100 per hour", (100, 3600)),
        ("1000/day", (1000, 86400)),
        ("3/second", (3, 1)),
    ],
)
def test_parse_rate(rate: str, parsed: tuple[int, int]) -> None:
    assert parse_rate(rate) == parsed


@pytest.mark.parametrize("rate", ["10", "0/minute", "ten/minute", "10/fortnight", ""])
def test_parse_rate_rejects(rate: str) -> None:
    with pytest.raises(ValueError, match="10/minute"):
        parse_rate(rate)


def test_bad_key_kind() -> None:
    with pytest.raises(ValueError, match="key must be"):
        RateLimit("1/minute", key="session")
