"""Flash messages across a redirect, and forms protected by CSRF (with the security battery)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from transom import App, RedirectResponse, Request, Response, render
from transom.forms import Form, flash, get_flashed_messages
from transom.security import Security
from transom.settings import Settings
from transom.templating import Templates


class NoteForm(Form):
    text: str


@pytest.fixture
def app(tmp_path: Path) -> App:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "page.html").write_text(
        "{% for category, m in get_flashed_messages(with_categories=True) %}"
        "<p class='{{ category }}'>{{ m }}</p>{% endfor %}"
        "{{ form.render() if form else '' }}"
    )
    app = App(Settings())
    app.root_path = tmp_path
    app.install(Security())
    app.install(Templates())

    @app.route("/notes", methods=["GET", "POST"])
    async def notes(request: Request) -> Response:
        form = await NoteForm.from_request(request)
        if form.is_valid:
            await flash(request, f"Saved <{form.data.text}>", "success")
            return RedirectResponse("/notes", 303)
        return render("page.html", form=await form.with_csrf(), status_code=form.status_code)

    @app.get("/peek")
    async def peek(request: Request) -> list[str]:
        return await get_flashed_messages(request)

    return app


def _token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match is not None, html
    return match.group(1)


def test_form_carries_csrf_and_flash_survives_one_redirect(app: App) -> None:
    with app.test_client() as client:
        page = client.get("/notes")
        token = _token(page.text)
        refused = client.post("/notes", data={"text": "hello"})
        assert refused.status_code == 403
        done = client.post("/notes", data={"text": "hello", "csrf_token": token})
        assert done.status_code == 303
        shown = client.get("/notes")
        assert "<p class='success'>Saved &lt;hello&gt;</p>" in shown.text
        # Shown once, then gone.
        assert "Saved" not in client.get("/notes").text
        assert client.get("/peek").json() == []


def test_flash_needs_the_security_battery(tmp_path: Path) -> None:
    app = App(Settings())

    @app.get("/")
    async def index(request: Request) -> str:
        await flash(request, "hi")
        return "x"

    with app.test_client() as client:
        assert client.get("/").status_code == 500
