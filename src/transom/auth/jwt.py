"""JSON Web Tokens for APIs: short-lived access tokens, rotating refresh tokens, revocation.

Only the configured algorithm is accepted when decoding (so ``alg: none`` and HS/RS swaps
fail), ``exp``, ``iat``, ``sub``, ``jti`` and ``typ`` are required, and issuer/audience are
checked when configured. A refresh token works once: using it returns a new pair, and using an
already-used one revokes its whole family (someone copied it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import random
import secrets
import time
from typing import TYPE_CHECKING, Any

import jwt
from sqlalchemy import delete, select, update

from transom.auth.models import RefreshToken, RevokedToken
from transom.auth.revocation import LocalRevocations, RevocationCache

if TYPE_CHECKING:
    from transom.db import DbSession

__all__ = ["JWTConfig", "JWTError", "JWTManager", "TokenPair", "purge_expired"]

_SYMMETRIC = ("HS256", "HS384", "HS512")
# Expired token rows are deleted on about one write in this many (no cron job needed).
PURGE_EVERY = 100


class JWTError(Exception):
    """A token is invalid, expired, revoked or of the wrong kind (the message says which)."""


@dataclasses.dataclass
class JWTConfig:
    """JWT settings.

    Attributes:
        algorithm: The one algorithm used and accepted (``HS256``, ``RS256``, ``ES256``...).
        secret: HMAC key; default derived from the app's ``secret_key``.
        private_key: PEM key that signs (asymmetric algorithms).
        public_key: PEM key that verifies (asymmetric algorithms).
        issuer: ``iss`` to set and require.
        audience: ``aud`` to set and require.
        access_ttl: Access token lifetime, seconds.
        refresh_ttl: Refresh token lifetime, seconds.
        leeway: Clock skew tolerated, seconds.
        check_revoked: Check every access token against the revocation table. ``False``
            skips the check: a revoked access token then works until it expires (keep
            ``access_ttl`` short); refresh tokens are always checked.
        revocation_cache_ttl: Seconds the answer "not revoked" is cached per token (in the
            cache battery when the app has one, else in this process), so an authenticated
            request costs no revocation query while its token's answer is cached. It is the
            longest a token revoked *by another process* keeps working when the cache is
            per process; a revocation is written to the cache at once, so the process that
            revokes (and, with a Redis cache, every process) refuses the token immediately.
            ``0`` queries the database on every request.
        revocation_cache_size: The most tokens the in-process cache remembers (the oldest
            are forgotten first); the cache battery has its own limits.
    """

    algorithm: str = "HS256"
    secret: str | None = None
    private_key: str | None = None
    public_key: str | None = None
    issuer: str | None = None
    audience: str | None = None
    access_ttl: int = 15 * 60
    refresh_ttl: int = 14 * 24 * 3600
    leeway: int = 0
    check_revoked: bool = True
    revocation_cache_ttl: float = 30.0
    revocation_cache_size: int = 10_000

    def __post_init__(self) -> None:
        if self.revocation_cache_ttl < 0:
            raise ValueError("revocation_cache_ttl must be >= 0 (0: no cache)")
        if self.revocation_cache_size < 1:
            raise ValueError("revocation_cache_size must be >= 1")
        if self.algorithm.lower() == "none":
            raise ValueError("the 'none' algorithm is never allowed")
        if self.algorithm not in _SYMMETRIC and not (self.private_key and self.public_key):
            raise ValueError(f"{self.algorithm} needs private_key and public_key (PEM)")


@dataclasses.dataclass(frozen=True)
class TokenPair:
    """What the token endpoint returns."""

    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"


class JWTManager:
    """Issues and checks tokens for one app.

    Args:
        config: The settings.
        app_secret: The app's secret key (for the default HMAC key).
    """

    def __init__(self, config: JWTConfig, app_secret: str) -> None:
        self.config = config
        if config.algorithm in _SYMMETRIC:
            # A key of its own: a JWT secret never doubles as the session-signing key.
            derived = hmac.new(app_secret.encode(), b"transom.auth.jwt", hashlib.sha256)
            key = config.secret or derived.hexdigest()
            self._sign_key: Any = key
            self._verify_key: Any = key
        else:
            self._sign_key = config.private_key
            self._verify_key = config.public_key
        #: Where revocation answers are cached (:mod:`transom.auth.revocation`); the auth
        #: battery puts the app's cache battery here when it has one.
        self.revocations: RevocationCache = LocalRevocations(config.revocation_cache_size)

    def _encode(self, subject: str, kind: str, ttl: int, extra: dict[str, Any]) -> tuple[str, str]:
        now = int(time.time())
        jti = secrets.token_urlsafe(16)
        claims: dict[str, Any] = {
            **extra,
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "jti": jti,
            "typ": kind,
        }
        if self.config.issuer:
            claims["iss"] = self.config.issuer
        if self.config.audience:
            claims["aud"] = self.config.audience
        return jwt.encode(claims, self._sign_key, algorithm=self.config.algorithm), jti

    def decode(self, token: str, kind: str = "access") -> dict[str, Any]:
        """Verify ``token`` and return its claims.

        Raises:
            JWTError: bad signature, wrong algorithm, expired, wrong issuer/audience or kind.
        """
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._verify_key,
                algorithms=[self.config.algorithm],
                issuer=self.config.issuer,
                audience=self.config.audience,
                leeway=self.config.leeway,
                options={"require": ["exp", "iat", "sub", "jti", "typ"]},
            )
        except jwt.PyJWTError as exc:
            raise JWTError(str(exc) or type(exc).__name__) from None
        if claims.get("typ") != kind:
            raise JWTError(f"not an {kind} token")
        return claims

    def access_token(self, user_id: str, **claims: Any) -> str:
        """A signed access token for ``user_id`` (extra claims included)."""
        return self._encode(user_id, "access", self.config.access_ttl, claims)[0]

    async def issue(self, db: DbSession, user_id: str, *, family: str | None = None) -> TokenPair:
        """A new access + refresh pair; the refresh token is recorded for rotation."""
        refresh, jti = self._encode(user_id, "refresh", self.config.refresh_ttl, {})
        db.add(
            RefreshToken(
                jti=jti,
                family=family or secrets.token_urlsafe(16),
                user_id=user_id,
                expires_at=time.time() + self.config.refresh_ttl,
            )
        )
        if random.randrange(PURGE_EVERY) == 0:
            await purge_expired(db)
        await db.flush()
        return TokenPair(self.access_token(user_id), refresh, self.config.access_ttl)

    async def refresh(self, db: DbSession, token: str) -> TokenPair:
        """Exchange a refresh token for a new pair (the old one stops working).

        Raises:
            JWTError: invalid, expired, revoked or reused (then the family is revoked).
        """
        claims = self.decode(token, "refresh")
        row = await db.get(RefreshToken, claims["jti"], with_for_update=True)
        if row is None or row.revoked:
            raise JWTError("refresh token revoked")
        if row.used:
            # A second use means two parties hold this token: end the whole login.
            await self._revoke_family(db, row.family)
            raise JWTError("refresh token reused; the session was revoked")
        row.used = True
        await db.flush()
        return await self.issue(db, row.user_id, family=row.family)

    async def revoke(self, db: DbSession, token: str) -> None:
        """Revoke the login a refresh token belongs to (logout for API clients)."""
        claims = self.decode(token, "refresh")
        row = await db.get(RefreshToken, claims["jti"])
        if row is not None:
            await self._revoke_family(db, row.family)

    async def revoke_access(self, db: DbSession, claims: dict[str, Any]) -> None:
        """Deny an access token until it expires (by its ``jti``).

        The revocation cache learns it at once, before the caller commits: a token whose
        revocation then fails to commit is refused anyway (it was meant to end).
        """
        jti = str(claims["jti"])
        db.add(RevokedToken(id=jti, expires_at=float(claims["exp"])))
        await db.flush()
        await self.revocations.revoked(jti, self._remaining(claims))

    async def is_revoked(self, db: DbSession, claims: dict[str, Any]) -> bool:
        """Whether an access token was revoked: the cached answer, else the database's
        (then cached, see ``JWTConfig.revocation_cache_ttl``)."""
        jti = str(claims["jti"])
        ttl = self.config.revocation_cache_ttl
        if ttl > 0:
            cached = await self.revocations.get(jti)
            if cached is not None:
                return cached
        found = await db.execute(select(RevokedToken.id).where(RevokedToken.id == jti))
        revoked = found.first() is not None
        if ttl > 0:
            remaining = self._remaining(claims)
            if revoked:
                await self.revocations.revoked(jti, remaining)
            else:
                await self.revocations.not_revoked(jti, min(ttl, remaining))
        return revoked

    def _remaining(self, claims: dict[str, Any]) -> float:
        # The token's remaining life (with the clock skew allowed): no answer outlives it.
        return max(1.0, float(claims["exp"]) + self.config.leeway - time.time())

    async def _revoke_family(self, db: DbSession, family: str) -> None:
        await db.execute(
            update(RefreshToken).where(RefreshToken.family == family).values(revoked=True)
        )
        await db.flush()


async def purge_expired(db: DbSession) -> None:
    """Delete expired refresh tokens and revocation records (also safe from a scheduled job)."""
    now = time.time()
    await db.execute(delete(RefreshToken).where(RefreshToken.expires_at <= now))
    await db.execute(delete(RevokedToken).where(RevokedToken.expires_at <= now))
