"""A bad DATABASE_URL on the command line: one paragraph naming the variable, no traceback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from _services import require_service
from transom.db.cli_errors import DRIVER_EXTRAS, mask_url
from transom.db.config import async_url, sync_url

# Short, and what to fix: no traceback, the variable named, the password never shown.
MAX_LINES = 6


def transom(
    args: list[str], cwd: Path, env: dict[str, str], pythonpath: Path | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "TRANSOM_DATABASE_URL", "TRANSOM_DEBUG"}
    }
    environ.update(env)
    if pythonpath is not None:
        environ["PYTHONPATH"] = os.pathsep.join(
            [str(pythonpath), *filter(None, [environ.get("PYTHONPATH")])]
        )
    return subprocess.run(
        [sys.executable, "-m", "transom.cli", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_paragraph(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode != 0
    error = result.stderr.strip()
    assert "Traceback" not in error
    assert len(error.splitlines()) <= MAX_LINES, error
    assert error.startswith("Error: "), error
    for text in expected:
        assert text in error, error
    assert "secret" not in error  # the password of the URL is masked


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresq://app:secret@127.0.0.1/app", ["DATABASE_URL", "postgresq", "postgresql://"]),
        (
            "postgresql//app:secret@localhost/app",
            ["DATABASE_URL (postgresql//app:***@localhost/app)", "is not a database URL"],
        ),
        ("sqlite+nosuchdriver:///db.sqlite3", ["DATABASE_URL", "doesn't know"]),
    ],
)
def test_an_unusable_url_is_named(tmp_path: Path, url: str, expected: list[str]) -> None:
    result = transom(["db", "current"], tmp_path, {"DATABASE_URL": url})
    assert_one_paragraph(result, *expected)


def test_the_variable_actually_set_is_named(tmp_path: Path) -> None:
    result = transom(["db", "current"], tmp_path, {"TRANSOM_DATABASE_URL": "postgresq://x/y"})
    assert_one_paragraph(result, "TRANSOM_DATABASE_URL (postgresq://x/y)")


def test_a_server_that_is_down(tmp_path: Path) -> None:
    # A port nothing listens on: bind one, then close it before the command runs.
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://app:secret@127.0.0.1:{port}/app"
    result = transom(["db", "current"], tmp_path, {"DATABASE_URL": url})
    assert_one_paragraph(
        result, "Could not reach the database server", f"postgresql://app:***@127.0.0.1:{port}/app"
    )


@pytest.mark.parametrize(
    ("server", "url", "create"),
    [
        (
            ("PostgreSQL", 5432),
            "postgresql://postgres:secret@127.0.0.1:5432/transom_no_such_db",
            "createdb transom_no_such_db",
        ),
        (
            ("MariaDB", 3306),
            "mysql://root:secret@127.0.0.1:3306/transom_no_such_db",
            "CREATE DATABASE",
        ),
    ],
)
def test_a_missing_database_says_to_create_it(
    tmp_path: Path, server: tuple[str, int], url: str, create: str
) -> None:
    require_service(server[0], "127.0.0.1", server[1])
    if server[0] == "MariaDB":
        url = url.replace("root:secret@", "root@")  # root has no password on the test server
    result = transom(["db", "current"], tmp_path, {"DATABASE_URL": url})
    assert_one_paragraph(result, "'transom_no_such_db'", "does not exist", create, "DATABASE_URL")
    assert "migrate" not in result.stderr  # migrations can't create the database itself


def test_refused_credentials(tmp_path: Path) -> None:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    url = "postgresql://transom_no_such_role:secret@127.0.0.1:5432/test"
    result = transom(["db", "current"], tmp_path, {"DATABASE_URL": url})
    assert_one_paragraph(result, "refused the user or password", "DATABASE_URL")


# The async driver serves the app and `transom db`; the blocking one sync handlers,
# migrations and `transom shell`'s `session`.
SYNC_QUERY = ["shell", "-c", "session.execute(sa.text('select 1'))"]


@pytest.mark.parametrize(
    ("driver", "url", "command", "extra"),
    [
        ("asyncpg", "postgresql://app@127.0.0.1/app", ["db", "current"], "transom[postgres]"),
        ("psycopg", "postgresql://app@127.0.0.1/app", SYNC_QUERY, "transom[postgres]"),
        ("aiomysql", "mysql://app@127.0.0.1/app", ["db", "current"], "transom[mysql]"),
        ("pymysql", "mysql://app@127.0.0.1/app", SYNC_QUERY, "transom[mysql]"),
    ],
)
def test_a_driver_that_is_not_installed_names_the_extra(
    tmp_path: Path, driver: str, url: str, command: list[str], extra: str
) -> None:
    # A package that fails to import as an absent one does, first on the path.
    hide = tmp_path / "hide"
    (hide / driver).mkdir(parents=True)
    (hide / driver / "__init__.py").write_text(
        f"raise ModuleNotFoundError(\"No module named '{driver}'\", name={driver!r})\n"
    )
    project = tmp_path / "project"
    project.mkdir()
    result = transom(command, project, {"DATABASE_URL": url}, pythonpath=hide)
    assert_one_paragraph(result, f"pip install '{extra}'", driver, "DATABASE_URL")


def test_traceback_flag_shows_the_traceback_and_the_paragraph(tmp_path: Path) -> None:
    result = transom(["--traceback", "db", "current"], tmp_path, {"DATABASE_URL": "postgresq://x"})
    assert result.returncode != 0
    assert "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("Error: DATABASE_URL")


def test_mask_url() -> None:
    assert mask_url("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"
    assert mask_url("postgresql://u:pw@h:bad-port/db") == "postgresql://u:***@h:bad-port/db"
    assert mask_url("postgres//u:pw@h/db") == "postgres//u:***@h/db"


@pytest.mark.parametrize("url", ["postgresql://h/db", "postgres://h/db", "mysql://h/db"])
def test_each_extra_installs_the_drivers_its_urls_need(url: str) -> None:
    # `transom[postgres]` alone must serve the app (async driver) and run sync handlers,
    # migrations and `transom shell` (blocking driver); the base install has no such driver.
    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    base = {_dist(r) for r in project["project"]["dependencies"]}
    extras = project["project"]["optional-dependencies"]
    for driver in (async_url(url).drivername, sync_url(url).drivername):
        module = driver.partition("+")[2]
        extra = DRIVER_EXTRAS[module]
        assert module in {_dist(r) for r in extras[extra]}, (driver, extra)
        assert module in {_dist(r) for r in extras["dev"]}  # the suite tests every engine
        assert module not in base
    assert {"postgres", "mysql", "redis"} <= set(extras)
    # `transom[all]` is every optional battery's extra (not the bench or dev tooling).
    [everything] = extras["all"]
    named = set(everything.removeprefix("transom[").removesuffix("]").split(","))
    assert named == set(extras) - {"all", "bench", "dev"}


def _dist(requirement: str) -> str:
    return re.split(r"[\[<>=;\s]", requirement, maxsplit=1)[0].lower()


@pytest.mark.parametrize(("driver", "engine"), [("asyncpg", "engine"), ("psycopg", "sync_engine")])
def test_an_engine_without_its_driver_names_the_extra(
    tmp_path: Path, driver: str, engine: str
) -> None:
    # Not only on the command line: a served app's error log says the same.
    hide = tmp_path / "hide"
    (hide / driver).mkdir(parents=True)
    (hide / driver / "__init__.py").write_text(
        f"raise ModuleNotFoundError(\"No module named '{driver}'\", name={driver!r})\n"
    )
    code = (
        "from transom.db import Database, DatabaseConfig\n"
        "from transom.exceptions import ImproperlyConfigured\n"
        "try:\n"
        f"    Database(DatabaseConfig()).{engine}\n"
        "except ImproperlyConfigured as exc:\n"
        "    print(exc)\n"
    )
    environ = {k: v for k, v in os.environ.items() if k != "TRANSOM_DATABASE_URL"}
    environ["DATABASE_URL"] = "postgresql://app:secret@127.0.0.1/app"
    environ["PYTHONPATH"] = str(hide)
    result = subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert f"needs the {driver} driver, which is not installed" in result.stdout
    assert "pip install 'transom[postgres]'" in result.stdout
    assert "DATABASE_URL (postgresql+" in result.stdout
    assert "secret" not in result.stdout
