"""Registration, configuration checks and helpers (no database needed)."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any

import pytest

from transom import App, ImproperlyConfigured, Settings
from transom.admin import (
    Admin,
    AdminConfig,
    AlreadyRegistered,
    ModelAdmin,
    SessionAuth,
    object_label,
)
from transom.admin.forms import AdminField, label_for
from transom.admin.listing import Count, ListPage
from transom.security import Security, SecurityConfig

from .models import Article, Author, Comment, Tag, User


def make_admin(**kwargs: Any) -> Admin:
    app = App(Settings(debug=True))
    app.install(Security())
    return app.install(Admin(AdminConfig(auth=SessionAuth(User), **kwargs)))


def test_register_plain_inline_class_and_decorator() -> None:
    admin = make_admin()
    admin.register(Tag)
    assert type(admin.registry[Tag]) is ModelAdmin
    inline = admin.register(Comment, list_display=["text"])
    assert isinstance(inline, ModelAdmin)
    assert inline.list_display == ["text"]

    @admin.register(Author)
    class AuthorAdmin(ModelAdmin):
        search_fields = ["name"]

    assert isinstance(admin.registry[Author], AuthorAdmin)
    assert admin.lookup("admin", "author") is admin.registry[Author]
    with pytest.raises(AlreadyRegistered):
        admin.register(Author)
    with pytest.raises(TypeError, match="unknown ModelAdmin options"):
        admin.register(Article, list_displayy=["x"])
    admin.unregister(Tag)
    assert admin.lookup("admin", "tag") is None
    with pytest.raises(KeyError):
        admin.unregister(Tag)
    # The auth backend's user model is registered with the password form.
    assert admin.registry[User].password_field == "password"


def test_decorator_must_wrap_a_model_admin() -> None:
    admin = make_admin()
    decorate = admin.register(Tag)
    with pytest.raises(TypeError):
        decorate(object)  # type: ignore[type-var]


def test_names_and_urls() -> None:
    admin = make_admin(prefix="/backoffice", title="Back office")
    article = admin.register(Article, ModelAdmin)
    assert (article.name, article.name_plural, article.key) == (
        "Article",
        "Articles",
        "admin.article",
    )
    assert article.url() == "/backoffice/admin/article"
    assert article.url("change", 3) == "/backoffice/admin/article/3/change"
    assert article.url("list", q="a b", p=None) == "/backoffice/admin/article?q=a+b"
    assert admin.url("login", next="/x") == "/backoffice/login?next=%2Fx"
    assert admin.static("admin/admin.css").startswith("/backoffice/static/admin/admin.css?v=")
    assert article.parse_pk("12") == 12
    with pytest.raises(ValueError, match="invalid literal"):
        article.parse_pk("x")
    assert label_for("author_id") == "Author"
    assert label_for("created_at") == "Created at"
    assert object_label(Comment(id=4, text="x")) == "Comment 4"
    assert object_label(Tag(name="py")) == "py"


@pytest.mark.anyio
async def test_start_needs_users(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("transom.admin.site.default_backend", lambda: None)
    app = App(Settings(debug=True))
    app.install(Admin(AdminConfig(auth=SessionAuth(User))))
    await app.startup()  # Security and Templates came with their defaults
    assert Security.of(app).sessions is not None
    bare = App(Settings(debug=True))
    bare.install(Admin())  # no backend given, and (patched) no transom.auth
    with pytest.raises(ImproperlyConfigured, match="needs users"):
        await bare.startup()
    with pytest.raises(ImproperlyConfigured, match="Admin is already installed"):
        bare.install(Admin())


@pytest.mark.parametrize(
    ("widget", "text", "value"),
    [
        ("number", " 42 ", 42),
        ("decimal", "1.50", decimal.Decimal("1.50")),
        ("date", "2026-01-02", dt.date(2026, 1, 2)),
        ("datetime", "2026-01-02T03:04", dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC)),
        ("time", "03:04", dt.time(3, 4)),
        ("json", '{"a": [1]}', {"a": [1]}),
        ("checkbox", "on", True),
        ("checkbox", None, False),
        ("text", "", None),
    ],
)
def test_field_conversion(widget: str, text: Any, value: Any) -> None:
    field = AdminField("x", "X", widget, python_type=decimal.Decimal)
    assert field.to_python(text) == value


def test_field_errors() -> None:
    with pytest.raises(ValueError, match="required"):
        AdminField("x", "X", "text", required=True).to_python("  ")
    with pytest.raises(ValueError, match="At most 3"):
        AdminField("x", "X", "text", max_length=3).to_python("abcd")
    with pytest.raises(ValueError, match="UUID"):
        AdminField("x", "X", "text", python_type=uuid.UUID).to_python("nope")
    with pytest.raises(ValueError, match="valid choice"):
        AdminField("x", "X", "select", choices=[("a", "A")]).to_python("b")
    assert AdminField("x", "X", "text", nullable=False).to_python("") == ""


def test_page_numbers() -> None:
    page = ListPage([], 50, 10, Count(1000), True)
    assert page.page_numbers() == [1, 2, None, 48, 49, 50, 51, 52, None, 99, 100]
    assert str(Count(1_000_000, exact=False)) == "about 1,000,000"
    assert str(Count(50_001, exact=False, at_least=True)) == "more than 50,000"


def test_admin_alone_brings_what_it_needs_and_serves_its_login_page(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transom.auth import Auth
    from transom.templating import Templates

    # The database battery attaches itself (from DATABASE_URL) until it is converted too.
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'alone.db'}")
    app = App(Settings(debug=True))
    app.install(Admin())  # no Security, no Auth, no Templates: they come with their defaults
    with app.test_client() as client:
        page = client.get("/admin/login")
    assert page.status_code == 200
    assert 'name="csrf_token"' in page.text
    assert 'name="password"' in page.text
    for needed in (Security, Auth, Templates):
        assert app.batteries.was_required(needed.of(app))


def test_explicit_batteries_after_admin_configure_it() -> None:
    app = App(Settings(debug=True))
    app.install(Admin(AdminConfig(prefix="/staff", auth=SessionAuth(User))))
    security = app.install(Security(SecurityConfig(old_secret_keys=["previous"])))
    app.build()
    assert Security.of(app) is security
    assert app.url_path_for("admin.login") == "/staff/login"
    from transom.auth import Auth

    assert app.batteries.find(Auth) is None  # another backend: transom.auth is not needed


def test_old_keyword_spelling_warns_and_works() -> None:
    app = App(Settings(debug=True))
    with pytest.warns(DeprecationWarning, match=r"Admin\(AdminConfig\(auth=\.\.\., title=\.\.\.\)"):
        admin = Admin(app, auth=SessionAuth(User), title="Back office")
    assert Admin.of(app) is admin
    assert admin.title == "Back office"
