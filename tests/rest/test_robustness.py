"""No client input gives a 500, outages give 503, and what else a resource promises."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, computed_field
from sqlalchemy.engine import make_url

from _services import TcpProxy
from transom.auth import login
from transom.db import DbSessionDep
from transom.requests import Request
from transom.rest import ModelResource
from transom.security import CSRFToken

from .conftest import AppFactory, add_user, build_app
from .models import Label, Story
from .resources import Labels, Stories

pytestmark = pytest.mark.anyio


async def test_out_of_range_values_never_give_500(make_app: AppFactory) -> None:
    app = make_app(Stories, Labels)
    huge = "9" * 30
    async with app.async_test_client() as client:
        _, auth = await add_user(app)
        assert (await client.get(f"/api/labels/{huge}")).status_code == 404
        assert (await client.get("/api/labels/abc")).status_code == 404
        for params in ({"score__gte": huge}, {"author": huge}, {"labels__in": f"1,{huge}"}):
            response = await client.get("/api/stories", params=params)
            assert response.status_code in (200, 422), (params, response.text)
        response = await client.post(
            "/api/stories", json={"slug": "a", "title": "A", "score": int(huge)}, headers=auth
        )
        assert response.status_code == 422, response.text
        assert response.json()["status"] == 422
        nul = await client.post("/api/stories", json={"slug": "a\x00b", "title": "A"}, headers=auth)
        assert nul.status_code in (201, 422), nul.text


async def test_database_outage_answers_503(
    rest_databases: Any, backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    if backend == "sqlite":
        pytest.skip("an embedded database has no server to lose")
    real = make_url(rest_databases.url(backend))
    proxy = TcpProxy(real.host or "127.0.0.1", real.port or 0)
    await proxy.start()
    url = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    app = build_app(url, Stories, connect_timeout=2, retry_after=9)
    try:
        async with app.async_test_client() as client:
            assert (await client.get("/api/stories")).status_code == 200
            await proxy.cut()
            with caplog.at_level(logging.WARNING, logger="transom.db"):
                down = await client.get("/api/stories")
            assert down.status_code == 503, down.text
            assert down.headers["retry-after"] == "9"
            assert down.json()["status"] == 503
            assert "Database unavailable" in caplog.text
            await proxy.restore()
            assert (await client.get("/api/stories")).status_code == 200
    finally:
        await proxy.cut()


class Limited(ModelResource, model=Label, prefix="/api/limited"):
    throttle = "2/minute"


async def test_throttle_limits_every_route(make_app: AppFactory) -> None:
    app = make_app(Limited)
    async with app.async_test_client() as client:
        assert (await client.get("/api/limited")).status_code == 200
        assert (await client.get("/api/limited/1")).status_code == 404
        limited = await client.get("/api/limited")
        assert limited.status_code == 429
        assert "retry-after" in limited.headers


class StoryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    slug: str
    title: str
    score: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def headline(self) -> str:
        return self.title.upper()


class StoryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: str
    title: str
    secret_note: str = ""


class Custom(ModelResource, model=Story, prefix="/api/custom"):
    lookup = "slug"
    read_schema = StoryOut
    create_schema = StoryIn
    read_only = ["author"]
    write_only = ["body"]


class Secrets(ModelResource, model=Story, prefix="/api/secrets"):
    lookup = "slug"
    write_only = ["body"]
    read_only = ["author", "created_at"]


async def test_pydantic_overrides_and_write_only_fields(make_app: AppFactory) -> None:
    from transom.rest import Context

    class Owned(Custom, prefix="/api/owned"):
        async def before_create(self, ctx: Context, obj: Any) -> None:
            obj.author_id = (await ctx.get_user()).id

    class OwnedSecrets(Secrets, prefix="/api/owned-secrets"):
        async def before_create(self, ctx: Context, obj: Any) -> None:
            obj.author_id = (await ctx.get_user()).id

    app = make_app(Owned, OwnedSecrets)
    async with app.async_test_client() as client:
        _, auth = await add_user(app)
        created = await client.post(
            "/api/owned", json={"slug": "a", "title": "hi", "secret_note": "x"}, headers=auth
        )
        assert created.status_code == 201, created.text
        assert created.json() == {"slug": "a", "title": "hi", "score": 0, "headline": "HI"}
        refused = await client.post(
            "/api/owned", json={"slug": "b", "title": "B", "score": 3}, headers=auth
        )
        assert refused.status_code == 422
        hidden = await client.post(
            "/api/owned-secrets", json={"slug": "c", "title": "C", "body": "psst"}, headers=auth
        )
        assert hidden.status_code == 201
        assert "body" not in hidden.json()
        document = (await client.get("/openapi.json")).json()
        schemas = document["components"]["schemas"]
        assert "headline" in schemas["StoryOut"]["properties"]
        assert "body" not in schemas["OwnedSecretsRead"]["properties"]
        assert "body" in schemas["OwnedSecretsCreate"]["properties"]


async def test_session_clients_need_the_csrf_token(make_app: AppFactory) -> None:
    app = make_app(Stories)

    @app.post("/login-as/{username}")
    async def login_as(request: Request, username: str, db: DbSessionDep) -> dict[str, bool]:
        from sqlalchemy import select

        from transom.auth import User

        user = (await db.execute(select(User).where(User.username == username))).scalar_one()
        await login(request, user)
        return {"ok": True}

    @app.get("/csrf")
    async def csrf(token: CSRFToken) -> dict[str, str]:
        return {"token": token}

    async with app.async_test_client() as client:
        await add_user(app)
        token = (await client.get("/csrf")).json()["token"]
        origin = {"origin": "http://testserver"}
        assert (
            await client.post("/login-as/alice", headers={**origin, "x-csrf-token": token})
        ).status_code == 200
        story = {"slug": "a", "title": "A"}
        forged = await client.post("/api/stories", json=story, headers=origin)
        assert forged.status_code == 403  # the session cookie alone is not enough
        token = (await client.get("/csrf")).json()["token"]  # login rotated the secret
        ok = await client.post(
            "/api/stories", json=story, headers={**origin, "x-csrf-token": token}
        )
        assert ok.status_code == 201, ok.text
