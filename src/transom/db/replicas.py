"""Which read replica a session reads from, and what happens when one is down.

A replica that cannot be reached is left out for ``DatabaseConfig.replica_retry`` seconds: its
reads go to another replica, or to the primary when none is left, so a stopped replica costs
no failed request (a replica is a copy of the primary: reading the primary instead is always
correct, only slower for it). It is found out two ways:

- before a session first reads from a replica that has not served for a while (longer than
  ``pool_ping_idle``), a connection is checked out of its pool, which pings it (the pool's idle
  ping) or connects: a failure leaves the replica out and the session reads elsewhere. A busy
  replica is not probed: its connections served a moment ago.
- a statement on a replica that fails because its connection was lost (SQLAlchemy's
  ``handle_error`` event with ``is_disconnect``: the replica stopped within that window) leaves
  it out for the next sessions; that one request answers 503, as on the primary.

A refused connect is an ``OSError`` that never reaches ``handle_error``: the probe is what
catches it, which is why every session that would open a connection to a replica that sat
idle probes first.
"""

from __future__ import annotations

import logging
import random
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, MissingGreenlet

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine, ExceptionContext

__all__ = ["ReplicaSet"]

logger = logging.getLogger("transom.db")


class ReplicaSet:
    """The health of a database's replicas, shared by its async and blocking engines.

    Args:
        urls: The replica URLs (for log messages; passwords are hidden).
        retry: Seconds a replica found down is left out.
        fresh: Seconds after its last checkout during which a replica is trusted unprobed.
    """

    def __init__(self, urls: list[str], *, retry: float, fresh: float) -> None:
        from sqlalchemy.engine import make_url

        self.names = [make_url(u).render_as_string(hide_password=True) for u in urls]
        self.retry = retry
        self.fresh = fresh
        self.down_until = [0.0] * len(urls)
        self.last_ok = [0.0] * len(urls)

    def watch(self, index: int, engine: Engine) -> None:
        """Listen to ``engine`` (replica ``index``): checkouts say it is up, lost connections
        that it is down."""

        def checked_out(*_args: Any) -> None:
            self.last_ok[index] = time.monotonic()

        def failed(context: ExceptionContext) -> None:
            if context.is_disconnect:
                self.mark_down(index, context.original_exception)

        event.listen(engine, "checkout", checked_out)
        event.listen(engine, "handle_error", failed)

    def mark_down(self, index: int, cause: BaseException) -> None:
        """Leave replica ``index`` out for :attr:`retry` seconds."""
        now = time.monotonic()
        if self.down_until[index] <= now:  # log the change, not every failure while down
            logger.warning(
                "Read replica %s is unreachable (%s: %s): reading from %s for %g s",
                self.names[index],
                type(cause).__name__,
                cause,
                "the other replicas" if len(self.names) > 1 else "the primary",
                self.retry,
            )
        self.down_until[index] = now + self.retry

    def choose(self, engines: list[Engine]) -> Engine | None:
        """A reachable replica among ``engines`` (same order as the URLs), or ``None``."""
        now = time.monotonic()
        candidates = [i for i in range(len(engines)) if self.down_until[i] <= now]
        random.shuffle(candidates)
        for index in candidates:
            engine = engines[index]
            if now - self.last_ok[index] <= self.fresh or self._reachable(index, engine):
                return engine
        return None

    def _reachable(self, index: int, engine: Engine) -> bool:
        try:
            # The pool pings an idle connection or opens a new one; it goes straight back.
            with engine.connect():
                pass
        except MissingGreenlet:
            return True  # asked outside the session's greenlet: can't probe, use it
        except (DBAPIError, OSError, TimeoutError) as exc:
            self.mark_down(index, exc)
            return False
        return True
