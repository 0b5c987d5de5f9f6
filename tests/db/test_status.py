"""The database battery's start-up check: unapplied migrations are reported when the app is
built (ERROR in debug mode, WARNING in production), with the command that fixes them."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from transom import App, Settings
from transom.db import Database, DatabaseConfig
from transom.db.migrations import Migrations


class Base(DeclarativeBase):
    pass


class Gadget(Base):
    __tablename__ = "gadget"
    id: Mapped[int] = mapped_column(primary_key=True)


def _records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "transom.db"]


def _app(url: str, directory: Path, *, debug: bool) -> App:
    app = App(Settings(debug=debug, secret_key="x"))
    config = DatabaseConfig(url=url, migrations_dir=directory, connect_timeout=2)
    app.install(Database(config, metadata=Base.metadata))
    return app


def _project(url: str, directory: Path) -> Migrations:
    migrations = Migrations(Database(DatabaseConfig(url=url), metadata=Base.metadata), directory)
    assert migrations.make("gadget") is not None
    return migrations


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "production"])
def test_unapplied_migrations_are_reported_at_build(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, debug: bool
) -> None:
    directory = tmp_path / "migrations"
    _project(db_url, directory)
    app = _app(db_url, directory, debug=debug)
    with caplog.at_level(logging.INFO, logger="transom.db"):
        app.build()  # reported, not refused: the app starts
    [record] = _records(caplog)
    assert record.levelno == (logging.ERROR if debug else logging.WARNING)
    assert "unapplied migrations" in record.getMessage()
    assert "run `transom db migrate`" in record.getMessage()


def test_nothing_is_said_once_migrated(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "migrations"
    _project(db_url, directory).upgrade()
    app = _app(db_url, directory, debug=True)
    with caplog.at_level(logging.INFO, logger="transom.db"):
        app.build()
    assert _records(caplog) == []


def test_without_migrations_nothing_is_checked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Only this test's metadata: no project migrations and no battery tables to compare.
    app = _app(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", tmp_path / "none", debug=True)
    with caplog.at_level(logging.INFO, logger="transom.db"):
        app.build()
    assert _records(caplog) == []


def test_an_unreachable_database_is_logged_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "migrations"
    _project(f"sqlite+aiosqlite:///{tmp_path / 'made.db'}", directory)
    # A port nothing listens on (bound, then closed): the connection is refused at once.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/test"
    app = _app(url, directory, debug=True)
    with caplog.at_level(logging.INFO, logger="transom.db"):
        app.build()
    [record] = _records(caplog)
    assert record.levelno == logging.WARNING
    assert "Could not check the database migrations" in record.getMessage()
