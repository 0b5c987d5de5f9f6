"""How the admin asks "who is this, and what may they do?".

The admin talks to authentication through :class:`AuthBackend`, a small protocol: load the
current user, check a password, log in and out, and check a permission codename. The default
backend adapts :mod:`transom.auth` when it is installed; :class:`SessionAuth` works with any
user model that has the usual attributes, which keeps the admin usable (and testable) with a
project's own user table.

A user the admin lets in has ``is_active`` and ``is_staff`` true. ``is_superuser`` may do
everything; anyone else needs the model permission (``view``, ``add``, ``change``, ``delete``)
for each model, checked on the server for every request.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib
import inspect
import secrets
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select

from transom._concurrency import run_sync
from transom.requests import Request
from transom.security.logins import LoginLimits, check_credentials, check_password

if TYPE_CHECKING:
    from transom.db import DbSession

__all__ = ["ACTIONS", "AdminUser", "AuthBackend", "SessionAuth", "default_backend"]

#: The four model permissions, in the order the UI shows them.
ACTIONS = ("view", "add", "change", "delete")
_USER_KEY = "transom.admin.user"


@runtime_checkable
class AdminUser(Protocol):
    """What the admin needs from a user object."""

    is_active: bool
    is_staff: bool
    is_superuser: bool


class AuthBackend:
    """Authentication and authorisation as the admin sees them.

    Subclass it to plug in another user system; every method has a sensible default except
    :meth:`current_user`, :meth:`authenticate`, :meth:`login` and :meth:`logout`.
    """

    #: The user model, registered in the admin (with a password form) when set.
    user_model: type[Any] | None = None
    #: The group model, registered in the admin when set.
    group_model: type[Any] | None = None
    #: Name of the attribute holding the password hash (never shown or edited directly).
    password_field: str = "password"
    #: Name of the attribute users log in with.
    username_field: str = "username"

    async def current_user(self, request: Request, db: DbSession) -> Any | None:
        """The logged-in user of ``request``, or ``None``."""
        raise NotImplementedError

    async def authenticate(
        self, request: Request, db: DbSession, username: str, password: str
    ) -> Any | None:
        """The user with these credentials, or ``None``."""
        raise NotImplementedError

    async def login(self, request: Request, user: Any) -> None:
        """Remember ``user`` in the session (rotating the session key and CSRF secret)."""
        raise NotImplementedError

    async def logout(self, request: Request) -> None:
        """Forget the logged-in user."""
        raise NotImplementedError

    def codename(self, app_label: str, model_name: str, action: str) -> str:
        """The permission codename for ``action`` on a model: ``"blog.change_article"``."""
        return f"{app_label}.{action}_{model_name}"

    async def has_perm(self, request: Request, db: DbSession, user: Any, codename: str) -> bool:
        """Whether ``user`` holds the permission; superusers hold them all."""
        if not getattr(user, "is_active", False):
            return False
        if getattr(user, "is_superuser", False):
            return True
        check = getattr(user, "has_perm", None)
        if check is None:
            return False
        result = check(codename, db) if _takes_db(check) else check(codename)
        if inspect.isawaitable(result):
            result = await result
        return bool(result)

    def user_id(self, user: Any) -> str:
        """A stable string id of ``user`` (what history records)."""
        identity = sa_inspect(user).identity
        return ",".join(str(v) for v in identity) if identity else str(id(user))

    def set_password(self, user: Any, raw: str) -> None:
        """Hash ``raw`` onto ``user`` (through ``user.set_password``); blocks while hashing."""
        user.set_password(raw)

    async def aset_password(self, user: Any, raw: str) -> None:
        """:meth:`set_password` in the thread pool: hashing would stall the event loop.

        An ``async def set_password`` on the user is awaited as it is.
        """
        method = getattr(user, "set_password", None)
        if inspect.iscoroutinefunction(method):
            await method(raw)
            return
        await run_sync(self.set_password, user, raw)

    def validate_password(self, raw: str, user: Any | None = None) -> list[str]:
        """Problems with a new password (empty when it is acceptable)."""
        return [] if len(raw) >= 8 else ["The password must be at least 8 characters long."]

    def password_rules(self) -> list[str]:
        """What a new password must be, shown before the user types one."""
        return ["At least 8 characters."]


def _takes_db(check: Any) -> bool:
    """Whether ``has_perm`` takes ``(codename, db)`` (transom.auth) or just ``(codename)``."""
    method = getattr(check, "__func__", None)
    if method is None:
        return len(inspect.signature(check).parameters) >= 2
    return _method_takes_db(method)


@functools.cache
def _method_takes_db(method: Any) -> bool:
    # Asked once per user class, not on every permission check; ``self`` counts here.
    return len(inspect.signature(method).parameters) >= 3


async def cached_user(backend: AuthBackend, request: Request, db: DbSession) -> Any | None:
    """The current user, loaded once per request."""
    if _USER_KEY not in request.scope:
        request.scope[_USER_KEY] = await backend.current_user(request, db)
    return request.scope[_USER_KEY]


class SessionAuth(AuthBackend):
    """Users from a model of the project's, remembered in the security battery's session.

    The model needs ``is_active``, ``is_staff``, ``is_superuser``, a username attribute,
    ``check_password(raw)`` and ``set_password(raw)`` (sync or async), and optionally
    ``has_perm(codename)``.

    Args:
        user_model: The mapped user class.
        username_field: The attribute users log in with.
        password_field: The attribute holding the hash (hidden from every form).
        group_model: A group model to manage in the admin too.
        login_limits: Login attempt budgets (default: those of :mod:`transom.auth`).
    """

    def __init__(
        self,
        user_model: type[Any],
        *,
        username_field: str = "username",
        password_field: str = "password",
        group_model: type[Any] | None = None,
        login_limits: LoginLimits | None = None,
    ) -> None:
        self.user_model = user_model
        self._model: type[Any] = user_model
        self.username_field = username_field
        self.password_field = password_field
        self.group_model = group_model
        self.login_limits = login_limits or LoginLimits()
        self._dummy: Any = None

    async def current_user(self, request: Request, db: DbSession) -> Any | None:
        from transom.security import get_session_data

        session = await get_session_data(request)
        raw = session.get("_auth_user_id")
        if raw is None:
            return None
        pk = sa_inspect(self._model).primary_key[0]
        try:
            value = pk.type.python_type(raw)
        except (ValueError, TypeError, NotImplementedError):
            value = raw
        return await db.get(self._model, value)

    async def authenticate(
        self, request: Request, db: DbSession, username: str, password: str
    ) -> Any | None:
        """The active user with these credentials, or ``None``, through the site's login path.

        :func:`transom.security.logins.check_credentials`: rate limits (:attr:`login_limits`,
        counted in the same budgets as the site's login), a password check against a
        throw-away hash for unknown names (:meth:`dummy_check`), hashing in the thread pool.
        """
        column = getattr(self._model, self.username_field)

        async def find(name: str) -> Any:
            return (await db.execute(select(self._model).where(column == name))).scalar()

        return await check_credentials(
            request,
            username,
            password,
            limits=self.login_limits,
            find=find,
            dummy=self.dummy_check,
        )

    async def dummy_check(self, password: str) -> None:
        """Check ``password`` against a throw-away user's hash: as slow as a real check.

        An unknown login name then takes as long to refuse as a wrong password. The user is
        an unsaved instance of the model with a random password, made on first use.
        """
        if self._dummy is None:
            dummy = self._model()
            await self.aset_password(dummy, secrets.token_urlsafe(16))
            self._dummy = dummy
        await check_password(self._dummy, password)

    async def login(self, request: Request, user: Any) -> None:
        from transom.security import start_session

        await start_session(request, self.user_id(user))
        if hasattr(user, "last_login"):
            # As transom.auth's login does; the admin's login view commits it.
            user.last_login = dt.datetime.now(dt.UTC)

    async def logout(self, request: Request) -> None:
        from transom.security import end_session

        await end_session(request)


def default_backend() -> AuthBackend | None:
    """The backend for :mod:`transom.auth` when that battery is installed, else ``None``."""
    try:
        importlib.import_module("transom.auth")
    except ImportError:
        return None
    adapter = importlib.import_module("transom.admin._transom_auth")
    backend: AuthBackend = adapter.TransomAuth()
    return backend
