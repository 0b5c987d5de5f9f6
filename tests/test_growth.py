"""One app file grows from hello world to models, an API, pages, auth and the admin by adding
lines only; every step is served by ``transom run`` and a cookie-less client keeps using the API.

This is the promise the framework is built on: an app grows by adding lines, never by a rewrite,
and adding a battery never breaks a route or a client that worked before it.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

STEPS = [
    (
        "hello world",
        """
        from transom import App

        app = App()


        @app.get("/")
        def hello() -> str:
            return "Hello, World!"
        """,
    ),
    (
        "a model and a JSON API",
        """

        from pydantic import BaseModel
        from sqlalchemy import select
        from sqlalchemy.orm import Mapped, mapped_column

        from transom.db import Model, DbSessionDep


        class Note(Model):
            id: Mapped[int] = mapped_column(primary_key=True)
            text: Mapped[str]


        class NoteIn(BaseModel):
            text: str


        class NoteOut(BaseModel):
            id: int
            text: str


        @app.post("/api/notes", status_code=201)
        async def add_note(data: NoteIn, db: DbSessionDep) -> NoteOut:
            return await db.save(Note(text=data.text))


        @app.get("/api/notes")
        async def list_notes(db: DbSessionDep) -> list[NoteOut]:
            return list((await db.scalars(select(Note).order_by(Note.id))).all())
        """,
    ),
    (
        "an HTML page from a template",
        """

        from transom.templating import Templates, render

        app.install(Templates())


        @app.get("/notes")
        async def notes_page(db: DbSessionDep):
            notes = (await db.scalars(select(Note).order_by(Note.id))).all()
            return render("notes.html", notes=notes)
        """,
    ),
    (
        "users, sessions and CSRF",
        """

        from transom.auth import Auth, CurrentUser

        app.install(Auth())


        @app.get("/api/me")
        async def me(user: CurrentUser) -> dict[str, str]:
            return {"username": user.username}
        """,
    ),
    (
        "the admin",
        """

        from transom.admin import Admin

        admin = app.install(Admin())
        admin.register(Note)
        """,
    ),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _transom(project: Path, *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "transom.cli", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


class Server:
    """``transom run`` in production mode on a free port, stopped when the step is done."""

    def __init__(self, project: Path) -> None:
        self.port = _free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "transom.cli", "run", "--no-debug", "--port", str(self.port)],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=5)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.client.get("/")
                return
            except httpx.TransportError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    output = self.process.stdout.read().decode() if self.process.stdout else ""
                    pytest.fail(f"transom run did not start:\n{output}")
                time.sleep(0.2)

    def stop(self) -> None:
        self.client.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def test_one_app_grows_by_adding_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSOM_SECRET_KEY", "growth-test-secret-key")
    monkeypatch.setenv("TRANSOM_ALLOWED_HOSTS", "127.0.0.1")
    monkeypatch.delenv("TRANSOM_DATABASE_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    project = tmp_path / "project"
    (project / "templates").mkdir(parents=True)
    (project / "templates" / "notes.html").write_text(
        "<ul>{% for note in notes %}<li>{{ note.text }}</li>{% endfor %}</ul>"
    )
    source = ""
    notes: list[dict[str, object]] = []
    for number, (what, lines) in enumerate(STEPS, 1):
        before = source
        source += textwrap.dedent(lines).lstrip("\n") if number == 1 else textwrap.dedent(lines)
        assert source.startswith(before)  # lines were added, none changed
        (project / "app.py").write_text(source)
        if number >= 2:  # the tables of the models and of the batteries
            if number == 2:  # what a user does after adding a model
                _transom(project, "db", "makemigrations", "-m", "notes")
            _transom(project, "db", "migrate")
        server = Server(project)
        try:
            client = server.client  # no cookie jar use: every request is cookie-less
            client.cookies.clear()
            assert client.get("/").text == "Hello, World!", what
            if number >= 2:
                created = client.post("/api/notes", json={"text": f"step {number}"})
                assert created.status_code == 201, (what, created.text)
                notes.append(created.json())
                assert client.get("/api/notes").json() == notes, what
                assert "set-cookie" not in created.headers, what
            if number >= 3:
                page = client.get("/notes")
                assert page.status_code == 200, what
                assert f"<li>step {number}</li>" in page.text, what
            if number >= 4:
                anonymous = client.get("/api/me")
                assert anonymous.status_code == 401, (what, anonymous.text)
                assert client.get("/auth/login").status_code == 200, what
            if number >= 5:
                login = client.get("/admin/login")
                assert login.status_code == 200, what
                assert 'name="csrf_token"' in login.text, what
            client.cookies.clear()
        finally:
            server.stop()
    assert len(notes) == 4
