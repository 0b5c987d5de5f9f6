"""Login attempts are rate-limited per account and per address; unknown users cost a hash."""

from __future__ import annotations

import time

import pytest

from transom.auth import Argon2Hasher, PasswordHashers
from transom.auth.hashers import Verification

from .conftest import PASSWORD, AppFactory, add_user, post_form

pytestmark = pytest.mark.anyio


class SlowHasher(Argon2Hasher):
    """Argon2 plus a fixed delay, so "did it hash?" shows up in the response time."""

    calls = 0

    def verify(self, password: str, encoded: str) -> Verification:
        SlowHasher.calls += 1
        time.sleep(0.15)
        return super().verify(password, encoded)


async def test_per_account_limit(make_app: AppFactory) -> None:
    app = make_app(login_rate_account="3/minute", login_rate_ip="100/minute")
    async with (
        app.async_test_client() as first,
        app.async_test_client(client_address=("10.0.0.2", 1)) as second,
    ):
        await add_user(app)
        for _ in range(3):
            response = await post_form(first, "/auth/login", {"username": "alice", "password": "x"})
            assert response.status_code == 422
        # Another address, same account: still limited (and a correct password doesn't help).
        blocked = await post_form(
            second, "/auth/login", {"username": "ALICE ", "password": PASSWORD}
        )
        assert blocked.status_code == 429
        assert "retry-after" in blocked.headers
        # Unknown accounts are limited the same way: no enumeration through the limit.
        for _ in range(3):
            await post_form(first, "/auth/login", {"username": "nobody", "password": "x"})
        assert (
            await post_form(first, "/auth/login", {"username": "nobody", "password": "x"})
        ).status_code == 429


async def test_per_address_limit(make_app: AppFactory) -> None:
    app = make_app(login_rate_account="100/minute", login_rate_ip="4/minute")
    async with (
        app.async_test_client() as client,
        app.async_test_client(client_address=("10.0.0.9", 1)) as other,
    ):
        await add_user(app)
        for name in ("a", "b", "c", "d"):
            assert (
                await post_form(client, "/auth/login", {"username": name, "password": "x"})
            ).status_code == 422
        assert (
            await post_form(client, "/auth/login", {"username": "e", "password": "x"})
        ).status_code == 429
        assert (
            await post_form(other, "/auth/login", {"username": "alice", "password": PASSWORD})
        ).status_code == 303


async def test_token_endpoint_is_limited_too(make_app: AppFactory) -> None:
    app = make_app(login_rate_account="2/minute")
    async with app.async_test_client() as client:
        await add_user(app)
        for _ in range(2):
            await client.post("/auth/token", json={"username": "alice", "password": "x"})
        response = await client.post(
            "/auth/token", json={"username": "alice", "password": PASSWORD}
        )
        assert response.status_code == 429


async def test_unknown_users_cost_a_hash(make_app: AppFactory) -> None:
    hashers = PasswordHashers(SlowHasher(time_cost=1, memory_cost=1024, parallelism=1))
    app = make_app(hashers=hashers)
    async with app.async_test_client() as client:
        await add_user(app)
        await client.get("/csrf")
        # One unmeasured attempt each first: the first login of a run pays one-time costs
        # (statement compilation, the dummy hash itself) that would skew whichever is first.
        for name in ("alice", "nobody"):
            await post_form(client, "/auth/login", {"username": name, "password": "wrong"})
        timings = {}
        for name in ("alice", "nobody"):
            SlowHasher.calls = 0
            start = time.perf_counter()
            response = await post_form(
                client, "/auth/login", {"username": name, "password": "wrong"}
            )
            timings[name] = time.perf_counter() - start
            assert response.status_code == 422
            assert SlowHasher.calls == 1  # exactly one verification either way
        assert timings["nobody"] >= 0.15
        assert timings["alice"] >= 0.15
        assert abs(timings["nobody"] - timings["alice"]) < 0.1
