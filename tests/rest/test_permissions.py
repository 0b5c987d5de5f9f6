"""Permissions: anonymous read-only, owners, the auth battery's model permissions and rules."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from transom.auth import Permission, User, object_rule, sync_permissions
from transom.auth.permissions import clear_object_rules
from transom.db import get_database
from transom.rest import AllowAny, IsAuthenticated, ModelPermissions, ModelResource

from .conftest import AppFactory, add_user
from .models import Label
from .resources import Labels, Stories

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _rules() -> Iterator[None]:
    yield
    clear_object_rules()


async def grant(app: Any, username: str, *codenames: str) -> None:
    async with get_database(app).session() as db:
        await sync_permissions(db, [Label])
        perms = list(
            (
                await db.execute(select(Permission).where(Permission.codename.in_(codenames)))
            ).scalars()
        )
        user = (await db.execute(select(User).where(User.username == username))).scalar_one()
        user.user_permissions.extend(perms)
        await db.commit()


async def test_anonymous_clients_only_read(make_app: AppFactory) -> None:
    app = make_app(Stories)
    async with app.async_test_client() as client:
        _, auth = await add_user(app)
        await client.post("/api/stories", json={"slug": "a", "title": "A"}, headers=auth)
        assert (await client.get("/api/stories")).status_code == 200
        assert (await client.get("/api/stories/a")).status_code == 200
        for method, url in (
            ("POST", "/api/stories"),
            ("PATCH", "/api/stories/a"),
            ("PUT", "/api/stories/a"),
            ("DELETE", "/api/stories/a"),
            ("POST", "/api/stories/a/publish"),
        ):
            response = await client.request(method, url, json={"slug": "b", "title": "B"})
            assert response.status_code == 401, (method, url)
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.json()["detail"] == "Authentication required"
        forged = await client.post(
            "/api/stories", json={}, headers={"authorization": "Bearer not-a-token"}
        )
        assert forged.status_code == 401
        assert forged.headers["content-type"] == "application/problem+json"


async def test_only_owners_change_their_objects(make_app: AppFactory) -> None:
    app = make_app(Stories)
    async with app.async_test_client() as client:
        _, alice = await add_user(app, "alice")
        _, bob = await add_user(app, "bob")
        await client.post("/api/stories", json={"slug": "a", "title": "A"}, headers=alice)
        assert (await client.get("/api/stories/a", headers=bob)).status_code == 200
        patch = await client.patch("/api/stories/a", json={"title": "mine"}, headers=bob)
        assert patch.status_code == 403
        assert patch.json()["detail"] == "Permission denied"
        assert (await client.delete("/api/stories/a", headers=bob)).status_code == 403
        assert (await client.get("/api/stories/a")).json()["title"] == "A"
        assert (await client.delete("/api/stories/a", headers=alice)).status_code == 204


async def test_model_permissions_and_object_rules(make_app: AppFactory) -> None:
    @object_rule("news.delete_label")
    def keep_is_kept(user: Any, label: Label) -> bool | None:
        return False if label.name == "keep" else None

    app = make_app(Labels)
    async with app.async_test_client() as client:
        await add_user(app, "ed")
        _, ed = await add_user(app, "editor")
        await add_user(app, "root", is_superuser=True)
        _, root = await add_user(app, "root2", is_superuser=True)
        refused = await client.post("/api/labels", json={"name": "x"}, headers=ed)
        assert refused.status_code == 403
        await grant(app, "editor", "news.add_label", "news.delete_label")
        for name in ("x", "keep"):
            created = await client.post("/api/labels", json={"name": name}, headers=ed)
            assert created.status_code == 201, created.text
        ids = {
            item["name"]: item["id"] for item in (await client.get("/api/labels")).json()["items"]
        }
        no_change = await client.patch(f"/api/labels/{ids['x']}", json={"name": "y"}, headers=ed)
        assert no_change.status_code == 403  # no news.change_label
        assert (await client.delete(f"/api/labels/{ids['keep']}", headers=ed)).status_code == 403
        assert (await client.delete(f"/api/labels/{ids['x']}", headers=ed)).status_code == 204
        # Superusers hold every permission: the deny rule is for everyone else.
        assert (await client.delete(f"/api/labels/{ids['keep']}", headers=root)).status_code == 204


class PrivateLabels(ModelResource, model=Label, prefix="/api/private"):
    permissions = [ModelPermissions(read=True)]


class OpenLabels(ModelResource, model=Label, prefix="/api/open"):
    permissions = [AllowAny]


class MemberLabels(ModelResource, model=Label, prefix="/api/members"):
    permissions = [IsAuthenticated]


async def test_read_permissions(make_app: AppFactory) -> None:
    app = make_app(PrivateLabels, OpenLabels, MemberLabels)
    async with app.async_test_client() as client:
        _, viewer = await add_user(app, "viewer")
        _, other = await add_user(app, "other")
        await grant(app, "viewer", "news.view_label")
        assert (await client.get("/api/private")).status_code == 401
        assert (await client.get("/api/private", headers=other)).status_code == 403
        assert (await client.get("/api/private", headers=viewer)).status_code == 200
        assert (await client.get("/api/members")).status_code == 401
        assert (await client.get("/api/members", headers=other)).status_code == 200
        created = await client.post("/api/open", json={"name": "anyone"})
        assert created.status_code == 201
