"""The ASGI lifespan protocol for :class:`transom.App`: start-up and shutdown hooks, and the
one-time ``gc.freeze`` of what start-up left alive.

Kept apart from ``app.py`` (which routes requests) because none of it is on a request's path.
"""

from __future__ import annotations

import gc
import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from transom._concurrency import run_sync
from transom._types import Receive, Send
from transom.logs import configure_logging
from transom.websockets import close_on_signals

if TYPE_CHECKING:
    from transom.app import App

__all__ = ["call_hook", "freeze_startup_objects", "run_lifespan"]

logger = logging.getLogger("transom")


async def run_lifespan(app: App, receive: Receive, send: Send) -> None:
    """Answer a server's ``lifespan`` messages until its shutdown is complete."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            # A server runs us: the log lines need somewhere to go.
            configure_logging(app.settings)
            try:
                await app.startup()
            except Exception as exc:
                logger.exception("Application start-up failed")
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            if app.settings.gc_freeze:
                freeze_startup_objects()
            close_on_signals(app)  # SIGTERM ends WebSockets and event streams at once
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            try:
                await app.shutdown()
            except Exception as exc:
                await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.shutdown.complete"})
            return


async def call_hook(func: Callable[[], Any]) -> None:
    """Run a start-up or shutdown hook: a coroutine function in the loop, anything else in the
    thread pool (awaiting what it returns if that is awaitable)."""
    if inspect.iscoroutinefunction(func):
        await func()
    else:
        result = await run_sync(func)
        if inspect.isawaitable(result):
            await result


_frozen = False


def freeze_startup_objects() -> None:
    """Exclude the objects alive after start-up from every later garbage collection.

    They live as long as the process, yet each full collection walks all of them (tens of
    thousands with the database battery). Under load the objects of requests in flight get
    promoted to the oldest generation and set off full collections every second or so.
    ``gc.freeze`` (made for this) takes the start-up objects out of those walks; they are
    still freed by reference counting. Once per process: later apps (tests,
    a second app in one server) have nothing of that size to add.
    """
    global _frozen
    if _frozen:
        return
    _frozen = True
    gc.collect()  # what is garbage now must not be frozen (it would never be collected)
    gc.freeze()
