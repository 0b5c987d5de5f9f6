"""The Conduit app: batteries, the spec's error format, the routes.

Settings come from the environment like any Transom app: ``DATABASE_URL`` (default: the SQLite
file ``db.sqlite3`` in the folder it runs from), ``TRANSOM_SECRET_KEY`` (signs the tokens), plus
``CONDUIT_TOKEN_TTL`` (token lifetime in seconds, default 7 days) and ``CONDUIT_CORS_ORIGINS``
(comma-separated origins of the front-ends allowed to call the API, default ``*``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from conduit_api import articles, users
from conduit_api.models import User
from transom import App, HTTPException, JSONResponse, Request, RequestValidationError, Settings
from transom.auth import Auth, AuthConfig, JWTConfig
from transom.security import CORSConfig, Security, SecurityConfig

app = App(Settings(title="Conduit", version="1.1.0", description="The RealWorld backend API"))

# A token-only API: nothing rides in cookies, so there are no sessions and no CSRF to check.
# CORS lets browser front-ends on other origins call it; `*` is safe here for the same reason
# (no ambient credentials: a page can only send a token it already holds).
origins = [o.strip() for o in os.environ.get("CONDUIT_CORS_ORIGINS", "*").split(",") if o.strip()]
app.install(
    Security(
        SecurityConfig(
            sessions=None,
            csrf=None,
            cors=CORSConfig(allow_origins=origins, allow_headers=("content-type", "authorization")),
        )
    )
)
auth = app.install(
    Auth(
        AuthConfig(
            user_model=User,
            prefix=None,  # no login pages: /api/users and /api/users/login are the spec's own
            # RealWorld clients send `Authorization: Token <jwt>`, and have no refresh flow.
            token_schemes={"Token": "jwt"},
            jwt=JWTConfig(access_ttl=int(os.environ.get("CONDUIT_TOKEN_TTL", 7 * 24 * 3600))),
            sync_permissions=False,  # Conduit has no permission codenames to check
        )
    )
)


# --- the spec's error format: {"errors": {"body": ["...", ...]}} ---


def _location(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts)


def _messages(detail: Any) -> list[str]:
    if isinstance(detail, str):
        return [detail]
    if isinstance(detail, list):
        out: list[str] = []
        for item in detail:
            if isinstance(item, Mapping) and "msg" in item:
                where = _location(item.get("loc", ()))
                out.append(f"{where}: {item['msg']}" if where else str(item["msg"]))
            else:
                out.append(str(item))
        return out
    return [str(detail)]


def _already_taken(detail: Any) -> list[str] | None:
    """Messages for a unique violation (the data battery's 409), or ``None`` for others."""
    if not isinstance(detail, list) or not detail:
        return None
    if not all(isinstance(e, Mapping) and e.get("type") == "db.unique" for e in detail):
        return None
    return [f"{_location(e.get('loc', ())) or 'value'} has already been taken" for e in detail]


@app.exception_handler(HTTPException)
def spec_error(request: Request, exc: HTTPException) -> JSONResponse:
    """Every error, the framework's (404, 405, 422 validation, 503...) and ours, in one shape."""
    taken = _already_taken(exc.detail) if exc.status_code == 409 else None
    if taken is not None:
        # Two registrations racing for one username pass the handler's check together and
        # meet at the unique constraint: answer as the check does, 422.
        return JSONResponse({"errors": {"body": taken}}, 422)
    return JSONResponse(
        {"errors": {"body": _messages(exc.detail)}}, exc.status_code, headers=exc.headers
    )


@app.exception_handler(RequestValidationError)
def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse({"errors": {"body": _messages(exc.errors)}}, 422)


app.include_router(users.router)
app.include_router(articles.router)
