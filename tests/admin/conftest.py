"""Fixtures for the admin tests: an app with Security, the data battery and the admin, on
SQLite, PostgreSQL and MariaDB (the servers of tests/db/conftest.py, in a database of its own)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from db.conftest import BACKENDS, Servers, require_backend  # tests/db/conftest.py
from transom import App, Settings
from transom.admin import Admin, AdminConfig, ModelAdmin, SessionAuth, action
from transom.admin.history import LogEntry
from transom.db import Database, DatabaseConfig
from transom.security import Security
from transom.testing import AsyncTestClient

from .models import Article, Author, Base, Comment, Tag, User

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="session")
def admin_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """The admin tests' own database on each backend (``transom_test_<run>_admin``)."""
    registry = Servers(tmp_path_factory.mktemp("admin"))
    yield registry
    registry.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    require_backend(name)
    return name


@action(description="Deactivate")
async def deactivate(admin: Any, request: Any, db: Any, objects: list[Any]) -> str:
    for obj in objects:
        obj.active = False
    return f"{len(objects)} deactivated."


class AuthorAdmin(ModelAdmin):
    list_display = ["name", "email", "active"]
    search_fields = ["name", "email"]
    list_filter = ["active"]
    actions = [deactivate]


class ArticleAdmin(ModelAdmin):
    list_display = ["title", "author", "status", "views", "published_on"]
    search_fields = ["title", "body"]
    list_filter = ["status", "published_on", "author"]
    readonly_fields = ["views"]


def build_app(database: Database) -> tuple[App, Admin]:
    app = App(Settings(debug=True))
    app.install(Security())
    app.install(database)  # the test's own Database (tests listen to its engine)
    admin = app.install(Admin(AdminConfig(auth=SessionAuth(User))))
    admin.register(Author, AuthorAdmin)
    admin.register(Article, ArticleAdmin)
    admin.register(Tag)
    admin.register(Comment)
    return app, admin


@pytest.fixture
async def database(admin_databases: Servers, backend: str) -> AsyncIterator[Database]:
    url = admin_databases.url(backend, name="admin")
    db = Database(DatabaseConfig(url=url), metadata=Base.metadata)
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)
        await conn.run_sync(LogEntry.metadata.tables["transom_admin_log"].drop, checkfirst=True)
        await conn.run_sync(Base.metadata.create_all)
        await conn.run_sync(LogEntry.metadata.tables["transom_admin_log"].create)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
async def site(database: Database) -> tuple[App, Admin]:
    return build_app(database)


async def make_user(
    database: Database,
    username: str,
    *,
    staff: bool = True,
    superuser: bool = False,
    active: bool = True,
    perms: list[str] | None = None,
) -> User:
    async with database.session() as db:
        user = User(
            username=username,
            email=f"{username}@example.com",
            is_staff=staff,
            is_superuser=superuser,
            is_active=active,
            perms=perms or [],
        )
        user.set_password(PASSWORD)
        db.add(user)
        await db.commit()
        return user


async def seed(database: Database, authors: int = 3, articles_per_author: int = 2) -> None:
    async with database.session() as db:
        tag = Tag(name="python")
        db.add(tag)
        for i in range(authors):
            author = Author(name=f"Author {i}", email=f"a{i}@example.com", active=i % 2 == 0)
            db.add(author)
            for j in range(articles_per_author):
                db.add(Article(title=f"Post {i}-{j}", body="text", author=author, tags=[tag]))
        await db.commit()


def token(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


class Browser:
    """An AsyncTestClient that logs in and posts forms with their CSRF token."""

    def __init__(self, client: AsyncTestClient) -> None:
        self.client = client

    async def login(self, username: str, password: str = PASSWORD) -> Any:
        page = await self.client.get("/admin/login")
        return await self.client.post(
            "/admin/login",
            data={"username": username, "password": password, "csrf_token": token(page.text)},
        )

    async def get(self, url: str, **kw: Any) -> Any:
        return await self.client.get(url, **kw)

    async def post(self, url: str, data: dict[str, Any], *, token_from: str | None = None) -> Any:
        page = await self.client.get(token_from or "/admin")
        return await self.client.post(url, data={**data, "csrf_token": token(page.text)})


@pytest.fixture
async def browser(site: tuple[App, Admin]) -> AsyncIterator[Browser]:
    app, _ = site
    async with AsyncTestClient(app) as client:
        yield Browser(client)
