"""Who is making this request: sessions and "remember me" for browsers, tokens for APIs.

``login()`` starts a new session (new key, new CSRF secret) holding the user id and a keyed
fingerprint of the password hash, so changing the password ends every other session.
``logout()`` empties the session and, for signed-cookie sessions, records the session id as
ended so a copy of the old cookie is refused.

A request with an ``Authorization`` header that isn't ``Basic``/``Digest`` (those browsers
send by themselves) is exempt from CSRF checks, so it is never authenticated by its cookies:
its token is the only credential considered.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar
from urllib.parse import quote

from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select

from transom._concurrency import run_sync
from transom.auth.extension import Auth, get_auth
from transom.auth.jwt import JWTError
from transom.auth.models import AbstractUser, RevokedToken
from transom.auth.tokens import authenticate_api_token, fingerprint, fingerprint_matches
from transom.db import DbSession, DbSessionDep, get_database
from transom.exceptions import HTTPException
from transom.openapi import ResponseSpec, declare_responses, error_response
from transom.params import Depends
from transom.requests import Request
from transom.routing import Router
from transom.security._context import RequestContext, context_of
from transom.security.csrf import AMBIENT_AUTH_SCHEMES
from transom.security.logins import check_credentials
from transom.security.sessions import (
    AUTH_USER_KEY,
    build_cookie,
    end_session,
    get_session_data,
    start_session,
)

__all__ = [
    "CurrentUser",
    "OptionalUser",
    "authenticate",
    "get_current_user",
    "login",
    "login_required",
    "logout",
    "require_perm",
    "require_user",
    "requires",
    "template_context",
    "update_session_auth",
]

T = TypeVar("T")
USER_SCOPE_KEY = "transom.auth.user"
HASH_KEY = "_auth_hash"
SID_KEY = "_auth_sid"
REMEMBER_COOKIE = "remember_token"


# -- credentials --------------------------------------------------------------------------------


async def authenticate(request: Request, db: DbSession, username: str, password: str) -> Any:
    """The active user with these credentials, or ``None``.

    The login path of the site, ``/auth/token`` and the admin
    (:func:`transom.security.logins.check_credentials`): attempts are rate-limited per client
    address, per account and address, and per account (429 past a limit); an unknown name
    costs the same hashing time as a wrong password; hashing runs in the thread pool.
    """
    auth = get_auth(request.app)
    model = auth.user_model
    column = getattr(model, model.USERNAME_FIELD)

    async def find(name: str) -> Any:
        return (await db.execute(select(model).where(column == name))).scalar()

    async def dummy(raw: str) -> None:
        await run_sync(auth.hashers.run_dummy, raw)

    return await check_credentials(
        request, username, password, limits=auth.login_limits, find=find, dummy=dummy
    )


def session_hash(auth: Auth, user: Any) -> str:
    """Keyed fingerprint of the password hash: sessions end when the password changes."""
    return fingerprint(auth.secret_keys()[-1], "session", user.id, user.password)


# -- login / logout -----------------------------------------------------------------------------


def _ctx(request: Request) -> RequestContext | None:
    return context_of(request)


def _cookie_name(request: Request) -> str:
    return ("__Host-" if request.is_secure else "") + REMEMBER_COOKIE


def _remember_serializer(auth: Auth) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(list(auth.secret_keys()), salt="transom.auth.remember")


def _set_cookie(request: Request, value: str, max_age: int) -> None:
    ctx = _ctx(request)
    if ctx is None:
        return
    ctx.set_cookies.append(
        build_cookie(
            _cookie_name(request),
            value,
            max_age=max_age,
            secure=request.is_secure,
            http_only=True,
            same_site="lax",
        )
    )


async def login(request: Request, user: Any, *, remember: bool = False) -> None:
    """Log ``user`` in: a new session key and CSRF secret, and ``last_login`` updated.

    Args:
        request: The current request.
        user: The authenticated user.
        remember: Also set a long-lived "remember me" cookie that logs them in again after
            the session has expired.
    """
    auth = get_auth(request.app)
    session = await start_session(request, user.id)
    session[HASH_KEY] = session_hash(auth, user)
    session[SID_KEY] = secrets.token_urlsafe(16)
    user.last_login = dt.datetime.now(dt.UTC)
    request.scope[USER_SCOPE_KEY] = user
    if remember and auth.remember_days > 0:
        rid = secrets.token_urlsafe(12)
        payload = [
            str(user.id),
            fingerprint(auth.secret_keys()[-1], "remember", user.password),
            rid,
        ]
        value = str(_remember_serializer(auth).dumps(payload))
        _set_cookie(request, value, auth.remember_days * 86400)


async def update_session_auth(request: Request, user: Any) -> None:
    """After ``user`` changed their password: a new session for them, all others end."""
    await login(request, user)


async def _revoke(db: DbSession | None, request: Request, token_id: str, ttl: float) -> None:
    from transom.auth.jwt import PURGE_EVERY, purge_expired

    async def record(session: DbSession) -> None:
        await session.merge(RevokedToken(id=token_id[:64], expires_at=time.time() + ttl))
        if random.randrange(PURGE_EVERY) == 0:
            await purge_expired(session)

    if db is not None:
        await record(db)
        return
    async with get_database(request.app).session() as own:
        await record(own)
        await own.commit()


async def logout(request: Request, db: DbSession | None = None) -> None:
    """End the login: the session is emptied and its key retired, "remember me" forgotten.

    With signed-cookie sessions (whose data lives in the browser) the session id is also
    recorded as ended, so replaying a copy of the old cookie does not log anyone in.
    """
    auth = get_auth(request.app)
    session = await get_session_data(request)
    ctx = _ctx(request)
    sid = session.get(SID_KEY)
    if sid and ctx is not None and ctx.security.sessions is not None:
        config = ctx.security.sessions
        if config.backend is not None and config.backend.in_cookie:
            await _revoke(db, request, f"s:{sid}", config.absolute_timeout)
    remembered = _read_remember(request, auth)
    if remembered is not None:
        await _revoke(db, request, f"r:{remembered[2]}", auth.remember_days * 86400)
    if request.cookies.get(_cookie_name(request)):
        _set_cookie(request, "", 0)
    await end_session(request)
    request.scope[USER_SCOPE_KEY] = None


# -- who is this? ---------------------------------------------------------------------------------


async def _load(db: DbSession, model: type[Any], raw: Any) -> Any:
    pk = sa_inspect(model).primary_key[0]
    try:
        value = pk.type.python_type(raw)
    except (ValueError, TypeError, NotImplementedError):
        return None
    return await db.get(model, value)


async def _is_revoked(db: DbSession, token_id: str) -> bool:
    found = await db.execute(
        select(RevokedToken.id).where(
            RevokedToken.id == token_id, RevokedToken.expires_at > time.time()
        )
    )
    return found.first() is not None


def _unauthorized(scheme: str, message: str) -> HTTPException:
    return HTTPException(
        401,
        message,
        headers={"WWW-Authenticate": f'{scheme} error="invalid_token"'},
    )


async def _from_token(
    request: Request, db: DbSession, auth: Auth, scheme: str, kind: str, credentials: str
) -> Any:
    if kind == "jwt":
        try:
            claims = auth.jwt.decode(credentials)
        except JWTError as exc:
            raise _unauthorized(scheme, f"Invalid token: {exc}") from None
        if auth.jwt.config.check_revoked and await auth.jwt.is_revoked(db, claims):
            raise _unauthorized(scheme, "Invalid token: revoked")
        request.scope["transom.auth.claims"] = claims
        user = await _load(db, auth.user_model, claims["sub"])
    else:
        row = await authenticate_api_token(db, credentials)
        user = await _load(db, auth.user_model, row.user_id) if row is not None else None
    if user is None or not user.is_active:
        raise _unauthorized(scheme, "Invalid token")
    return user


def _read_remember(request: Request, auth: Auth) -> list[str] | None:
    raw = request.cookies.get(_cookie_name(request))
    if not raw or auth.remember_days <= 0:
        return None
    try:
        data = _remember_serializer(auth).loads(raw, max_age=auth.remember_days * 86400)
    except BadData:
        return None
    if isinstance(data, list) and len(data) == 3 and all(isinstance(x, str) for x in data):
        return data
    return None


async def _from_remember(request: Request, db: DbSession, auth: Auth) -> Any:
    data = _read_remember(request, auth)
    if data is None:
        return None
    user = await _load(db, auth.user_model, data[0])
    if (
        user is None
        or not user.is_active
        or not fingerprint_matches(auth.secret_keys(), data[1], "remember", user.password)
        or await _is_revoked(db, f"r:{data[2]}")
    ):
        _set_cookie(request, "", 0)
        return None
    await login(request, user)
    return user


async def _resolve(request: Request, db: DbSession) -> Any:
    auth = get_auth(request.app)
    header = request.headers.get("authorization")
    if header:
        scheme, _, credentials = str(header).strip().partition(" ")
        kind = auth.token_schemes.get(scheme.lower())
        if kind is not None:
            return await _from_token(request, db, auth, scheme, kind, credentials.strip())
        if scheme.lower() not in AMBIENT_AUTH_SCHEMES:
            return None  # CSRF-exempt request: cookies must not authenticate it
    ctx = _ctx(request)
    if ctx is None or ctx.security.sessions is None:
        return None
    session = await get_session_data(request)
    raw = session.get(AUTH_USER_KEY)
    if raw is None:
        return await _from_remember(request, db, auth)
    user = await _load(db, auth.user_model, raw)
    valid = (
        user is not None
        and user.is_active
        and fingerprint_matches(
            auth.secret_keys(), str(session.get(HASH_KEY, "")), "session", user.id, user.password
        )
    )
    backend = ctx.security.sessions.backend
    if valid and backend is not None and backend.in_cookie:
        valid = not await _is_revoked(db, f"s:{session.get(SID_KEY, '')}")
    if not valid:
        session.flush()
        return None
    return user


async def get_current_user(request: Request, db: DbSessionDep) -> Any:
    """Dependency: the authenticated user, or ``None`` (loaded once per request)."""
    if USER_SCOPE_KEY not in request.scope:
        request.scope[USER_SCOPE_KEY] = await _resolve(request, db)
    return request.scope[USER_SCOPE_KEY]


def _login_needed(request: Request) -> HTTPException:
    auth = get_auth(request.app)
    wants_html = "text/html" in str(request.headers.get("accept", ""))
    login_url = auth.login_url or (auth.url("login") if auth.prefix is not None else None)
    if wants_html and not request.headers.get("authorization") and login_url:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        location = f"{login_url}?next={quote(target, safe='')}"
        return HTTPException(303, "Login required", headers={"Location": location})
    scheme = next(iter(auth.token_schemes), "bearer").capitalize()
    return HTTPException(401, "Not authenticated", headers={"WWW-Authenticate": scheme})


# What these dependencies answer, in /openapi.json (browsers get the login redirect instead).
_NOT_AUTHENTICATED: dict[int, ResponseSpec] = {
    401: {
        **error_response("Not authenticated: log in, or send a token"),
        "headers": {
            "WWW-Authenticate": {
                "description": "The token scheme to use",
                "schema": {"type": "string"},
            }
        },
    }
}
_NOT_PERMITTED: dict[int, ResponseSpec] = {403: "Permission denied"}


@declare_responses(_NOT_AUTHENTICATED)
async def require_user(request: Request, db: DbSessionDep) -> Any:
    """Dependency: the authenticated user; browsers are sent to the login page, APIs get 401."""
    user = await get_current_user(request, db)
    if user is None:
        raise _login_needed(request)
    return user


if TYPE_CHECKING:
    from transom.auth.user import User as _User
else:
    # Importing the built-in model would map it (and its tables) in projects that replace it;
    # the dependency returns whichever model ``AuthConfig.user_model`` names.
    _User = AbstractUser

#: The logged-in user (login required): ``async def page(user: CurrentUser): ...``.
CurrentUser = Annotated[_User, Depends(require_user)]
#: The logged-in user or ``None``.
OptionalUser = Annotated[_User | None, Depends(get_current_user)]


def _attach(target: T, guard: Callable[..., Any]) -> T:
    if isinstance(target, Router):
        target.dependencies.append(Depends(guard))
        return target
    if not callable(target):
        raise TypeError("decorate a handler function or a Router")
    guards = [*getattr(target, "__transom_dependencies__", ()), Depends(guard)]
    setattr(target, "__transom_dependencies__", guards)  # noqa: B010
    return target


def login_required(target: T) -> T:
    """Require a logged-in user for a handler or every route of a router.

    Example:
        >>> @login_required  # doctest: +SKIP
        ... @app.get("/account")
        ... async def account(user: CurrentUser): ...
    """

    @declare_responses(_NOT_AUTHENTICATED)
    async def guard(request: Request, db: DbSessionDep) -> None:
        await require_user(request, db)

    return _attach(target, guard)


async def require_perm(request: Request, db: DbSession, perm: str, obj: Any = None) -> Any:
    """Raise unless the current user holds ``perm`` (for ``obj``); returns the user.

    Anonymous users get the login redirect (or 401), others without the permission a 403.
    """
    user = await get_current_user(request, db)
    if user is None:
        raise _login_needed(request)
    if not await user.has_perm(perm, db, obj):
        raise HTTPException(403, f"Permission denied: {perm}")
    return user


def requires(*perms: str) -> Callable[[T], T]:
    """Require every permission in ``perms`` on a handler or router.

    Example:
        >>> @requires("blog.change_article")  # doctest: +SKIP
        ... @app.post("/articles/{id}")
        ... async def edit(id: int): ...
    """

    def decorate(target: T) -> T:
        @declare_responses({**_NOT_AUTHENTICATED, **_NOT_PERMITTED})
        async def guard(request: Request, db: DbSessionDep) -> None:
            for perm in perms:
                await require_perm(request, db, perm)

        return _attach(target, guard)

    return decorate


# -- templates ------------------------------------------------------------------------------------


def template_context(request: Request) -> dict[str, Any]:
    """``current_user()`` and ``has_perm(perm, obj=None)`` for templates (awaited by Jinja)."""

    async def current_user() -> Any:
        if USER_SCOPE_KEY in request.scope:
            return request.scope[USER_SCOPE_KEY]
        async with get_database(request.app).session() as db:
            user = await get_current_user(request, db)
            await db.commit()
        return user

    async def has_perm(perm: str, obj: Any = None) -> bool:
        user = await current_user()
        if user is None:
            return False
        async with get_database(request.app).session() as db:
            return bool(await user.has_perm(perm, db, obj))

    return {"current_user": current_user, "has_perm": has_perm}
