"""Password validators."""

from __future__ import annotations

from types import SimpleNamespace

from transom.auth.validators import (
    CommonPasswordValidator,
    MinimumLengthValidator,
    NumericPasswordValidator,
    UserAttributeSimilarityValidator,
    validate_password,
)


def test_minimum_length() -> None:
    assert MinimumLengthValidator(10).validate("short")
    assert not MinimumLengthValidator(10).validate("long enough!")


def test_common_passwords() -> None:
    assert CommonPasswordValidator().validate("password")
    assert CommonPasswordValidator().validate("Qwerty123 ")
    assert not CommonPasswordValidator().validate("violet tractor umbrella")


def test_numeric() -> None:
    assert NumericPasswordValidator().validate("20261124")
    assert not NumericPasswordValidator().validate("2026x1124")


def test_similarity() -> None:
    user = SimpleNamespace(username="margaret", email="maggie.thatcher@example.com", first_name="")
    validator = UserAttributeSimilarityValidator()
    assert validator.validate("margaret1", user)
    assert validator.validate("Thatcher!!", user)
    assert not validator.validate("blue whales sing", user)
    assert not validator.validate("margaret1", None)


def test_all_together() -> None:
    assert validate_password("violet tractor umbrella") == []
    assert len(validate_password("1234")) == 3
