"""Flash messages: one-time notices carried across a redirect in the session.

``await flash(request, "Saved.")`` before redirecting; the next page shows it with
``{% for m in get_flashed_messages() %}`` (templates) or ``await get_flashed_messages(request)``.
Needs the security battery's sessions (``app.install(Security())``).
"""

from __future__ import annotations

from typing import Any

from transom.requests import Request

__all__ = ["flash", "get_flashed_messages"]

FLASH_KEY = "_flashes"


async def _session(request: Request) -> Any:
    app = request.app
    from transom.security.extension import Security
    from transom.security.sessions import get_session_data

    if app is None or app.batteries.find(Security) is None:
        raise RuntimeError(
            "flash messages live in the session: install the security battery "
            "(app.install(transom.security.Security()))"
        )

    return await get_session_data(request)


async def flash(request: Request, message: str, category: str = "info") -> None:
    """Queue ``message`` for the next page this client sees."""
    session = await _session(request)
    session[FLASH_KEY] = [*session.get(FLASH_KEY, []), [category, message]]


async def get_flashed_messages(request: Request, *, with_categories: bool = False) -> list[Any]:
    """Return and forget the queued messages (``(category, message)`` pairs if asked)."""
    session = await _session(request)
    if FLASH_KEY not in session:
        return []
    queued = session.pop(FLASH_KEY)
    return [tuple(item) for item in queued] if with_categories else [m for _, m in queued]
