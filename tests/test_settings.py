"""Settings from the environment and .env files."""

from __future__ import annotations

from pathlib import Path

import pytest

from transom.exceptions import ImproperlyConfigured
from transom.settings import Settings


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSOM_DEBUG", "1")
    monkeypatch.setenv("TRANSOM_ALLOWED_HOSTS", "example.com, .example.org")
    monkeypatch.setenv("TRANSOM_MAX_BODY_SIZE", "2048")
    settings = Settings()
    assert settings.debug is True
    assert settings.allowed_hosts == ["example.com", ".example.org"]
    assert settings.max_body_size == 2048


def test_allowed_hosts_accepts_json_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSOM_ALLOWED_HOSTS", '["a.test", "b.test"]')
    assert Settings().allowed_hosts == ["a.test", "b.test"]


def test_dotenv_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRANSOM_SECRET_KEY", raising=False)
    (tmp_path / ".env").write_text("TRANSOM_SECRET_KEY=from-dotenv\nTRANSOM_TITLE=My API\n")
    settings = Settings()
    assert settings.secret_key is not None
    assert settings.secret_key.get_secret_value() == "from-dotenv"
    assert settings.title == "My API"
    assert "from-dotenv" not in repr(settings)  # secrets never show up in logs


def test_invalid_values_are_reported_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSOM_MAX_BODY_SIZE", "lots")
    with pytest.raises(ValueError, match="max_body_size"):
        Settings()


def test_a_secret_key_is_required_by_what_signs_outside_debug() -> None:
    Settings(secret_key=None).check()  # nothing signs yet: no key needed
    with pytest.raises(ImproperlyConfigured, match="TRANSOM_SECRET_KEY is not set, and it signs"):
        Settings(secret_key=None).require_secret_key("it signs")
    with pytest.raises(ImproperlyConfigured):
        Settings(secret_key="").require_secret_key("it signs")
    Settings(secret_key="k").require_secret_key("it signs")
    Settings(secret_key=None, debug=True).require_secret_key("it signs")


def test_subclass_adds_project_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    class ProjectSettings(Settings):
        support_email: str = "help@example.com"

    monkeypatch.setenv("TRANSOM_SUPPORT_EMAIL", "ops@example.com")
    assert ProjectSettings().support_email == "ops@example.com"
