"""Sessions in a SQL database through ``transom.db`` (SQLite, PostgreSQL, MariaDB).

One table, ``transom_sessions`` (key, JSON data, expiry). It lives in its own
:data:`session_metadata`, so it never mixes with your models; the table is created on first use
unless ``create_table=False`` (then add ``session_metadata`` to your migrations). Expired rows
are ignored when read and purged from time to time.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Column, Double, MetaData, String, Table, Text, delete, insert, select, update
from sqlalchemy.dialects.mysql import MEDIUMTEXT
from sqlalchemy.exc import IntegrityError

from transom.security._context import StoreUnavailable
from transom.security.sessions import SessionBackend

if TYPE_CHECKING:
    from transom.db import Database

__all__ = ["DatabaseSessionBackend", "session_metadata", "session_table"]

session_metadata = MetaData()
session_table = Table(
    "transom_sessions",
    session_metadata,
    Column("key", String(64), primary_key=True),
    # MariaDB TEXT holds only 64 KiB; MEDIUMTEXT 16 MiB.
    Column("data", Text().with_variant(MEDIUMTEXT(), "mysql", "mariadb"), nullable=False),
    # Double, not Float: a MariaDB FLOAT is 32-bit, about two minutes of precision today.
    Column("expires_at", Double, nullable=False, index=True),
)
# Purge expired rows on about one save in this many (cheap, and no cron job needed).
_PURGE_EVERY = 100


class DatabaseSessionBackend(SessionBackend):
    """Server-side sessions in the app's database.

    Args:
        database: The ``transom.db.Database`` (``transom.db.setup(app)`` returns it).
        create_table: Create ``transom_sessions`` on first use if it is missing.
        purge_every: Delete expired rows on about one save in this many (0: never; then
            call :meth:`clear_expired` from a scheduled job).
    """

    def __init__(
        self, database: Database, *, create_table: bool = True, purge_every: int = _PURGE_EVERY
    ) -> None:
        self.database = database
        self._ready = not create_table
        self.purge_every = purge_every

    @contextmanager
    def _outage(self) -> Iterator[None]:
        """Report an unreachable database as the battery's StoreUnavailable (503 + Retry-After,
        one warning line), as the Redis backend does; any other error stays a bug (500)."""
        from transom.db.errors import classify

        try:
            yield
        except Exception as exc:
            problem = classify(exc)
            if problem is None or problem.kind != "unavailable":
                raise
            cause = getattr(exc, "orig", None) or exc
            raise StoreUnavailable(
                f"session database unavailable: {type(cause).__name__}: {cause}",
                retry_after=self.database.config.retry_after,
            ) from None

    async def _ensure_table(self) -> None:
        if not self._ready:
            async with self.database.engine.begin() as conn:
                await conn.run_sync(session_metadata.create_all)
            self._ready = True

    async def load(self, key: str) -> dict[str, Any] | None:
        query = select(session_table.c.data).where(
            session_table.c.key == key, session_table.c.expires_at > time.time()
        )
        with self._outage():
            await self._ensure_table()
            async with self.database.engine.connect() as conn:
                raw = (await conn.execute(query)).scalar_one_or_none()
        if raw is None:
            return None
        value = orjson.loads(raw)
        return value if isinstance(value, dict) else None

    async def save(self, key: str, record: dict[str, Any], ttl: int) -> None:
        with self._outage():
            await self._save(key, record, ttl)

    async def _save(self, key: str, record: dict[str, Any], ttl: int) -> None:
        await self._ensure_table()
        values = {"data": orjson.dumps(record).decode(), "expires_at": time.time() + ttl}
        table = session_table
        async with self.database.engine.begin() as conn:
            result = await conn.execute(update(table).where(table.c.key == key).values(**values))
            if result.rowcount == 0:
                try:
                    async with conn.begin_nested():
                        await conn.execute(insert(table).values(key=key, **values))
                except IntegrityError:  # a concurrent request inserted it first
                    await conn.execute(update(table).where(table.c.key == key).values(**values))
            if self.purge_every and random.randrange(self.purge_every) == 0:
                await conn.execute(delete(table).where(table.c.expires_at <= time.time()))

    async def delete(self, key: str) -> None:
        with self._outage():
            await self._ensure_table()
            async with self.database.engine.begin() as conn:
                await conn.execute(delete(session_table).where(session_table.c.key == key))

    async def clear_expired(self) -> int:
        """Delete every expired session now; returns how many were removed."""
        await self._ensure_table()
        async with self.database.engine.begin() as conn:
            result = await conn.execute(
                delete(session_table).where(session_table.c.expires_at <= time.time())
            )
        return int(result.rowcount)
