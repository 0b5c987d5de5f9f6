"""Model permissions, groups, ``@requires``, object rules and checks in templates."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from transom import App, Request, Router
from transom.auth import (
    Group,
    Permission,
    User,
    model_permissions,
    object_rule,
    require_perm,
    requires,
    sync_permissions,
)
from transom.auth.permissions import app_label, clear_object_rules
from transom.db import DbSessionDep, get_database
from transom.templating import Templates, render

from .conftest import AppFactory, add_user, log_in
from .models import AuthTestArticle

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _rules() -> Iterator[None]:
    yield
    clear_object_rules()


def test_codenames() -> None:
    assert app_label(AuthTestArticle) == "blog"
    assert app_label(User) == "auth"
    assert model_permissions(AuthTestArticle) == [
        ("blog.view_authtestarticle", "Can view authtestarticle"),
        ("blog.add_authtestarticle", "Can add authtestarticle"),
        ("blog.change_authtestarticle", "Can change authtestarticle"),
        ("blog.delete_authtestarticle", "Can delete authtestarticle"),
        ("blog.publish_authtestarticle", "Can publish articles"),
    ]


async def _grant(app: App, username: str, *codenames: str, via_group: bool = False) -> None:
    async with get_database(app).session() as db:
        await sync_permissions(db, [AuthTestArticle, User])
        perms = list(
            (
                await db.execute(select(Permission).where(Permission.codename.in_(codenames)))
            ).scalars()
        )
        user = (await db.execute(select(User).where(User.username == username))).scalar_one()
        if via_group:
            group = Group(name=f"editors-{username}", permissions=perms)
            db.add(group)
            user.groups.append(group)
        else:
            user.user_permissions.extend(perms)
        await db.commit()


def _routes(app: App) -> None:
    @app.post("/articles/{article_id}/edit")
    @requires("blog.change_authtestarticle")
    async def edit(article_id: int) -> dict[str, bool]:
        return {"edited": True}

    editors = requires("blog.publish_authtestarticle")(Router("/publish"))

    @editors.post("/{article_id}")
    async def publish(article_id: int) -> dict[str, bool]:
        return {"published": True}

    app.include_router(editors)

    @app.post("/articles/{article_id}/delete")
    async def delete(request: Request, db: DbSessionDep, article_id: int) -> dict[str, bool]:
        article = await db.get_or_404(AuthTestArticle, article_id)
        await require_perm(request, db, "blog.delete_authtestarticle", article)
        return {"deleted": True}


async def test_sync_permissions_is_idempotent(make_app: AppFactory) -> None:
    app = make_app()
    async with app.async_test_client(), get_database(app).session() as db:
        created = await sync_permissions(db, [AuthTestArticle])
        assert len(created) == 5
        assert await sync_permissions(db, [AuthTestArticle]) == []
        await db.commit()


async def test_requires_on_routes_and_routers(make_app: AppFactory) -> None:
    app = make_app()
    _routes(app)
    async with app.async_test_client() as client:
        await add_user(app)
        await add_user(app, "bob")
        assert (
            await client.post("/articles/1/edit", headers={"x-csrf-token": "x"})
        ).status_code in (401, 403)
        await log_in(client)
        token = (await client.get("/csrf")).json()["token"]
        headers = {"x-csrf-token": token}
        assert (await client.post("/articles/1/edit", headers=headers)).status_code == 403
        assert (await client.post("/publish/1", headers=headers)).status_code == 403
        await _grant(app, "alice", "blog.change_authtestarticle")
        await _grant(app, "alice", "blog.publish_authtestarticle", via_group=True)
        assert (await client.post("/articles/1/edit", headers=headers)).json() == {"edited": True}
        assert (await client.post("/publish/1", headers=headers)).json() == {"published": True}


async def test_anonymous_gets_401_or_login_redirect(make_app: AppFactory) -> None:
    app = make_app(security={"csrf": None})
    _routes(app)
    async with app.async_test_client() as client:
        assert (await client.post("/articles/1/edit")).status_code == 401
        html = await client.post("/articles/1/edit", headers={"accept": "text/html"})
        assert html.status_code == 303


async def test_superuser_and_inactive(make_app: AppFactory) -> None:
    app = make_app()
    async with app.async_test_client():
        root = await add_user(app, "root", is_superuser=True)
        ghost = await add_user(app, "ghost", is_superuser=True, is_active=False)
        async with get_database(app).session() as db:
            assert await root.has_perm("anything.at_all", db)
            assert not await ghost.has_perm("anything.at_all", db)


async def test_object_rules(make_app: AppFactory) -> None:
    @object_rule("blog.delete_authtestarticle")
    def owner_may_delete(user: Any, article: Any) -> bool | None:
        return True if article.author_id == user.id else None

    @object_rule("blog.delete_authtestarticle")
    async def locked(user: Any, article: Any) -> bool | None:
        return False if article.title == "locked" else None

    app = make_app()
    _routes(app)
    async with app.async_test_client() as client:
        alice = await add_user(app)
        bob = await add_user(app, "bob")
        async with get_database(app).session() as db:
            mine = AuthTestArticle(title="mine", author_id=alice.id)
            theirs = AuthTestArticle(title="theirs", author_id=bob.id)
            frozen = AuthTestArticle(title="locked", author_id=alice.id)
            db.add_all([mine, theirs, frozen])
            await db.commit()
        await log_in(client)
        headers = {"x-csrf-token": (await client.get("/csrf")).json()["token"]}
        assert (
            await client.post(f"/articles/{mine.id}/delete", headers=headers)
        ).status_code == 200
        assert (
            await client.post(f"/articles/{theirs.id}/delete", headers=headers)
        ).status_code == 403
        assert (
            await client.post(f"/articles/{frozen.id}/delete", headers=headers)
        ).status_code == 403
        # The model permission allows the others' articles, but the deny rule still wins.
        await _grant(app, "alice", "blog.delete_authtestarticle")
        assert (
            await client.post(f"/articles/{theirs.id}/delete", headers=headers)
        ).status_code == 200
        assert (
            await client.post(f"/articles/{frozen.id}/delete", headers=headers)
        ).status_code == 403


async def test_checks_in_templates(make_app: AppFactory, tmp_path: Path) -> None:
    app = make_app()
    (tmp_path / "page.html").write_text(
        "{% set user = current_user() %}"
        "{% if user %}hi {{ user.username }}{% else %}anonymous{% endif %}|"
        "{% if has_perm('blog.change_authtestarticle') %}can edit{% else %}read only{% endif %}"
    )
    Templates.for_app(app).add_folder(tmp_path)

    @app.get("/page")
    async def page() -> Any:
        return render("page.html")

    async with app.async_test_client() as client:
        await add_user(app)
        assert (await client.get("/page")).text == "anonymous|read only"
        await log_in(client)
        assert (await client.get("/page")).text == "hi alice|read only"
        await _grant(app, "alice", "blog.change_authtestarticle")
        assert (await client.get("/page")).text == "hi alice|can edit"
