"""`make conduit`: migrations applied first, then the API served on the chosen address."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from test_cli import _free_port, serving
from transom import App
from transom.db import Database
from transom.db.migrations import Migrations

from .conftest import EXAMPLE, PASSWORD


def test_make_conduit_migrates_then_serves(tmp_path: Path) -> None:
    root = EXAMPLE.parents[1]
    dry = subprocess.run(
        ["make", "-n", "conduit", "PORT=8123"], cwd=root, capture_output=True, text=True, timeout=60
    )
    commands = dry.stdout
    assert commands.index("transom db migrate") < commands.index("transom run"), commands
    assert "transom run --host 127.0.0.1 --port 8123" in commands, commands + dry.stderr
    # What `make conduit` runs, on a copy of the example (its SQLite file) and a free port.
    copy = tmp_path / "conduit"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("db.sqlite3*", "__pycache__"))
    env = {**os.environ, "TRANSOM_SECRET_KEY": "make-conduit-test"}
    env.pop("DATABASE_URL", None)
    env.pop("TRANSOM_DATABASE_URL", None)
    transom = [sys.executable, "-m", "transom.cli"]
    migrate = subprocess.run(
        [*transom, "db", "migrate"], cwd=copy, env=env, capture_output=True, timeout=180
    )
    assert migrate.returncode == 0, migrate.stderr
    assert (copy / "db.sqlite3").exists()
    port = _free_port()
    base = f"http://127.0.0.1:{port}/api"
    with serving([*transom, "run", "--no-reload", "--port", str(port)], copy, port, env):
        user = {"username": "ana", "email": "ana@example.com", "password": PASSWORD}
        registered = httpx.post(f"{base}/users", json={"user": user}, timeout=30)
        assert registered.status_code == 201, registered.text
        token = registered.json()["user"]["token"]
        article = {"title": "Served", "description": "d", "body": "b"}
        created = httpx.post(
            f"{base}/articles",
            json={"article": article},
            headers={"authorization": f"Token {token}"},
            timeout=30,
        )
        assert created.status_code == 201, created.text
        listed = httpx.get(f"{base}/articles", timeout=30).json()
        assert [a["slug"] for a in listed["articles"]] == ["served"]


def test_the_migrations_match_the_models(app: App) -> None:
    """`transom db check`: the committed migrations create exactly what the models describe."""
    assert Migrations(Database.of(app), EXAMPLE / "migrations").check() == []
