"""Password hashing and upgrade of old hashes."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest

from transom.auth import Argon2Hasher, PasswordHashers
from transom.auth.hashers import is_password_usable, make_unusable_password

FAST = Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1)


def test_argon2id_roundtrip() -> None:
    hashers = PasswordHashers(FAST)
    encoded = hashers.hash("s3cret pass")
    assert encoded.startswith("$argon2id$")
    assert hashers.verify("s3cret pass", encoded).valid
    assert not hashers.verify("s3cret pasS", encoded).valid
    assert not hashers.verify("s3cret pass", encoded).needs_rehash


def test_default_parameters_are_rfc9106() -> None:
    encoded = Argon2Hasher().hash("x")
    assert "$m=65536,t=3,p=4$" in encoded


def test_old_parameters_need_rehash() -> None:
    old = Argon2Hasher(time_cost=1, memory_cost=512, parallelism=1).hash("pw")
    result = PasswordHashers(FAST).verify("pw", old)
    assert result.valid
    assert result.needs_rehash


def test_django_pbkdf2() -> None:
    digest = hashlib.pbkdf2_hmac("sha256", b"pw", b"salt", 1000)
    encoded = f"pbkdf2_sha256$1000$salt${base64.b64encode(digest).decode()}"
    hashers = PasswordHashers(FAST)
    assert hashers.verify("pw", encoded) == hashers.verify("pw", encoded)
    assert hashers.verify("pw", encoded).needs_rehash
    assert not hashers.verify("PW", encoded).valid
    assert not hashers.verify("pw", "pbkdf2_sha256$bad").valid


def test_werkzeug_formats() -> None:
    hashers = PasswordHashers(FAST)
    digest = hashlib.pbkdf2_hmac("sha256", b"pw", b"salty", 5000).hex()
    assert hashers.verify("pw", f"pbkdf2:sha256:5000$salty${digest}").valid
    scrypt = hashlib.scrypt(
        b"pw", salt=b"salty", n=16384, r=8, p=1, maxmem=132 * 16384 * 8, dklen=64
    )
    result = hashers.verify("pw", f"scrypt:16384:8:1$salty${scrypt.hex()}")
    assert result.valid
    assert result.needs_rehash
    assert not hashers.verify("nope", f"scrypt:16384:8:1$salty${scrypt.hex()}").valid


def test_unusable_and_unknown() -> None:
    hashers = PasswordHashers(FAST)
    marker = make_unusable_password()
    assert not is_password_usable(marker)
    assert not is_password_usable("")
    assert not hashers.verify("", marker).valid
    assert not hashers.verify("pw", "md5$whatever").valid
    assert not hashers.verify("pw", None).valid


def test_user_methods_upgrade_in_place() -> None:
    from transom.auth import User
    from transom.auth.hashers import use_hashers

    with use_hashers(PasswordHashers(FAST)):
        _upgrade_in_place(User(username="u"))


def test_set_hashers_is_deprecated_and_only_sets_the_fallback() -> None:
    from transom.auth import User
    from transom.auth.hashers import current_hashers, use_hashers
    from transom.auth.models import set_hashers

    before = current_hashers()
    fast = PasswordHashers(FAST)
    try:
        with pytest.warns(DeprecationWarning, match=r"AuthConfig\(hashers=\.\.\.\)"):
            set_hashers(fast)
        assert current_hashers() is fast  # outside any app, as before
        mine = PasswordHashers(FAST)
        with use_hashers(mine):  # an app's requests keep the app's
            assert current_hashers() is mine
        user = User(username="u")
        user.set_password("pw")
        assert user.check_password("pw")
    finally:
        set_hashers_silently(before)


def set_hashers_silently(hashers: PasswordHashers) -> None:
    import warnings

    from transom.auth.models import set_hashers

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        set_hashers(hashers)


def _upgrade_in_place(user: Any) -> None:
    assert not user.check_password("anything")  # new users have an unusable password
    digest = hashlib.pbkdf2_hmac("sha256", b"pw", b"salt", 1000)
    user.password = f"pbkdf2_sha256$1000$salt${base64.b64encode(digest).decode()}"
    assert user.check_password("pw")
    assert user.password.startswith("$argon2id$")
    user.set_password(None)
    assert not user.check_password("pw")
