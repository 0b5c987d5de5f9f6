"""Password validators: each returns a list of problems (empty when the password is fine)."""

from __future__ import annotations

import functools
import gzip
import re
from collections.abc import Sequence
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "DEFAULT_VALIDATORS",
    "CommonPasswordValidator",
    "MinimumLengthValidator",
    "NumericPasswordValidator",
    "PasswordValidator",
    "UserAttributeSimilarityValidator",
    "validate_password",
]

#: The 20,000 most common passwords of SecLists' "10 million password list" (top 1M, MIT
#: licence, https://github.com/danielmiessler/SecLists), lowercased, most common first.
COMMON_PASSWORDS = Path(__file__).with_name("common-passwords.txt.gz")


class PasswordValidator(Protocol):
    """Anything with ``validate(password, user) -> list[str]``."""

    def validate(self, password: str, user: Any | None = None) -> list[str]:
        """Problems with ``password`` for ``user`` (who may not exist yet)."""
        ...


class MinimumLengthValidator:
    """At least ``min_length`` characters (default 8).

    Args:
        min_length: The shortest acceptable password.
    """

    def __init__(self, min_length: int = 8) -> None:
        self.min_length = min_length

    def validate(self, password: str, user: Any | None = None) -> list[str]:
        if len(password) < self.min_length:
            return [f"This password is too short: use at least {self.min_length} characters."]
        return []


@functools.lru_cache(maxsize=4)
def _load_list(path: Path) -> frozenset[str]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return frozenset(line.strip().lower() for line in handle if line.strip())


class CommonPasswordValidator:
    """Not among the ~20,000 most common passwords (a shipped list; case-insensitive).

    Args:
        path: Another gzipped list, one password a line.
    """

    def __init__(self, path: Path = COMMON_PASSWORDS) -> None:
        self.path = path

    def validate(self, password: str, user: Any | None = None) -> list[str]:
        if password.strip().lower() in _load_list(self.path):
            return ["This password is too common."]
        return []


class NumericPasswordValidator:
    """Not made of digits only."""

    def validate(self, password: str, user: Any | None = None) -> list[str]:
        if password.isdigit():
            return ["This password is entirely numeric."]
        return []


class UserAttributeSimilarityValidator:
    """Not too similar to the user's username, email (and its parts) or names.

    Args:
        attributes: User attributes to compare with.
        max_similarity: Ratio (0..1) from which a password counts as too similar.
    """

    def __init__(
        self,
        attributes: Sequence[str] = ("username", "email", "first_name", "last_name"),
        max_similarity: float = 0.7,
    ) -> None:
        self.attributes = tuple(attributes)
        self.max_similarity = max_similarity

    def validate(self, password: str, user: Any | None = None) -> list[str]:
        if user is None:
            return []
        lowered = password.lower()
        for attribute in self.attributes:
            value = getattr(user, attribute, None)
            if not isinstance(value, str) or not value:
                continue
            # The whole value and its words ("jane.doe@example.com" -> jane, doe, example...).
            candidates = {value.lower(), *re.split(r"\W+", value.lower())}
            for candidate in candidates:
                if len(candidate) < 3:
                    continue
                if candidate in lowered or lowered in candidate:
                    return [f"This password is too similar to your {attribute.replace('_', ' ')}."]
                ratio = SequenceMatcher(a=lowered, b=candidate).quick_ratio()
                if ratio >= self.max_similarity:
                    return [f"This password is too similar to your {attribute.replace('_', ' ')}."]
        return []


DEFAULT_VALIDATORS: tuple[PasswordValidator, ...] = (
    UserAttributeSimilarityValidator(),
    MinimumLengthValidator(),
    CommonPasswordValidator(),
    NumericPasswordValidator(),
)


def validate_password(
    password: str,
    user: Any | None = None,
    validators: Sequence[PasswordValidator] | None = None,
) -> list[str]:
    """Run every validator and collect their messages.

    Example:
        >>> validate_password("123")
        ['This password is too short: use at least 8 characters.', \
'This password is too common.', 'This password is entirely numeric.']
    """
    problems: list[str] = []
    for validator in DEFAULT_VALIDATORS if validators is None else validators:
        problems.extend(validator.validate(password, user))
    return problems
