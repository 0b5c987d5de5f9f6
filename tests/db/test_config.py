"""Configuration: URLs, environment variables, zero-config default, app settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from transom import App, Settings
from transom.db import DEFAULT_DATABASE_URL, Database, DatabaseConfig, DbSessionDep, get_database
from transom.db.config import async_url, sync_url


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (
        "DATABASE_URL",
        "TRANSOM_DATABASE_URL",
        "DATABASE_REPLICA_URLS",
        "TRANSOM_DATABASE_REPLICA_URLS",
        "TRANSOM_DATABASE_POOL_SIZE",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    ("given", "async_form", "sync_form"),
    [
        ("sqlite:///app.db", "sqlite+aiosqlite:///app.db", "sqlite+pysqlite:///app.db"),
        ("postgres://u@h/d", "postgresql+asyncpg://u@h/d", "postgresql+psycopg://u@h/d"),
        ("postgresql+psycopg://u@h/d", "postgresql+asyncpg://u@h/d", "postgresql+psycopg://u@h/d"),
        (
            "mysql://u@h/d",
            "mysql+aiomysql://u@h/d?charset=utf8mb4",
            "mysql+pymysql://u@h/d?charset=utf8mb4",
        ),
        (
            "mariadb://u@h/d?charset=latin1",
            "mariadb+aiomysql://u@h/d?charset=latin1",
            "mariadb+pymysql://u@h/d?charset=latin1",
        ),
    ],
)
def test_urls_get_the_right_drivers(given: str, async_form: str, sync_form: str) -> None:
    assert async_url(given).render_as_string() == async_form
    assert sync_url(given).render_as_string() == sync_form


def test_environment_variables(clean_env: pytest.MonkeyPatch) -> None:
    assert DatabaseConfig().url == DEFAULT_DATABASE_URL
    clean_env.setenv("DATABASE_URL", "postgres://plain/db")
    assert DatabaseConfig().url == "postgres://plain/db"
    clean_env.setenv("TRANSOM_DATABASE_URL", "postgres://prefixed/db")
    assert DatabaseConfig().url == "postgres://prefixed/db"  # the framework's own name wins
    clean_env.setenv("TRANSOM_DATABASE_REPLICA_URLS", "postgres://r1/db, postgres://r2/db")
    clean_env.setenv("TRANSOM_DATABASE_POOL_SIZE", "12")
    config = DatabaseConfig()
    assert config.replica_urls == ["postgres://r1/db", "postgres://r2/db"]
    assert config.pool_size == 12
    assert DatabaseConfig(url="sqlite://").url == "sqlite://"  # code beats environment


def test_app_settings_database_url(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    class MySettings(Settings):
        database_url: str = f"sqlite+aiosqlite:///{tmp_path / 'mine.db'}"

    app = App(MySettings(secret_key="test-secret"))
    # Nothing installed a Database: get_database installs one (deprecated, says so).
    with pytest.warns(DeprecationWarning, match=r"app\.install\(Database"):
        database = get_database(app)
    assert str(database.engine.url).endswith("mine.db")
    # Installed explicitly, the settings' URL is the default too, without a warning.
    explicit = App(MySettings(secret_key="test-secret"))
    explicit.install(Database())
    assert str(get_database(explicit).engine.url).endswith("mine.db")


def test_zero_config_uses_an_sqlite_file(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.chdir(tmp_path)
    app = App(Settings(secret_key="test-secret"))

    @app.get("/")
    async def index(db: DbSessionDep) -> dict[str, int]:
        return {"one": (await db.execute(select(1))).scalar_one()}

    with app.test_client() as client:
        assert client.get("/").json() == {"one": 1}
    assert (tmp_path / "db.sqlite3").exists()
    database = app.extensions["transom.db"]
    assert isinstance(database, Database)
    assert database.config.backend == "sqlite"
