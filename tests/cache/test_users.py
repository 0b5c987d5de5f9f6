"""One user's page is never served to another: two logged-in users, with the auth battery."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from auth.conftest import (  # noqa: F401 - fixtures of the auth battery's test setup
    AppFactory,
    AuthDatabases,
    add_user,
    backend,
    db_url,
    log_in,
    make_app,
    outbox,
)
from transom import App
from transom.auth import OptionalUser
from transom.cache import Cache, cached

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="session")
def auth_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthDatabases]:
    # Databases of this package's own: the auth tests' session fixture, imported here, would
    # be a second instance creating (and dropping) the very same database.
    registry = AuthDatabases(tmp_path_factory.mktemp("cache-auth"), name="cache_auth")
    yield registry
    registry.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def add_pages(app: App) -> dict[str, int]:
    calls: dict[str, int] = {"dashboard": 0, "home": 0}

    @app.get("/dashboard")
    @cached(ttl=60, vary_on_user=True)
    async def dashboard(user: OptionalUser) -> dict[str, Any]:
        calls["dashboard"] += 1
        return {"user": user.username if user else None}

    @app.get("/home")
    @cached(ttl=60)
    async def home(user: OptionalUser) -> dict[str, Any]:
        calls["home"] += 1
        return {"user": user.username if user else None}

    return calls


async def test_two_logged_in_users_never_see_each_others_page(
    make_app: AppFactory,  # noqa: F811 - the fixture imported above
) -> None:
    app = make_app()
    Cache(app)
    calls = add_pages(app)
    await add_user(app, "alice")
    await add_user(app, "bob")
    async with (
        app.async_test_client() as alice,
        app.async_test_client() as bob,
        app.async_test_client() as anonymous,
    ):
        await log_in(alice, "alice")
        await log_in(bob, "bob")
        for _ in range(3):
            assert (await alice.get("/dashboard")).json() == {"user": "alice"}
            assert (await bob.get("/dashboard")).json() == {"user": "bob"}
            assert (await anonymous.get("/dashboard")).json() == {"user": None}
        # vary_on_user: one copy per user (and one for anonymous visitors), each computed once.
        assert calls["dashboard"] == 3
        response = await alice.get("/dashboard")
        assert response.headers["cache-control"] == "private"

        # A plain @cached page: logged-in requests are never served from the cache nor stored.
        for _ in range(2):
            assert (await anonymous.get("/home")).json() == {"user": None}
            assert (await alice.get("/home")).json() == {"user": "alice"}
            assert (await bob.get("/home")).json() == {"user": "bob"}
        assert calls["home"] == 1 + 2 + 2

        # Logged out: alice's cookie-less successor gets the anonymous page, not hers.
        alice.cookies.clear()
        assert (await alice.get("/dashboard")).json() == {"user": None}
