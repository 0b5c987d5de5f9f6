"""Login attempts are rate-limited per address, per account and address, and per account;
unknown users cost a hash; hashing runs off the event loop."""

from __future__ import annotations

import threading
from typing import ClassVar

import pytest
from sqlalchemy import select

from transom.auth import Argon2Hasher, PasswordHashers, User
from transom.auth.hashers import Verification
from transom.db import get_database

from .conftest import PASSWORD, AppFactory, add_user, post_form

pytestmark = pytest.mark.anyio


class RecordingHasher(Argon2Hasher):
    """Argon2 that notes the thread of each verification and hash."""

    verified: ClassVar[list[int]] = []
    hashed: ClassVar[list[int]] = []

    def verify(self, password: str, encoded: str) -> Verification:
        RecordingHasher.verified.append(threading.get_ident())
        return super().verify(password, encoded)

    def hash(self, password: str) -> str:
        RecordingHasher.hashed.append(threading.get_ident())
        return super().hash(password)


async def test_account_limit_locks_out_the_guessing_address_only(make_app: AppFactory) -> None:
    # The rule: attempts on one account are counted per client address (login_rate_account),
    # so guessing locks out the guesser, not the owner signing in from elsewhere.
    app = make_app(login_rate_account="3/minute", login_rate_ip="100/minute")
    async with (
        app.async_test_client() as attacker,
        app.async_test_client(client_address=("10.0.0.2", 1)) as owner,
    ):
        await add_user(app)
        for _ in range(3):
            response = await post_form(
                attacker, "/auth/login", {"username": "alice", "password": "x"}
            )
            assert response.status_code == 422
        # The attacker's address is locked out of this account (a correct password doesn't
        # help, and another spelling of the name is the same account).
        blocked = await post_form(
            attacker, "/auth/login", {"username": "ALICE ", "password": PASSWORD}
        )
        assert blocked.status_code == 429
        assert "retry-after" in blocked.headers
        # The owner, from another address, still gets in.
        assert (
            await post_form(owner, "/auth/login", {"username": "alice", "password": PASSWORD})
        ).status_code == 303
        # Unknown accounts are limited the same way: no enumeration through the limit.
        for _ in range(3):
            await post_form(attacker, "/auth/login", {"username": "nobody", "password": "x"})
        assert (
            await post_form(attacker, "/auth/login", {"username": "nobody", "password": "x"})
        ).status_code == 429


async def test_distributed_guessing_of_one_account_is_limited(make_app: AppFactory) -> None:
    # Many addresses against one account: login_rate_account_total counts them together.
    # Attempts an address makes past its own budget are refused before they reach the total,
    # so one address cannot spend the account's budget alone.
    app = make_app(
        login_rate_ip="100/minute",
        login_rate_account="2/minute",
        login_rate_account_total="5/minute",
    )
    clients = [app.async_test_client(client_address=(f"10.0.1.{i}", 1)) for i in range(3)]
    async with clients[0] as a, clients[1] as b, clients[2] as c:
        await add_user(app)
        wrong = {"username": "alice", "password": "x"}
        statuses = [(await post_form(a, "/auth/login", wrong)).status_code for _ in range(6)]
        assert statuses == [422, 422, 429, 429, 429, 429]  # the total holds 2 of them
        assert [(await post_form(b, "/auth/login", wrong)).status_code for _ in range(2)] == [
            422,
            422,
        ]
        assert (await post_form(c, "/auth/login", wrong)).status_code == 422  # 5 of 5
        assert (await post_form(c, "/auth/login", wrong)).status_code == 429  # the total


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


async def test_unknown_users_cost_a_hash_off_the_event_loop(make_app: AppFactory) -> None:
    hashers = PasswordHashers(RecordingHasher(time_cost=1, memory_cost=1024, parallelism=1))
    app = make_app(hashers=hashers)
    loop_thread = threading.get_ident()
    async with app.async_test_client() as client:
        await add_user(app)
        for name in ("alice", "nobody"):
            await post_form(client, "/auth/login", {"username": name, "password": "wrong"})
            RecordingHasher.verified.clear()
            response = await post_form(
                client, "/auth/login", {"username": name, "password": "wrong"}
            )
            assert response.status_code == 422
            # Exactly one verification either way (the unknown name against a dummy hash),
            # in the thread pool: argon2 on the loop would stall every other request.
            assert len(RecordingHasher.verified) == 1
            assert loop_thread not in RecordingHasher.verified
        # Same for a successful login, the token endpoint and the rehash of an old hash.
        async with get_database(app).session() as db:
            user = (await db.execute(select(User))).scalar_one()
            user.password = Argon2Hasher(time_cost=1, memory_cost=512, parallelism=1).hash(PASSWORD)
            await db.commit()
        RecordingHasher.verified.clear()
        RecordingHasher.hashed.clear()
        await post_form(client, "/auth/login", {"username": "alice", "password": PASSWORD})
        await client.post("/auth/token", json={"username": "alice", "password": PASSWORD})
        assert len(RecordingHasher.verified) == 2
        assert len(RecordingHasher.hashed) == 1  # the upgrade to the current parameters
        assert loop_thread not in RecordingHasher.verified + RecordingHasher.hashed
