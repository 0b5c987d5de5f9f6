"""Templates: render(), inheritance, globals, autoescaping (XSS vectors), debug errors."""

from __future__ import annotations

from pathlib import Path

import markupsafe
import pytest

from transom import App, Request, render
from transom.settings import Settings
from transom.templating import TemplateResponse, Templates

XSS_VECTORS = [
    "<script>alert(1)</script>",
    '"><script>alert(1)</script>',
    "' onmouseover='alert(1)",
    '" onfocus="alert(1)" autofocus="',
    "<img src=x onerror=alert(1)>",
    "<svg/onload=alert(1)>",
    "</title><script>alert(1)</script>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
]


def write(folder: Path, name: str, text: str) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def app(tmp_path: Path) -> App:
    templates = tmp_path / "templates"
    write(
        templates,
        "base.html",
        "<title>{% block title %}{% endblock %}</title><main>{% block body %}{% endblock %}</main>",
    )
    write(
        templates,
        "page.html",
        "{% extends 'base.html' %}{% block title %}{{ title }}"
        "{% endblock %}{% block body %}{% include 'part.html' %}{% endblock %}",
    )
    write(templates, "part.html", "<p>{{ message }}</p>")
    write(templates, "attr.html", "<a title='{{ value }}' href=\"{{ value }}\">x</a>")
    write(
        templates,
        "links.html",
        "{{ url_for('show', slug=slug) }}|{{ static('site.css') }}|{{ request.path }}",
    )
    write(templates, "mail.txt", "Hello {{ name }}")
    write(templates, "undefined.html", "<p>{{ nothing_here }}</p>")
    app = App(Settings())
    app.root_path = tmp_path
    app.install(Templates())

    @app.get("/page")
    def page(title: str = "Home", message: str = "hi") -> TemplateResponse:
        return render("page.html", title=title, message=message)

    @app.get("/attr")
    def attr(value: str) -> TemplateResponse:
        return render("attr.html", value=value)

    @app.get("/show/{slug}", name="show")
    def show(slug: str) -> TemplateResponse:
        return render("links.html", slug=slug)

    @app.get("/mail")
    async def mail(request: Request) -> str:
        templates = Templates.for_app(app)
        return await templates.render_string("mail.txt", {"name": "<b>Ann</b>"}, request)

    @app.get("/missing")
    def missing() -> TemplateResponse:
        return render("nope.html")

    @app.get("/undefined")
    def undefined() -> TemplateResponse:
        return render("undefined.html", status_code=201)

    return app


def test_render_with_inheritance_and_includes(app: App) -> None:
    with app.test_client() as client:
        response = client.get("/page?title=Welcome&message=Hello")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.text == "<title>Welcome</title><main><p>Hello</p></main>"


def test_globals_url_for_static_and_request(app: App) -> None:
    with app.test_client() as client:
        assert client.get("/show/a-b").text == "/show/a-b|/static/site.css|/show/a-b"


@pytest.mark.parametrize("vector", XSS_VECTORS)
def test_xss_vectors_come_out_inert_in_text_and_attributes(app: App, vector: str) -> None:
    with app.test_client() as client:
        text = client.get("/page", params={"message": vector, "title": vector}).text
        attr = client.get("/attr", params={"value": vector}).text
    escaped = str(markupsafe.escape(vector))
    for body in (text, attr):
        assert vector not in body
        assert escaped in body
        assert "<script>" not in body
        assert "<img" not in body
        assert "<svg" not in body
    # In attributes, both quote styles are escaped, so the value cannot break out.
    assert "'" not in attr.split("title='", 1)[1].split("'", 1)[0]
    assert '"' not in attr.split('href="', 1)[1].split('"', 1)[0]


def test_javascript_urls_are_the_template_authors_choice_but_escaped(app: App) -> None:
    with app.test_client() as client:
        body = client.get("/attr", params={"value": "javascript:alert('x')"}).text
    # Escaping cannot make a javascript: URL safe in href; it does stop quote breaking.
    assert "&#39;" in body


def test_text_templates_are_not_escaped(app: App) -> None:
    with app.test_client() as client:
        assert client.get("/mail").text == "Hello <b>Ann</b>"


def test_missing_template_is_a_500_without_details_in_production(app: App) -> None:
    with app.test_client() as client:
        response = client.get("/missing")
    assert response.status_code == 500
    assert "nope.html" not in response.text


def test_undefined_variable_renders_empty_in_production(app: App) -> None:
    with app.test_client() as client:
        response = client.get("/undefined")
    assert (response.status_code, response.text) == (201, "<p></p>")


def test_debug_mode_names_the_missing_template_and_the_undefined_variable(app: App) -> None:
    app.settings.debug = True
    app.extensions.pop("transom.templating", None)
    with app.test_client() as client:
        missing = client.get("/missing", headers={"Accept": "text/html"})
        undefined = client.get("/undefined", headers={"Accept": "text/html"})
    assert missing.status_code == 500
    assert "TemplateNotFound" in missing.text
    assert "nope.html" in missing.text
    assert "searched:" in missing.text
    assert undefined.status_code == 500
    assert "UndefinedError" in undefined.text
    assert "nothing_here" in undefined.text
    assert "undefined.html" in undefined.text  # the template file appears in the traceback


def test_router_and_package_folders_are_searched_after_the_project(
    app: App, tmp_path: Path
) -> None:
    extra = tmp_path / "blog_templates"
    write(extra, "blog.html", "from router folder")
    write(extra, "part.html", "router version")
    templates = Templates.for_app(app)
    templates.add_folder(extra)

    @app.get("/blog")
    def blog() -> TemplateResponse:
        return render("blog.html")

    with app.test_client() as client:
        assert client.get("/blog").text == "from router folder"
        # The project's part.html wins over the router's.
        assert "<p>" in client.get("/page").text


def test_context_processors_add_variables(app: App, tmp_path: Path) -> None:
    write(tmp_path / "templates", "who.html", "{{ user }}")
    templates = Templates.for_app(app)
    templates.context_processor(lambda request: {"user": request.headers.get("x-user", "anon")})

    @app.get("/who")
    def who() -> TemplateResponse:
        return render("who.html")

    with app.test_client() as client:
        assert client.get("/who", headers={"X-User": "ada"}).text == "ada"


def test_error_handlers_may_render_templates(app: App, tmp_path: Path) -> None:
    write(tmp_path / "templates", "404.html", "<h1>Not here: {{ request.path }}</h1>")

    @app.exception_handler(404)
    def not_found(request: Request, exc: Exception) -> TemplateResponse:
        return render("404.html", status_code=404)

    with app.test_client() as client:
        response = client.get("/nowhere")
    assert (response.status_code, response.text) == (404, "<h1>Not here: /nowhere</h1>")


def test_templates_is_a_battery_with_a_config(tmp_path: Path) -> None:
    from transom.templating import TemplatesConfig

    write(tmp_path / "mine", "hello.html", "{{ greeting }} {{ who }}")
    app = App(Settings())
    templates = app.install(
        Templates(
            TemplatesConfig(
                folders=[tmp_path / "mine"], context_processors=[lambda request: {"who": "Ann"}]
            )
        )
    )
    assert Templates.of(app) is templates
    assert Templates.for_app(app) is templates
    assert app.extensions["transom.templating"] is templates

    @app.get("/")
    def index() -> TemplateResponse:
        return render("hello.html", greeting="Hi")

    with app.test_client() as client:
        assert client.get("/").text == "Hi Ann"


def test_rendering_without_templates_installed_still_works_but_warns(tmp_path: Path) -> None:
    write(tmp_path / "templates", "hi.html", "hi {{ name }}")
    app = App(Settings())
    app.root_path = tmp_path

    @app.get("/")
    def index() -> TemplateResponse:
        return render("hi.html", name="Bo")

    with app.test_client() as client, pytest.warns(DeprecationWarning, match="Templates"):
        assert client.get("/").text == "hi Bo"
    assert isinstance(Templates.of(app), Templates)  # installed now, with its defaults


def test_the_old_folders_argument_warns(tmp_path: Path) -> None:
    write(tmp_path / "old", "x.html", "old")
    app = App(Settings())
    with pytest.warns(DeprecationWarning, match=r"TemplatesConfig\(folders=\.\.\.\)"):
        templates = Templates(app, [tmp_path / "old"])
    assert Templates.of(app) is templates
    assert templates.get_template("x.html").filename == str(tmp_path / "old" / "x.html")


def test_bytecode_cache_is_private_to_the_user_and_never_in_tmp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import os
    import stat
    import tempfile

    import jinja2

    from transom.templating.engine import _bytecode_cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cache = _bytecode_cache()
    assert isinstance(cache, jinja2.FileSystemBytecodeCache)
    folder = tmp_path / "cache" / "transom" / "jinja"
    assert cache.directory == str(folder)
    assert not cache.directory.startswith(tempfile.gettempdir() + os.sep + "transom-jinja")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    # A folder others can write to (planted, or loosened by hand) is not used.
    folder.chmod(0o777)
    with caplog.at_level("WARNING", logger="transom.templating"):
        assert _bytecode_cache() is None
    assert "not private to this user" in caplog.text
    # Nowhere to write: compiled in memory only, no error.
    blocked = tmp_path / "file"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    assert _bytecode_cache() is None
