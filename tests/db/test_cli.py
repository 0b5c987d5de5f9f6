"""``transom db ...`` and ``transom shell`` through the real entry point, in a scratch project.

The commands run in subprocesses (as a user runs them) with the ``transom.commands`` entry
points declared by a throw-away ``.dist-info`` on ``PYTHONPATH``, exactly as an installed
package declares them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

ENTRY_POINTS = """\
[transom.commands]
db = transom.db.cli:db
shell = transom.db.shell:shell

[transom.migrations]
auth = transom.auth.migrations
"""

APP_V1 = """\
from sqlalchemy.orm import Mapped, mapped_column

from transom import App
from transom.db import Model, DbSessionDep


class Article(Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(unique=True)
    title: Mapped[str]


app = App()


@app.get("/articles/{slug}")
async def show(slug: str, db: DbSessionDep):
    return await db.get_one_or_404(Article, slug=slug)
"""

APP_V2 = APP_V1.replace(
    "    title: Mapped[str]\n", "    title: Mapped[str]\n    summary: Mapped[str | None]\n"
)


class Project:
    """A scratch project directory with its own DATABASE_URL."""

    def __init__(self, root: Path, url: str) -> None:
        self.root = root
        site = root / ".site"
        dist = site / "transom_db_entrypoints-0.0.dist-info"
        dist.mkdir(parents=True)
        (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: transom-db-entrypoints\n")
        (dist / "entry_points.txt").write_text(ENTRY_POINTS)
        self.env = dict(os.environ)
        self.env["PYTHONPATH"] = os.pathsep.join([str(site), str(SRC)])
        self.env["DATABASE_URL"] = url
        self.env.pop("TRANSOM_DATABASE_URL", None)
        self.env.pop("TRANSOM_APP", None)

    def write_app(self, source: str) -> None:
        (self.root / "app.py").write_text(source)

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "transom.cli", *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if ok:
            assert result.returncode == 0, result.stdout + result.stderr
        return result

    def get_article(self) -> tuple[int, str, int]:
        out = self.python(
            """
import json
from app import app
with app.test_client() as client:
    ok = client.get("/articles/hello")
    missing = client.get("/articles/nope")
print(json.dumps([ok.status_code, ok.text, missing.status_code]))
"""
        )
        status, text, missing = json.loads(out.strip().splitlines()[-1])
        return int(status), str(text), int(missing)

    def python(self, source: str) -> str:
        result = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(source)],
            cwd=self.root,
            env=self.env | {"PYTHONPATH": f"{self.root}{os.pathsep}{self.env['PYTHONPATH']}"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout


@pytest.fixture
def project(tmp_path: Path, servers: Any, backend: str) -> Project:
    return Project(tmp_path, servers.url(backend, fresh=True))


def test_every_command_has_help(tmp_path: Path) -> None:
    p = Project(tmp_path, "sqlite+aiosqlite:///unused.sqlite3")
    top = p.run("--help").stdout
    assert "db" in top
    assert "shell" in top
    listing = p.run("db", "--help").stdout
    for name in ("makemigrations", "migrate", "downgrade", "history", "current", "check"):
        assert name in listing
        assert "Usage:" in p.run("db", name, "--help").stdout
    assert "--command" in p.run("shell", "--help").stdout


def test_issue_example_end_to_end(project: Project) -> None:
    project.write_app(APP_V1)

    made = project.run("db", "makemigrations", "-m", "add article").stdout
    assert "Created migrations/versions/0001_" in made
    assert "add_article" in made
    assert "Detected added table 'article'" in made
    # Written as ruff formats it (ruff is installed here), so `ruff format --check` passes.
    (script,) = (project.root / "migrations" / "versions").glob("0001_*.py")
    checked = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "--no-cache", str(script)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert project.run("db", "check", ok=False).returncode == 1  # not migrated yet
    migrated = project.run("db", "migrate").stdout
    assert "Running upgrade  -> 0001_" in migrated
    assert "No changes detected." in project.run("db", "makemigrations").stdout
    assert "up to date" in project.run("db", "current").stdout
    assert "Models and migrations agree." in project.run("db", "check").stdout

    # The table exists: use it from the shell.
    project.run("shell", "-c", "session.add(Article(slug='hi', title='Hi')); session.commit()")
    out = project.run("shell", "-c", "print(session.scalars(select(Article)).one().title)")
    assert out.stdout.strip() == "Hi"
    project.run("shell", "-c", "session.execute(sa.delete(Article)); session.commit()")

    # Change the model: check fails until a migration exists and is applied.
    project.write_app(APP_V2)
    failed = project.run("db", "check", ok=False)
    assert failed.returncode == 1
    assert "add_column" in failed.stderr
    project.run("db", "makemigrations", "-m", "add summary")
    project.run("db", "migrate")
    project.run("db", "check")
    history = project.run("db", "history").stdout
    assert "add article" in history
    assert "add summary" in history

    project.run("db", "downgrade")
    assert "latest is 0002_" in project.run("db", "current").stdout
    project.run("db", "downgrade", "base")
    assert "no migration" in project.run("db", "current").stdout
    project.run("db", "migrate")
    project.run("db", "check")

    # The handler of the issue, through HTTP.
    project.run(
        "shell", "-c", "session.add(Article(slug='hello', title='Hello')); session.commit()"
    )
    status, text, missing = project.get_article()
    assert missing == 404
    assert status == 200, text
    assert json.loads(text) == {"id": 1, "slug": "hello", "title": "Hello", "summary": None}


def test_offline_sql_and_plain_shell(project: Project) -> None:
    project.write_app(APP_V1)
    project.run("db", "makemigrations", "-m", "add article")
    sql = project.run("db", "migrate", "--sql").stdout
    assert "CREATE TABLE article" in sql
    assert "no migration" in project.run("db", "current").stdout  # --sql ran nothing
    project.run("db", "migrate")
    result = subprocess.run(
        [sys.executable, "-m", "transom.cli", "shell", "--plain"],
        cwd=project.root,
        env=project.env,
        input="session.add(Article(slug='s', title='From stdin'))\nsession.commit()\n"
        "print('titles:', session.scalars(select(Article.title)).all())\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "titles: ['From stdin']" in result.stdout
    assert "models: Article" in result.stderr  # the banner (code.interact writes to stderr)


APP_WITH_AUTH = """\
from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from transom import App, Settings
from transom.auth import Auth
from transom.db import Model
from transom.security import Security


class Article(Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]
    author_id: Mapped[int] = mapped_column(ForeignKey("transom_auth_user.id"))


app = App(Settings(secret_key="test"))
Security(app)
Auth(app)
"""

TABLES = """
from sqlalchemy import create_engine, inspect
from transom.db import get_database
from transom.db.config import sync_url
from app import app
engine = create_engine(sync_url(str(get_database(app).config.url)))
with engine.connect() as conn:
    print(sorted(inspect(conn).get_table_names()))
engine.dispose()
"""


def test_battery_migrations_run_with_the_projects(project: Project) -> None:
    project.write_app(APP_WITH_AUTH)
    # The first makemigrations applies the auth branch (autogenerate compares with the
    # database) and the project's first migration depends on it: article points at users.
    made = project.run("db", "makemigrations", "-m", "add article").stdout
    assert "Running upgrade  -> auth_0001" in made
    assert "Running upgrade auth_0001 -> auth_0002" in made
    assert "Running upgrade auth_0002 -> auth_0003" in made
    assert "Running upgrade auth_0003 -> auth_0004" in made
    assert "Detected added table 'article'" in made
    assert "Detected added table 'transom_auth_user'" not in made  # the battery's, not ours
    script = next((project.root / "migrations" / "versions").glob("0001_*.py")).read_text()
    assert 'depends_on: str | Sequence[str] | None = "auth_0004"' in script

    assert "Running upgrade  -> 0001_" in project.run("db", "migrate").stdout
    assert "up to date" in project.run("db", "current").stdout
    assert "Models and migrations agree." in project.run("db", "check").stdout
    tables = project.python(TABLES)
    assert "'article'" in tables
    assert "'transom_auth_user'" in tables

    # `downgrade` steps back along the project's own migrations, leaving the battery's.
    project.run("db", "downgrade")
    assert project.run("db", "current").stdout.startswith("auth_0004 ")
    tables = project.python(TABLES)
    assert "'article'" not in tables
    assert "'transom_auth_user'" in tables

    project.run("db", "downgrade", "base")
    assert "transom_auth" not in project.python(TABLES)
    project.run("db", "migrate")
    project.run("db", "check")
    assert "add article" in project.run("db", "history").stdout


APP_ONLY_AUTH = """\
from transom import App, Settings
from transom.auth import Auth

app = App(Settings(secret_key="test"))
Auth(app)
"""


def test_migrate_applies_the_batteries_without_project_migrations(project: Project) -> None:
    # An app that uses only the batteries' tables has no migration of its own: `migrate`
    # still creates them (as Django's does for contrib apps in a fresh project).
    project.write_app(APP_ONLY_AUTH)
    migrated = project.run("db", "migrate").stdout
    assert "Running upgrade  -> auth_0001" in migrated
    assert "Database is at auth_0004" in migrated
    assert not (project.root / "migrations").exists()  # nothing written into the project
    assert "'transom_auth_user'" in project.python(TABLES)
    assert "up to date" in project.run("db", "current").stdout


def test_an_app_without_auth_gets_no_auth_tables(project: Project) -> None:
    project.write_app(APP_V1)
    project.run("db", "makemigrations", "-m", "add article")
    project.run("db", "migrate")
    tables = project.python(TABLES)
    assert "'article'" in tables
    assert "transom_auth" not in tables
