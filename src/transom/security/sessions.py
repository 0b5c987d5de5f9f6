"""Sessions: a dict-like ``SessionData`` per request, kept in a signed cookie or a server store.

Every backend sends the browser a cookie signed with the app's ``secret_key`` (older keys in
``old_secret_keys`` are still accepted, so keys can be rotated without logging everybody out):

* :class:`SignedCookieBackend` (default) puts the JSON data itself in the cookie;
* server-side backends (:class:`MemorySessionBackend`, Redis, database) put only a random
  session key in the cookie and the data in the store.

Idle expiry is enforced through the signature's timestamp (and the store's TTL), absolute expiry
through the creation time saved with the data. A cookie that fails verification is dropped,
logged and deleted; an unknown session key is never adopted, a new random one is issued instead.
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
import functools
import json
import re
import secrets
import time
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer

from transom._deprecation import renamed_names
from transom.params import Depends
from transom.requests import Request
from transom.security._context import (
    RequestContext,
    StoreUnavailable,
    get_context,
    security_logger,
    unavailable_error,
)

__all__ = [
    "MemorySessionBackend",
    "SessionBackend",
    "SessionConfig",
    "SessionData",
    "SessionDataDep",
    "SignedCookieBackend",
    "end_session",
    "get_session_data",
    "start_session",
]

#: Session keys the battery itself uses (underscore-prefixed so they don't collide with yours).
AUTH_USER_KEY = "_auth_user_id"
CSRF_KEY = "_csrf"
_KEY_RE = re.compile(r"[A-Za-z0-9_-]{43}")
# Browsers silently drop cookies over 4096 bytes (name, value and attributes together).
_MAX_COOKIE = 4093


class SessionBackend(abc.ABC):
    """Where server-side sessions live. Records are JSON-able dicts; keys are random strings.

    When the store can't be reached, methods raise
    :class:`~transom.security.StoreUnavailable`: the request then gets a 503 with
    ``Retry-After`` and one warning is logged. Any other exception is a bug (500, traceback).
    """

    #: ``True`` only for :class:`SignedCookieBackend`, whose data travels in the cookie itself.
    in_cookie: bool = False

    @abc.abstractmethod
    async def load(self, key: str) -> dict[str, Any] | None:
        """Return the record saved under ``key``, or ``None`` when there is none (or it expired)."""

    @abc.abstractmethod
    async def save(self, key: str, record: dict[str, Any], ttl: int) -> None:
        """Store ``record`` under ``key`` for ``ttl`` seconds (replacing any previous record)."""

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Forget ``key`` (no error when it does not exist)."""

    async def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release connections; called when the app shuts down."""


class SignedCookieBackend(SessionBackend):
    """The default: the whole session, as signed (not encrypted) JSON, in the cookie.

    The user can read what you store (base64), but cannot change it. Keep it small (4 KB).
    """

    in_cookie = True

    async def load(self, key: str) -> dict[str, Any] | None:  # pragma: no cover - never called
        raise NotImplementedError

    async def save(self, key: str, record: dict[str, Any], ttl: int) -> None:  # pragma: no cover
        raise NotImplementedError

    async def delete(self, key: str) -> None:
        return None


class MemorySessionBackend(SessionBackend):
    """Server-side sessions in this process's memory: for tests and single-process development."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = asyncio.Lock()

    async def load(self, key: str) -> dict[str, Any] | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[0] < time.time():
            self._data.pop(key, None)
            return None
        return dict(item[1])

    async def save(self, key: str, record: dict[str, Any], ttl: int) -> None:
        async with self._lock:
            self._data[key] = (time.time() + ttl, dict(record))

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)


@dataclasses.dataclass
class SessionConfig:
    """Session settings. Every field has a safe default.

    Attributes:
        backend: Where data lives; ``None`` means :class:`SignedCookieBackend`.
        cookie_name: Base cookie name; over HTTPS it becomes ``__Host-<name>``.
        idle_timeout: Seconds without a request after which the session is gone.
        absolute_timeout: Seconds after creation after which the session is gone regardless.
        refresh_after: A session used after this many seconds is re-saved, extending the idle
            expiry (so reads do not rewrite the cookie on every request).
        same_site: The ``SameSite`` attribute.
        secure: ``None``: ``Secure`` when the request is HTTPS; ``True``: always.
        http_only: Hide the cookie from JavaScript.
        domain: Share the cookie with subdomains (disables the ``__Host-`` prefix).
        host_prefix: Use ``__Host-`` (or ``__Secure-`` with ``domain``) over HTTPS.
    """

    backend: SessionBackend | None = None
    cookie_name: str = "session"
    idle_timeout: int = 24 * 3600
    absolute_timeout: int = 14 * 24 * 3600
    refresh_after: int = 60
    same_site: Literal["lax", "strict", "none"] = "lax"
    secure: bool | None = None
    http_only: bool = True
    domain: str | None = None
    host_prefix: bool = True

    def __post_init__(self) -> None:
        if self.backend is None:
            self.backend = SignedCookieBackend()
        if self.same_site == "none" and self.secure is False:
            raise ValueError("SameSite=None cookies must be Secure")
        if self.idle_timeout <= 0 or self.absolute_timeout <= 0:
            raise ValueError("session timeouts must be positive")


class SessionData(MutableMapping[str, Any]):
    """The current user's session: a dict of JSON-serializable values.

    Changes are saved when the response starts (never on a 5xx). Call :meth:`cycle_key` when
    the user logs in or gains privileges, :meth:`flush` when they log out.
    """

    __slots__ = ("_data", "_key", "_retired", "accessed", "created", "modified", "new")

    def __init__(
        self, data: dict[str, Any], *, key: str, created: float, new: bool = False
    ) -> None:
        self._data = data
        self._key = key
        self.created = created
        self.new = new
        self.modified = False
        self.accessed = False
        #: Keys given up by cycle_key()/flush(), deleted from the store when the response starts.
        self._retired: list[str] = []

    @property
    def key(self) -> str:
        """The session key (changes after :meth:`cycle_key`)."""
        return self._key

    def __getitem__(self, name: str) -> Any:
        self.accessed = True
        return self._data[name]

    def __setitem__(self, name: str, value: Any) -> None:
        # Fail here, at the faulty line, rather than when the response is being sent.
        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"session[{name!r}] must be JSON-serializable: {exc}") from None
        self.accessed = self.modified = True
        self._data[name] = value

    def __delitem__(self, name: str) -> None:
        self.accessed = self.modified = True
        del self._data[name]

    def __iter__(self) -> Iterator[str]:
        self.accessed = True
        return iter(self._data)

    def __len__(self) -> int:
        self.accessed = True
        return len(self._data)

    def __contains__(self, name: object) -> bool:
        self.accessed = True
        return name in self._data

    def cycle_key(self) -> None:
        """Keep the data under a new key: call it on login and privilege change (fixation)."""
        if not self.new:
            self._retired.append(self._key)
        self._key = new_session_key()
        self.modified = True

    def flush(self) -> None:
        """Remove all data and the key (logout): the old key can never be used again."""
        self._data.clear()
        self.cycle_key()
        self.created = time.time()

    def to_dict(self) -> dict[str, Any]:
        """A copy of the data."""
        self.accessed = True
        return dict(self._data)

    def __repr__(self) -> str:
        return f"<SessionData key={self._key[:6]}… {len(self._data)} items>"


def new_session_key() -> str:
    """A fresh random session key (256 bits)."""
    return secrets.token_urlsafe(32)


def cookie_name(config: SessionConfig, secure: bool) -> str:
    """The session cookie name for this scheme (``__Host-`` prefixed over HTTPS)."""
    if secure and config.host_prefix and config.secure is not False:
        return ("__Secure-" if config.domain else "__Host-") + config.cookie_name
    return config.cookie_name


def build_cookie(
    name: str,
    value: str,
    *,
    max_age: int,
    secure: bool,
    http_only: bool,
    same_site: str | None,
    domain: str | None = None,
) -> str:
    """One ``Set-Cookie`` value; the values we sign are URL-safe, so no quoting is needed."""
    parts = [f"{name}={value}", "Path=/", f"Max-Age={max_age}"]
    if max_age == 0:
        parts.append("Expires=Thu, 01 Jan 1970 00:00:00 GMT")
    if domain:
        parts.append(f"Domain={domain}")
    if secure:
        parts.append("Secure")
    if http_only:
        parts.append("HttpOnly")
    if same_site:
        parts.append(f"SameSite={same_site.capitalize()}")
    return "; ".join(parts)


@functools.lru_cache(maxsize=32)
def _serializer(keys: tuple[str, ...], kind: str) -> URLSafeTimedSerializer:
    # itsdangerous signs with the last key and verifies with all of them (rotation).
    return URLSafeTimedSerializer(list(keys), salt=f"transom.session.{kind}")


def _fresh() -> SessionData:
    return SessionData({}, key=new_session_key(), created=time.time(), new=True)


async def load_session(ctx: RequestContext) -> SessionData:
    """Load (once) the session of the request behind ``ctx``; never raises for bad cookies."""
    if ctx.session is not None:
        return ctx.session
    security = ctx.security
    config = security.sessions
    if config is None:
        raise RuntimeError("sessions are disabled for this app (SecurityConfig(sessions=None))")
    assert config.backend is not None
    raw = ctx.get_cookie(cookie_name(config, ctx.is_secure))
    session: SessionData | None = None
    if raw and ctx.csrf_deferred is not None:
        from transom.security.csrf import verify_deferred

        await verify_deferred(ctx)
    if raw:
        try:
            session = await _from_cookie(ctx, config, config.backend, raw)
        except StoreUnavailable as exc:
            # Fail closed: treating the user as logged out would lose their data (a fresh
            # session would replace theirs), and CSRF checks need the stored secret.
            raise unavailable_error(exc, "Session storage") from exc
        if session is None:
            ctx.session_drop_cookie = True
    if session is None:
        session = _fresh()
    ctx.session = session
    return session


async def _from_cookie(
    ctx: RequestContext, config: SessionConfig, backend: SessionBackend, raw: str
) -> SessionData | None:
    kind = "cookie" if backend.in_cookie else "key"
    try:
        payload, signed_at = _serializer(ctx.security.secret_keys(), kind).loads(
            raw, max_age=config.idle_timeout, return_timestamp=True
        )
    except SignatureExpired:
        security_logger.info("Session cookie expired (idle timeout); starting a new session")
        return None
    except BadData:
        security_logger.warning(
            "Dropped a tampered or malformed session cookie from %s", _peer(ctx)
        )
        return None
    now = time.time()
    ctx.session_signed_at = signed_at.timestamp()
    if backend.in_cookie:
        record = payload
        if not isinstance(record, dict) or not _KEY_RE.fullmatch(str(record.get("i", ""))):
            security_logger.warning("Dropped a session cookie with an unexpected payload")
            return None
        key = str(record["i"])
    else:
        if not isinstance(payload, str) or not _KEY_RE.fullmatch(payload):
            security_logger.warning("Dropped a session cookie with an unexpected payload")
            return None
        key = payload
        record = await backend.load(key)
        if record is None:
            # A validly signed key the store does not know (expired, logged out, or planted):
            # never adopt it; the caller issues a brand-new key.
            security_logger.info("Session key not found in the store; issuing a new one")
            return None
        if now - float(record.get("a", 0)) > config.idle_timeout:
            await backend.delete(key)
            return None
    created = float(record.get("c", 0))
    data = record.get("d")
    if not isinstance(data, dict) or now - created > config.absolute_timeout:
        security_logger.info("Session reached its absolute lifetime; starting a new session")
        if not backend.in_cookie:
            await backend.delete(key)
        return None
    return SessionData(data, key=key, created=created)


def _peer(ctx: RequestContext) -> str:
    client = ctx.scope.get("client")
    return str(client[0]) if client else "unknown client"


async def commit_session(ctx: RequestContext, status: int) -> None:
    """Save the session and queue its ``Set-Cookie`` (called when the response starts)."""
    config = ctx.security.sessions
    session = ctx.session
    if config is None or status >= 500:
        return  # a failed request never writes the session
    assert config.backend is not None
    backend = config.backend
    secure = ctx.is_secure or config.secure is True
    name = cookie_name(config, ctx.is_secure)

    def cookie(value: str, max_age: int) -> str:
        return build_cookie(
            name,
            value,
            max_age=max_age,
            secure=secure,
            http_only=config.http_only,
            same_site=config.same_site,
            domain=config.domain,
        )

    if session is None:
        return
    had_cookie = not session.new
    if not backend.in_cookie:
        for retired in session._retired:
            await backend.delete(retired)
    session._retired.clear()
    if not session._data:
        if had_cookie and not backend.in_cookie:
            await backend.delete(session.key)
        if had_cookie or ctx.session_drop_cookie:
            ctx.set_cookies.append(cookie("", 0))
        return
    now = time.time()
    stale = now - ctx.session_signed_at > config.refresh_after
    if not (session.modified or session.new or (session.accessed and stale)):
        return
    remaining = int(config.absolute_timeout - (now - session.created))
    max_age = max(1, min(config.idle_timeout, remaining))
    record = {"c": session.created, "a": now, "d": session._data}
    keys = ctx.security.secret_keys()
    try:
        if backend.in_cookie:
            record["i"] = session.key
            value = _serializer(keys, "cookie").dumps(record)
        else:
            json.dumps(session._data)  # same rules for every backend
            await backend.save(session.key, record, max_age)
            value = _serializer(keys, "key").dumps(session.key)
    except (TypeError, ValueError):
        # A nested value mutated in place into something JSON can't hold: keep the response.
        security_logger.exception("Session not saved: its data is not JSON-serializable")
        return
    header = cookie(str(value), max_age)
    if len(header) > _MAX_COOKIE:
        security_logger.error(
            "Session cookie is %d bytes, over the 4 KB browsers keep; store less in the session "
            "or use a server-side backend",
            len(header),
        )
    ctx.set_cookies.append(header)


async def get_session_data(request: Request) -> SessionData:
    """Dependency: the session of this request (loaded on first use)."""
    return await load_session(get_context(request))


#: Inject the session: ``async def handler(session: SessionDataDep): session["cart"] = [...]``.
SessionDataDep = Annotated[SessionData, Depends(get_session_data)]


async def start_session(request: Request, user_id: str | int) -> SessionData:
    """Start a session for ``user_id``: a new session key (fixation) and CSRF secret, the id.

    The session step of a login, for a user system of your own. With :mod:`transom.auth`
    call :func:`transom.auth.login` instead: it calls this and also stores the password
    fingerprint that ends the session when the password changes (without it
    ``transom.auth`` treats the session as logged out).

    Data of an anonymous session (a cart, say) is kept; a session that belonged to another
    user is emptied first.

    Args:
        request: The current request.
        user_id: What identifies the user; read it back with ``session["_auth_user_id"]``.

    Returns:
        The session, already holding the user id.
    """
    from transom.security.csrf import rotate_csrf_secret

    session = await get_session_data(request)
    previous = session.get(AUTH_USER_KEY)
    if previous is not None and previous != str(user_id):
        # Another user's session (shared computer, or planted by an attacker): start empty.
        session.flush()
    else:
        session.cycle_key()
    session[AUTH_USER_KEY] = str(user_id)
    await rotate_csrf_secret(request)
    return session


async def end_session(request: Request) -> None:
    """Forget everything in the session and its key (with :mod:`transom.auth`, call
    :func:`transom.auth.logout`, which also ends "remember me" and revokes the session)."""
    session = await get_session_data(request)
    session.flush()


if TYPE_CHECKING:
    # The old names, still accepted by type checkers while they are deprecated.
    Sess = SessionDataDep
    login = start_session
    logout = end_session

# Also served by transom.security. `login`/`logout` were a second login next to
# transom.auth's (which adds the password fingerprint): the names now say what they do.
RENAMES = {"Sess": "SessionDataDep", "login": "start_session", "logout": "end_session"}
RENAME_HINTS = {
    "login": "to log a user of transom.auth in, call transom.auth.login(request, user)",
    "logout": "with transom.auth, call transom.auth.logout(request)",
}
# Runtime only: a module __getattr__ seen by type checkers would make them accept any name.
if not TYPE_CHECKING:
    __getattr__ = renamed_names(__name__, globals(), RENAMES, hints=RENAME_HINTS)
