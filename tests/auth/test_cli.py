"""``transom createsuperuser`` and ``transom changepassword``."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session as SyncSession

from transom.auth import User
from transom.auth.cli import changepassword, createsuperuser, createuser
from transom.auth.hashers import PasswordHashers
from transom.db.config import sync_url

from .conftest import CHEAP, SECRET

SRC = Path(__file__).resolve().parents[2] / "src"
_names = itertools.count()
APP = """
from transom import App, Settings
from transom.auth import Auth, AuthConfig, Argon2Hasher, PasswordHashers
from transom.db import Database, DatabaseConfig

app = App(Settings(secret_key={secret!r}))
app.install(Database(DatabaseConfig(url={url!r})))
cheap = PasswordHashers(Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1))
app.install(Auth(AuthConfig(hashers=cheap)))  # brings Security with its defaults
"""


@pytest.fixture
def cli(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run the real `transom` group with the auth commands registered (as entry points)."""
    from transom import cli as core

    module = f"auth_cli_app_{next(_names)}"
    (tmp_path / f"{module}.py").write_text(APP.format(secret=SECRET, url=db_url))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    commands = {
        "createsuperuser": createsuperuser,
        "createuser": createuser,
        "changepassword": changepassword,
    }
    monkeypatch.setattr(
        core._Group,
        "_battery_commands",
        lambda self: {k: SimpleNamespace(load=lambda v=v: v) for k, v in commands.items()},
    )
    runner = CliRunner()

    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Any:
        return runner.invoke(core.main, ["--app", f"{module}:app", *args], input=input, env=env)

    return run


def _user(db_url: str, username: str) -> User | None:
    engine = create_engine(sync_url(db_url))
    try:
        with SyncSession(engine) as db:
            return db.execute(select(User).where(User.username == username)).scalar()
    finally:
        engine.dispose()


def _check(user: User, password: str) -> bool:
    return PasswordHashers(CHEAP.primary).verify(password, user.password).valid


@pytest.mark.usefixtures("backend")
@pytest.mark.parametrize(
    ("flags", "staff", "superuser", "said"),
    [
        ((), False, False, "User 'kim' created."),
        (("--staff",), True, False, "Staff user 'kim' created."),
        (("--superuser",), True, True, "Superuser 'kim' created."),
    ],
)
def test_createuser(
    cli: Any, db_url: str, flags: tuple[str, ...], staff: bool, superuser: bool, said: str
) -> None:
    env = {"TRANSOM_SUPERUSER_PASSWORD": "violet tractor umbrella"}
    result = cli("createuser", "--no-input", "--username", "kim", *flags, env=env)
    assert result.exit_code == 0, result.output
    assert said in result.output
    user = _user(db_url, "kim")
    assert user is not None
    assert (user.is_staff, user.is_superuser, user.is_active) == (staff, superuser, True)
    assert _check(user, "violet tractor umbrella")


@pytest.mark.usefixtures("backend")
def test_createsuperuser_no_input(cli: Any, db_url: str) -> None:
    env = {"TRANSOM_SUPERUSER_PASSWORD": "violet tractor umbrella"}
    result = cli(
        "createsuperuser", "--no-input", "--username", "root", "--email", "r@example.com", env=env
    )
    assert result.exit_code == 0, result.output
    user = _user(db_url, "root")
    assert user is not None
    assert user.is_superuser
    assert user.is_staff
    assert user.is_active
    assert user.email == "r@example.com"
    assert _check(user, "violet tractor umbrella")
    again = cli("createsuperuser", "--no-input", "--username", "root", env=env)
    assert again.exit_code == 1
    assert "already exists" in again.output


@pytest.mark.usefixtures("backend")
def test_createsuperuser_no_input_needs_password(cli: Any) -> None:
    result = cli(
        "createsuperuser",
        "--no-input",
        "--username",
        "root",
        env={"TRANSOM_SUPERUSER_PASSWORD": ""},
    )
    assert result.exit_code == 2
    assert "TRANSOM_SUPERUSER_PASSWORD" in result.output
    weak = cli(
        "createsuperuser",
        "--no-input",
        "--username",
        "root",
        env={"TRANSOM_SUPERUSER_PASSWORD": "123"},
    )
    assert weak.exit_code == 1
    assert "too short" in weak.output


@pytest.mark.usefixtures("backend")
def test_createsuperuser_interactive(cli: Any, db_url: str) -> None:
    good = "violet tractor umbrella"
    answers = f"admin\nadmin@example.com\npassword\npassword\nn\n{good}\n{good}\n"
    result = cli("createsuperuser", input=answers)
    assert result.exit_code == 0, result.output
    assert "too common" in result.output
    user = _user(db_url, "admin")
    assert user is not None
    assert _check(user, "violet tractor umbrella")


@pytest.mark.usefixtures("backend")
def test_changepassword(cli: Any, db_url: str) -> None:
    env = {"TRANSOM_SUPERUSER_PASSWORD": "violet tractor umbrella"}
    assert cli("createsuperuser", "--no-input", "--username", "root", env=env).exit_code == 0
    result = cli("changepassword", "root", input="orange bicycle lantern\norange bicycle lantern\n")
    assert result.exit_code == 0, result.output
    user = _user(db_url, "root")
    assert user is not None
    assert _check(user, "orange bicycle lantern")
    missing = cli("changepassword", "nobody", input="x\nx\n")
    assert missing.exit_code == 1
    assert "No user" in missing.output


ENTRY_POINTS = """\
[transom.commands]
createsuperuser = transom.auth.cli:createsuperuser
changepassword = transom.auth.cli:changepassword
"""


def test_entry_points_in_a_real_process(tmp_path: Path, db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("one engine is enough for the entry-point wiring")
    site = tmp_path / ".site"
    dist = site / "transom_auth_entrypoints-0.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: transom-auth-entrypoints\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    (tmp_path / "app.py").write_text(APP.format(secret=SECRET, url=db_url))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(SRC)]))
    env["TRANSOM_SUPERUSER_PASSWORD"] = "violet tractor umbrella"
    env.pop("TRANSOM_APP", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "transom.cli", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    listing = run("--help")
    assert "createsuperuser" in listing.stdout
    assert "changepassword" in listing.stdout
    created = run("createsuperuser", "--no-input", "--username", "ops")
    assert created.returncode == 0, created.stdout + created.stderr
    assert _user(db_url, "ops") is not None


def test_commands_are_click_commands() -> None:
    assert isinstance(createsuperuser, click.Command)
    assert isinstance(changepassword, click.Command)
