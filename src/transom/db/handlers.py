"""App-level exception handlers, for database errors raised outside the injected session."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exc as sa_exc

from transom.requests import Request
from transom.responses import Response

__all__ = ["HANDLED_EXCEPTIONS", "install_handlers"]

#: Exception types the battery answers for: constraint violations, values the database refused
#: and outages. The injected session translates these itself; the handlers catch what happens
#: on other paths (a session opened by hand, ``database.engine.connect()``, middleware).
#: ``DBAPIError`` is the base of every wrapped driver error: asyncpg's refusals arrive as the
#: base class itself. Whatever :func:`~transom.db.errors.classify` does not recognise is
#: raised again and stays a 500.
HANDLED_EXCEPTIONS: tuple[type[BaseException], ...] = (
    sa_exc.DBAPIError,
    sa_exc.TimeoutError,
)


def install_handlers(app: Any) -> None:
    """Register the database exception handlers on ``app`` (done once, when attached)."""
    from transom.db.engine import get_database

    async def handle_database_error(request: Request, exc: Exception) -> Response:
        database = get_database(request.app)
        from transom.db.errors import to_http_exception

        translated = to_http_exception(
            exc, database.metadatas, retry_after=database.config.retry_after
        )
        if translated is None:
            # Not a client or availability problem (a missing table, bad SQL): a real 500.
            raise exc
        # Raised, not returned: the core renders it (JSON or HTML, as the client prefers).
        raise translated

    for exc_type in HANDLED_EXCEPTIONS:
        app.exception_handler(exc_type)(handle_database_error)
