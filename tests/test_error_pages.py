"""The site's error pages: styled with a way home, overridable by the app's templates, and a
debug 404 that lists the routes that nearly matched (the debug 500 at phone width is in
tests/admin/test_browser_pages.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from transom import App, Settings
from transom.templating import Templates, TemplatesConfig

HTML = {"Accept": "text/html"}


def make_app(
    tmp_path: Path, *, debug: bool = False, templates: dict[str, str] | None = None
) -> App:
    app = App(Settings(debug=debug))
    folder = tmp_path / "templates"
    folder.mkdir(exist_ok=True)
    for name, text in (templates or {}).items():
        (folder / name).write_text(text)
    app.install(Templates(TemplatesConfig(folders=[folder])))

    @app.get("/posts/{slug}")
    async def post(slug: str) -> dict[str, str]:
        return {"slug": slug}

    @app.get("/posts")
    async def posts() -> list[str]:
        return []

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaput")

    return app


def test_built_in_pages_are_styled_and_lead_home(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    with app.test_client() as client:
        missing = client.get("/nowhere", headers=HTML)
        failed = client.get("/boom", headers=HTML)
        api = client.get("/nowhere")
    assert missing.status_code == 404
    assert "<h1>404 Not Found</h1>" in missing.text
    assert "<a class=home href='/'>Go to the home page</a>" in missing.text
    assert "name=viewport" in missing.text
    assert failed.status_code == 500
    assert "Go to the home page" in failed.text
    assert "kaput" not in failed.text
    assert api.json() == {"detail": "Not Found"}  # APIs keep JSON


def test_the_apps_templates_replace_them(tmp_path: Path) -> None:
    app = make_app(
        tmp_path,
        templates={
            "404.html": "<h1>Lost?</h1><p>{{ detail }}</p><a href='{{ home_url }}'>home</a>",
            "500.html": "<h1>Sorry ({{ status_code }})</h1><p>ref {{ request_id }}</p>",
        },
    )
    with app.test_client() as client:
        missing = client.get("/nowhere", headers=HTML)
        failed = client.get("/boom", headers=HTML)
        api = client.get("/boom")
    assert missing.status_code == 404
    assert missing.text == "<h1>Lost?</h1><p>Not Found</p><a href='/'>home</a>"
    assert failed.status_code == 500
    assert failed.text == f"<h1>Sorry (500)</h1><p>ref {failed.headers['x-request-id']}</p>"
    assert api.json()["detail"] == "Internal Server Error"


def test_a_broken_error_template_falls_back_to_the_built_in_page(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(tmp_path, templates={"404.html": "{{ missing_function() }}"})
    with app.test_client() as client:
        page = client.get("/nowhere", headers=HTML)
    assert page.status_code == 404
    assert "<h1>404 Not Found</h1>" in page.text
    assert "error page template failed" in caplog.text


def test_debug_404_lists_the_routes_that_nearly_match(tmp_path: Path) -> None:
    app = make_app(tmp_path, debug=True, templates={"404.html": "custom"})
    with app.test_client() as client:
        page = client.get("/post/hello", headers=HTML)
        far = client.get("/zzzzzzzzzzzzzzzz", headers=HTML)
    assert page.status_code == 404
    assert "Routes that nearly match" in page.text
    assert "<code>GET /posts/{slug}</code>" in page.text
    assert "/boom" not in page.text
    assert "No route is close to this path." in far.text
    assert "custom" not in page.text  # debug pages are the technical ones
