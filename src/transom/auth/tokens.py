"""Signed, expiring, single-use tokens for emails, and long-lived API tokens stored hashed.

Reset and verification tokens carry a fingerprint of the state they change (the password hash
and last login, or the email and its verified flag): once used, that state differs and the
token no longer verifies. Nothing is stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING, Any

from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy import select

from transom.auth.models import APIToken

if TYPE_CHECKING:
    from transom.db import DbSession

__all__ = [
    "API_TOKEN_PREFIX",
    "SignedTokens",
    "authenticate_api_token",
    "create_api_token",
    "fingerprint",
    "fingerprint_matches",
]

API_TOKEN_PREFIX = "tsm_"


def fingerprint(secret: str, *parts: Any) -> str:
    """A short keyed digest of ``parts`` (never the values themselves)."""
    data = "\x00".join("" if p is None else str(p) for p in parts).encode()
    return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()[:32]


def fingerprint_matches(keys: tuple[str, ...], value: str, *parts: Any) -> bool:
    """Whether ``value`` is the fingerprint of ``parts`` under any of ``keys`` (rotation)."""
    found = False
    for key in keys:  # no early exit: the time doesn't depend on which key matched
        found |= hmac.compare_digest(fingerprint(key, *parts), value)
    return found


class SignedTokens:
    """Make and check purpose-bound tokens for a user.

    Args:
        keys: Secret keys, oldest first; the last signs.
    """

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.keys = keys

    def _serializer(self, purpose: str) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(list(self.keys), salt=f"transom.auth.{purpose}")

    def _state(self, purpose: str, user: Any) -> str:
        if purpose == "reset":
            state: tuple[Any, ...] = (user.password, user.last_login, user.email)
        else:
            state = (user.email, user.email_verified)
        return fingerprint(self.keys[-1], purpose, user.id, *state)

    def make(self, purpose: str, user: Any) -> str:
        """A token for ``purpose`` (``"reset"`` or ``"verify"``) bound to ``user``'s state."""
        return str(self._serializer(purpose).dumps([str(user.id), self._state(purpose, user)]))

    def user_id(self, purpose: str, token: str, max_age: int) -> str | None:
        """The user id in a well-signed, unexpired token (the state is checked by :meth:`check`)."""
        try:
            data = self._serializer(purpose).loads(token, max_age=max_age)
        except BadData:
            return None
        if not (
            isinstance(data, list) and len(data) == 2 and all(isinstance(x, str) for x in data)
        ):
            return None
        return str(data[0])

    def check(self, purpose: str, token: str, user: Any, max_age: int) -> bool:
        """Whether ``token`` is valid, unexpired and unused for ``user``."""
        try:
            data = self._serializer(purpose).loads(token, max_age=max_age)
        except BadData:
            return False
        if not isinstance(data, list) or len(data) != 2:
            return False
        return str(data[0]) == str(user.id) and hmac.compare_digest(
            str(data[1]), self._state(purpose, user)
        )


def _digest(token: str) -> str:
    # API tokens carry 256 random bits: a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(token.encode()).hexdigest()


async def create_api_token(
    db: DbSession,
    user: Any,
    name: str = "",
    *,
    expires_in: dt.timedelta | None = None,
) -> tuple[str, APIToken]:
    """Create an API token for ``user``; the returned string is shown once, never stored.

    Example:
        >>> token, row = await create_api_token(db, user, "CI")  # doctest: +SKIP
        >>> token[:4]
        'tsm_'
    """
    prefix = secrets.token_hex(6)
    token = f"{API_TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    expires = dt.datetime.now(dt.UTC) + expires_in if expires_in is not None else None
    row = APIToken(
        user_id=str(user.id), name=name, prefix=prefix, digest=_digest(token), expires_at=expires
    )
    db.add(row)
    await db.flush()
    return token, row


async def authenticate_api_token(db: DbSession, token: str) -> APIToken | None:
    """The stored token matching ``token`` (unexpired), or ``None``; records its last use."""
    if not token.startswith(API_TOKEN_PREFIX):
        return None
    prefix, _, _ = token[len(API_TOKEN_PREFIX) :].partition("_")
    row = (await db.execute(select(APIToken).where(APIToken.prefix == prefix))).scalar()
    if row is None or not hmac.compare_digest(row.digest, _digest(token)):
        return None
    now = dt.datetime.now(dt.UTC)
    if row.expires_at is not None and row.expires_at <= now:
        return None
    row.last_used_at = now
    return row
