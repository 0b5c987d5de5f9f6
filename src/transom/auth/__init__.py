"""Transom's auth battery: users, login, permissions, API tokens, password reset.

Example:
    >>> from transom import App, Settings
    >>> from transom.security import Security
    >>> from transom.auth import Auth, CurrentUser, login_required
    >>> app = App(Settings(secret_key="change-me"))
    >>> security = Security(app)
    >>> auth = Auth(app)  # /auth/login, /auth/logout, password reset...
    >>> @app.get("/account")
    ... async def account(user: CurrentUser) -> dict[str, str]:
    ...     return {"username": user.username}

The built-in :class:`User` is imported (and so mapped, with its tables) on first use of
``transom.auth.User``; a project with its own model (``AuthConfig(user_model=Account)``) never
gets it.
"""

from typing import TYPE_CHECKING, Any

from transom.auth.email import (
    ConsoleBackend,
    EmailBackend,
    EmailMessage,
    MemoryBackend,
    SMTPBackend,
)
from transom.auth.extension import EXTENSION_KEY, Auth, AuthConfig, get_auth
from transom.auth.hashers import Argon2Hasher, PasswordHashers
from transom.auth.jwt import JWTConfig, JWTError, TokenPair
from transom.auth.models import (
    AbstractUser,
    APIToken,
    Group,
    Permission,
    PermissionsMixin,
    auth_tables,
)
from transom.auth.permissions import model_permissions, object_rule, sync_permissions
from transom.auth.redirects import safe_next
from transom.auth.tokens import create_api_token
from transom.auth.validators import validate_password
from transom.auth.web import (
    CurrentUser,
    OptionalUser,
    authenticate,
    get_current_user,
    login,
    login_required,
    logout,
    require_perm,
    require_user,
    requires,
    update_session_auth,
)

if TYPE_CHECKING:
    from transom.auth.user import User

__all__ = [
    "EXTENSION_KEY",
    "APIToken",
    "AbstractUser",
    "Argon2Hasher",
    "Auth",
    "AuthConfig",
    "ConsoleBackend",
    "CurrentUser",
    "EmailBackend",
    "EmailMessage",
    "Group",
    "JWTConfig",
    "JWTError",
    "MemoryBackend",
    "OptionalUser",
    "PasswordHashers",
    "Permission",
    "PermissionsMixin",
    "SMTPBackend",
    "TokenPair",
    "User",
    "auth_tables",
    "authenticate",
    "create_api_token",
    "get_auth",
    "get_current_user",
    "login",
    "login_required",
    "logout",
    "model_permissions",
    "object_rule",
    "require_perm",
    "require_user",
    "requires",
    "safe_next",
    "sync_permissions",
    "update_session_auth",
    "validate_password",
]


def __getattr__(name: str) -> Any:
    # The built-in user is mapped on first use only, like ``transom.auth.models.User``.
    if name == "User":
        from transom.auth.user import User

        return User
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
