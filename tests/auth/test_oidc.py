"""Social login against a local OpenID Connect provider (a real server on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from transom.auth import User
from transom.auth.models import SocialAccount
from transom.auth.oidc import OAuthProvider, github, google, oidc
from transom.db import get_database

from .conftest import AppFactory, add_user, log_in
from .oidc_provider import CLIENT_ID, CLIENT_SECRET, LocalProvider

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="session")
def provider() -> Iterator[LocalProvider]:
    server = LocalProvider()
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _reset(provider: LocalProvider) -> None:
    provider.misbehave = None
    provider.next_identity = {
        "sub": "user-42",
        "email": "dana@example.com",
        "email_verified": True,
        "preferred_username": "dana",
    }


def _local(provider: LocalProvider) -> OAuthProvider:
    return oidc("local", provider.issuer, CLIENT_ID, CLIENT_SECRET, title="Local")


async def _social_login(client: Any, next_url: str = "", name: str = "local") -> httpx.Response:
    params = {"next": next_url} if next_url else None
    start = await client.get(f"/auth/oauth/{name}/login", params=params)
    assert start.status_code == 303
    async with httpx.AsyncClient() as browser:  # the user's browser visiting the provider
        approved = await browser.get(start.headers["location"])
    assert approved.status_code == 302, approved.text
    callback = httpx.URL(approved.headers["location"])
    assert callback.host == "testserver"
    return await client.get(callback.path, params=dict(callback.params))  # type: ignore[no-any-return]


async def _count(app: Any, model: type[Any]) -> int:
    async with get_database(app).session() as db:
        return int((await db.execute(select(func.count()).select_from(model))).scalar_one())


async def test_first_login_creates_and_links_a_user(
    make_app: AppFactory, provider: LocalProvider
) -> None:
    app = make_app(providers=[_local(provider)])
    async with app.async_test_client() as client:
        page = await client.get("/auth/login")
        assert "/auth/oauth/local/login" in page.text
        done = await _social_login(client, next_url="/me")
        assert done.status_code == 303, done.text
        assert done.headers["location"] == "/me"
        me = (await client.get("/me")).json()
        assert me["username"] == "dana"
        await client.post(
            "/auth/logout", headers={"x-csrf-token": (await client.get("/csrf")).json()["token"]}
        )
        again = await _social_login(client)
        assert again.status_code == 303
        assert (await client.get("/me")).json()["id"] == me["id"]
        assert await _count(app, User) == 1
        assert await _count(app, SocialAccount) == 1
        async with get_database(app).session() as db:
            user = await db.get(User, me["id"])
            assert user is not None
            assert user.email_verified
            assert not user.check_password("")  # no usable password


async def test_links_to_the_logged_in_user(make_app: AppFactory, provider: LocalProvider) -> None:
    app = make_app(providers=[_local(provider)])
    async with app.async_test_client() as client:
        await add_user(app, "erin", email="erin@example.com")
        await log_in(client, "erin")
        assert (await _social_login(client)).status_code == 303
        assert (await client.get("/me")).json()["username"] == "erin"
        assert await _count(app, User) == 1


async def test_links_by_verified_email_only(make_app: AppFactory, provider: LocalProvider) -> None:
    app = make_app(providers=[_local(provider)])
    async with app.async_test_client() as client:
        await add_user(app, "dana-local", email="dana@example.com", email_verified=True)
        await _social_login(client)
        assert (await client.get("/me")).json()["username"] == "dana-local"
    provider.next_identity = {
        "sub": "user-77",
        "email": "frank@example.com",
        "email_verified": True,
    }
    async with app.async_test_client() as client:
        # Pre-registered but never verified: not linked (account pre-hijacking).
        await add_user(app, "frank-squatter", email="frank@example.com", email_verified=False)
        await _social_login(client)
        assert (await client.get("/me")).json()["username"] == "frank"


@pytest.mark.parametrize("misbehave", ["nonce", "audience", "key", "none"])
async def test_untrustworthy_id_tokens_are_refused(
    make_app: AppFactory, provider: LocalProvider, misbehave: str
) -> None:
    app = make_app(providers=[_local(provider)])
    provider.misbehave = misbehave
    async with app.async_test_client() as client:
        response = await _social_login(client)
        assert response.status_code == 400
        assert (await client.get("/maybe")).json() == {"username": None}


async def test_forged_or_replayed_callbacks(make_app: AppFactory, provider: LocalProvider) -> None:
    app = make_app(providers=[_local(provider)])
    async with app.async_test_client() as client:
        # No login started in this browser: a callback planted by someone else.
        planted = await client.get("/auth/oauth/local/callback", params={"code": "x", "state": "y"})
        assert planted.status_code == 400
        start = await client.get("/auth/oauth/local/login")
        async with httpx.AsyncClient() as browser:
            approved = await browser.get(start.headers["location"])
        callback = httpx.URL(approved.headers["location"])
        params = dict(callback.params)
        wrong = await client.get(callback.path, params={**params, "state": "forged"})
        assert wrong.status_code == 400
        # The pending login was consumed by the failed attempt: the real callback fails too.
        assert (await client.get(callback.path, params=params)).status_code == 400
        assert (await client.get("/auth/oauth/nope/login")).status_code == 404


def test_presets() -> None:
    gh = github("id", "secret")
    assert gh.kind == "github"
    assert gh.authorize_url == "https://github.com/login/oauth/authorize"
    assert google("id", "secret").issuer == "https://accounts.google.com"
    with pytest.raises(ValueError, match="issuer"):
        OAuthProvider(name="x", client_id="a", client_secret="b")
    with pytest.raises(ValueError, match="lowercase"):
        oidc("Bad Name", "https://x", "a", "b")


async def test_github_style_provider(make_app: AppFactory, provider: LocalProvider) -> None:
    hub = github(CLIENT_ID, CLIENT_SECRET, name="hub")
    hub.authorize_url = f"{provider.issuer}/authorize"
    hub.token_url = f"{provider.issuer}/token"
    hub.userinfo_url = f"{provider.issuer}/user"
    app = make_app(providers=[hub])
    async with app.async_test_client() as client:
        done = await _social_login(client, name="hub")
        assert done.status_code == 303, done.text
        assert (await client.get("/me")).json()["username"] == "octocat"
        async with get_database(app).session() as db:
            account = (await db.execute(select(SocialAccount))).scalar_one()
            assert (account.provider, account.subject, account.email) == (
                "hub",
                "583231",
                "octo@example.com",
            )
