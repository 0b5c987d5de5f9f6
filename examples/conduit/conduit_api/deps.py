"""What every handler asks for: the user (required or optional), tokens, the error helper."""

from __future__ import annotations

from typing import Annotated, Any

from sqlalchemy import select

from conduit_api.models import User, follows
from transom import Depends, HTTPException, Request
from transom.auth import get_auth, get_current_user, require_user
from transom.db import DbSession

# The auth battery's `CurrentUser`/`OptionalUser` are typed as its built-in user; Conduit has
# its own model, so these name it (the dependencies behind them are the battery's).
#: The authenticated user; 401 without a valid ``Authorization: Token <jwt>``.
CurrentUser = Annotated[User, Depends(require_user)]
#: The user when a valid token came, ``None`` without one (a bad token is still a 401).
OptionalUser = Annotated[User | None, Depends(get_current_user)]


#: The spec's error body, for the OpenAPI document of the routes' error responses.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["errors"],
    "properties": {
        "errors": {
            "type": "object",
            "required": ["body"],
            "properties": {"body": {"type": "array", "items": {"type": "string"}}},
        }
    },
}
_MEANINGS = {
    401: "Unauthorized: no token, or an invalid one",
    403: "Forbidden: not the author",
    404: "Not found",
}


def errors(*codes: int) -> dict[int, dict[str, Any]]:
    """The ``responses=`` of a route: these error statuses, with the spec's error body.

    (Its 422 entry is the framework's own ``HTTPValidationError`` whatever a route says, so the
    document shows that shape for 422 although the app answers ``{"errors": ...}``.)
    """
    content = {"application/json": {"schema": ERROR_SCHEMA}}
    return {code: {"description": _MEANINGS[code], "content": content} for code in codes}


def unprocessable(*messages: str) -> HTTPException:
    """A 422 in the spec's shape (the app's error handler wraps ``detail`` in ``errors.body``)."""
    return HTTPException(422, list(messages))


def unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Token"})


def forbidden(message: str) -> HTTPException:
    return HTTPException(403, message)


def not_found(what: str) -> HTTPException:
    return HTTPException(404, f"{what} not found")


def issue_token(request: Request, user: User) -> str:
    """A signed access token (JWT) for ``user``; its lifetime is the app's ``JWTConfig``."""
    return get_auth(request.app).jwt.access_token(str(user.id))


def presented_token(request: Request) -> str:
    """The token this request was authenticated with (``Token <jwt>``)."""
    return str(request.headers.get("authorization", "")).partition(" ")[2].strip()


def claims_of(request: Request) -> dict[str, Any]:
    """The verified claims of this request's token (set by the auth battery)."""
    claims: dict[str, Any] = request.scope["transom.auth.claims"]
    return claims


async def followed_among(db: DbSession, viewer: User | None, ids: set[int]) -> set[int]:
    """Which of the users ``ids`` the viewer follows, in one query (none for anonymous)."""
    if viewer is None or not ids:
        return set()
    rows = await db.scalars(
        select(follows.c.followed_id).where(
            follows.c.follower_id == viewer.id, follows.c.followed_id.in_(ids)
        )
    )
    return set(rows)
