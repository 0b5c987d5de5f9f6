"""Password hashing: argon2id for new hashes, older formats verified and upgraded on login.

A stored hash names its algorithm (``$argon2id$...``, ``pbkdf2_sha256$...``, ``pbkdf2:sha256:...``,
``scrypt:...``, ``$2b$...``), so a project moving to Transom keeps its users' passwords: they
verify as they are and are re-hashed with argon2id on the next successful login.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import hashlib
import hmac
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from argon2 import PasswordHasher as _Argon2
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = [
    "UNUSABLE_PREFIX",
    "Argon2Hasher",
    "BcryptHasher",
    "DjangoPBKDF2Hasher",
    "Hasher",
    "PasswordHashers",
    "Verification",
    "WerkzeugHasher",
    "current_hashers",
    "is_password_usable",
    "make_unusable_password",
    "use_hashers",
]

#: Hashes starting with this never verify (accounts that log in only through OIDC, say).
UNUSABLE_PREFIX = "!"


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of checking a password.

    Attributes:
        valid: The password matches the hash.
        needs_rehash: It matches, but the hash should be replaced (old parameters or algorithm).
    """

    valid: bool
    needs_rehash: bool = False


class Hasher(Protocol):
    """One hashing algorithm: recognises its own hashes, verifies and (optionally) creates them."""

    def identifies(self, encoded: str) -> bool:
        """Whether ``encoded`` was made by this algorithm."""
        ...

    def verify(self, password: str, encoded: str) -> Verification:
        """Check ``password`` against ``encoded``."""
        ...


class Argon2Hasher:
    """argon2id (RFC 9106) through argon2-cffi; the default and only hasher that creates hashes.

    The defaults are RFC 9106's second recommended option (t=3, 64 MiB, p=4). Hashes made with
    other parameters verify and are flagged for re-hashing.

    Args:
        time_cost: Iterations.
        memory_cost: Memory in KiB.
        parallelism: Lanes.
    """

    def __init__(self, time_cost: int = 3, memory_cost: int = 64 * 1024, parallelism: int = 4):
        self._hasher = _Argon2(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )

    def identifies(self, encoded: str) -> bool:
        return encoded.startswith("$argon2")

    def hash(self, password: str) -> str:
        """A new argon2id hash of ``password``."""
        return self._hasher.hash(password)

    def verify(self, password: str, encoded: str) -> Verification:
        try:
            self._hasher.verify(encoded, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return Verification(False)
        return Verification(True, self._hasher.check_needs_rehash(encoded))


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


class DjangoPBKDF2Hasher:
    """Verifies Django's ``pbkdf2_sha256$<iterations>$<salt>$<base64 hash>`` (and ``_sha1``)."""

    def identifies(self, encoded: str) -> bool:
        return encoded.startswith(("pbkdf2_sha256$", "pbkdf2_sha1$"))

    def verify(self, password: str, encoded: str) -> Verification:
        try:
            algorithm, iterations, salt, digest = encoded.split("$", 3)
            expected = _b64decode(digest)
            rounds = int(iterations)
        except ValueError:
            return Verification(False)
        name = algorithm.removeprefix("pbkdf2_")
        actual = hashlib.pbkdf2_hmac(name, password.encode(), salt.encode(), rounds, len(expected))
        return Verification(hmac.compare_digest(actual, expected), True)


class WerkzeugHasher:
    """Verifies Werkzeug's (Flask) ``pbkdf2:sha256:<iterations>$<salt>$<hex>`` and ``scrypt:``."""

    def identifies(self, encoded: str) -> bool:
        return encoded.startswith(("pbkdf2:", "scrypt:"))

    def verify(self, password: str, encoded: str) -> Verification:
        try:
            method, salt, digest = encoded.split("$", 2)
            parts = method.split(":")
            expected = bytes.fromhex(digest)
            if parts[0] == "pbkdf2":
                rounds = int(parts[2]) if len(parts) > 2 else 600_000
                actual = hashlib.pbkdf2_hmac(
                    parts[1], password.encode(), salt.encode(), rounds, len(expected)
                )
            elif parts[0] == "scrypt":
                n, r, p = (int(x) for x in parts[1:4])
                actual = hashlib.scrypt(
                    password.encode(),
                    salt=salt.encode(),
                    n=n,
                    r=r,
                    p=p,
                    maxmem=132 * n * r * p,
                    dklen=len(expected),
                )
            else:
                return Verification(False)
        except (ValueError, IndexError):
            return Verification(False)
        return Verification(hmac.compare_digest(actual, expected), True)


class BcryptHasher:
    """Verifies bcrypt hashes (``$2b$``...) when the optional ``bcrypt`` package is installed."""

    def identifies(self, encoded: str) -> bool:
        return encoded.startswith(("$2a$", "$2b$", "$2y$"))

    def verify(self, password: str, encoded: str) -> Verification:
        import importlib

        try:
            bcrypt: Any = importlib.import_module("bcrypt")
        except ImportError:  # pragma: no cover - depends on the environment
            return Verification(False)
        try:
            ok = bcrypt.checkpw(password.encode(), encoded.encode())
        except ValueError:
            return Verification(False)
        return Verification(bool(ok), True)


class PasswordHashers:
    """The hasher set of an app: the first hashes, all verify.

    Args:
        primary: Creates new hashes (default :class:`Argon2Hasher`).
        legacy: Other formats accepted at login and then upgraded.

    Example:
        >>> hashers = PasswordHashers(Argon2Hasher(time_cost=1, memory_cost=8192, parallelism=1))
        >>> encoded = hashers.hash("correct horse")
        >>> hashers.verify("correct horse", encoded).valid
        True
    """

    def __init__(
        self,
        primary: Argon2Hasher | None = None,
        legacy: tuple[Hasher, ...] | None = None,
    ) -> None:
        self.primary = primary or Argon2Hasher()
        self.legacy: tuple[Hasher, ...] = (
            legacy
            if legacy is not None
            else (DjangoPBKDF2Hasher(), WerkzeugHasher(), BcryptHasher())
        )
        self._dummy: str | None = None

    def hash(self, password: str) -> str:
        """Hash ``password`` with the primary hasher."""
        return self.primary.hash(password)

    def verify(self, password: str, encoded: str | None) -> Verification:
        """Check ``password`` against ``encoded``; unknown formats and unusable hashes fail."""
        if not encoded or encoded.startswith(UNUSABLE_PREFIX):
            # Burn the same time as a real check: no timing difference for unusable passwords.
            self.run_dummy(password)
            return Verification(False)
        if self.primary.identifies(encoded):
            return self.primary.verify(password, encoded)
        for hasher in self.legacy:
            if hasher.identifies(encoded):
                return hasher.verify(password, encoded)
        self.run_dummy(password)
        return Verification(False)

    def run_dummy(self, password: str) -> None:
        """Verify against a throw-away hash: as slow as a real check (unknown users)."""
        if self._dummy is None:
            self._dummy = self.primary.hash(secrets.token_urlsafe(16))
        self.primary.verify(password, self._dummy)


def make_unusable_password() -> str:
    """A value for the password column that no password matches."""
    return UNUSABLE_PREFIX + secrets.token_urlsafe(30)


def is_password_usable(encoded: str | None) -> bool:
    """False for unusable markers and empty values."""
    return bool(encoded) and not str(encoded).startswith(UNUSABLE_PREFIX)


# The hashers of the app being served. A context variable, not a module global: each request
# (and each thread or task started from it) sees its own app's hashers, so two apps in one
# process never hash with each other's settings.
_current: contextvars.ContextVar[PasswordHashers | None] = contextvars.ContextVar(
    "transom.auth.hashers", default=None
)
_fallback: list[PasswordHashers] = []


def current_hashers() -> PasswordHashers:
    """The hashers in effect here: the app's during its requests and start-up hooks (set
    by the ``Auth`` battery), inside ``with auth.activate():``, else the defaults."""
    hashers = _current.get()
    if hashers is not None:
        return hashers
    if not _fallback:
        _fallback.append(PasswordHashers())
    return _fallback[0]


@contextlib.contextmanager
def use_hashers(hashers: PasswordHashers) -> Iterator[PasswordHashers]:
    """Make ``hashers`` current in this context for the ``with`` block."""
    token = _current.set(hashers)
    try:
        yield hashers
    finally:
        _current.reset(token)
