"""The admin's backend for :mod:`transom.auth` (used when that battery is installed).

It relies on what any user system built on :mod:`transom.security` shares: the session holds
the user id under ``_auth_user_id`` (set by :func:`transom.security.start_session`), and the user
model has ``is_active``, ``is_staff``, ``is_superuser``, ``check_password``, ``set_password``
and ``has_perm``. Module-level helpers of ``transom.auth`` (``authenticate``, ``login``,
``logout``, ``has_perm``) are preferred when they exist.
"""

from __future__ import annotations

import importlib
import inspect
from typing import TYPE_CHECKING, Any

from transom.admin.auth import SessionAuth
from transom.auth.extension import Auth
from transom.requests import Request

if TYPE_CHECKING:
    from transom.db import DbSession

__all__ = ["TransomAuth"]


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class TransomAuth(SessionAuth):
    """Users, groups and permissions of :mod:`transom.auth`."""

    def __init__(self) -> None:
        self.module: Any = importlib.import_module("transom.auth")
        # The user model is the Auth battery's (``AuthConfig.user_model``), known once the app
        # is built: importing the built-in one here would map it in projects that replace it.
        # Until then the unmapped AbstractUser stands in: any use of it fails loudly.
        super().__init__(self.module.AbstractUser, group_model=getattr(self.module, "Group", None))
        self.user_model = None
        self.validators: Any = None

    def use_user_model(self, user_model: type[Any], validators: Any = None) -> None:
        """Serve ``user_model``, the app's ``Auth`` battery's (called by the admin site), and
        check new passwords with its ``validators``, as the site's forms do."""
        self.validators = validators
        self.user_model = user_model
        self._model = user_model
        self.username_field = getattr(user_model, "USERNAME_FIELD", "username")
        self.password_field = getattr(user_model, "PASSWORD_FIELD", "password")

    def validate_password(self, raw: str, user: Any | None = None) -> list[str]:
        """The site's password rules (``AuthConfig.validators``): the admin sets no password
        the site's own forms would refuse."""
        return list(self.module.validate_password(raw, user, self.validators))

    def password_rules(self) -> list[str]:
        """The site's password rules in words, one per validator."""
        validators = self.validators
        if validators is None:
            validators = self.module.validators.DEFAULT_VALIDATORS
        rules = []
        for validator in validators:
            kind = type(validator).__name__
            if kind == "MinimumLengthValidator":
                rules.append(f"At least {validator.min_length} characters.")
            elif kind == "CommonPasswordValidator":
                rules.append("Not a commonly used password.")
            elif kind == "NumericPasswordValidator":
                rules.append("Not only digits.")
            elif kind == "UserAttributeSimilarityValidator":
                rules.append("Not too similar to the user's name or e-mail address.")
            elif getattr(validator, "help_text", None):
                rules.append(str(validator.help_text))
        return rules

    async def authenticate(
        self, request: Request, db: DbSession, username: str, password: str
    ) -> Any | None:
        """:func:`transom.auth.authenticate` when the ``Auth`` battery is installed: the site's
        login path with the site's limits (one budget for both forms), else the generic one."""
        if request.app is not None and request.app.batteries.find(Auth) is not None:
            return await self.module.authenticate(request, db, username, password)
        return await super().authenticate(request, db, username, password)

    async def login(self, request: Request, user: Any) -> None:
        helper = getattr(self.module, "login", None)
        if helper is None:
            await super().login(request, user)
        else:
            await _maybe_await(helper(request, user))

    async def logout(self, request: Request) -> None:
        helper = getattr(self.module, "logout", None)
        if helper is None:
            await super().logout(request)
        else:
            await _maybe_await(helper(request))
