"""The session classes: :class:`DbSession` (async) on :class:`RoutingSession` (replica routing).

The per-request session built from them (commit on success, rollback on error) is in
:mod:`transom.db.lifecycle`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy import Select, event, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapper, SessionTransaction
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.elements import TextClause

from transom.db.errors import is_unstorable_value
from transom.db.hooks import locks_rows
from transom.exceptions import HTTPException

if TYPE_CHECKING:
    from sqlalchemy.orm.interfaces import ORMOption
    from sqlalchemy.sql.selectable import ForUpdateParameter

    from transom.db.engine import Database
    from transom.db.pagination import CursorPage, OffsetPage, Page
    from transom.requests import Request

__all__ = ["DbSession", "RoutingSession"]

T = TypeVar("T")
#: What :meth:`DbSession.on_commit` takes: a function of no arguments, plain or async.
OnCommit = Callable[[], Awaitable[object] | object]

logger = logging.getLogger("transom.db")

# Keys in Session.info (a plain dict SQLAlchemy gives every session for this purpose).
DB_KEY = "transom.db"
SYNC_KEY = "transom.db.sync"
FORCE_PRIMARY_KEY = "transom.db.force_primary"
REQUEST_KEY = "transom.db.request"
_WROTE = "transom.db.wrote"
_ON_COMMIT = "transom.db.on_commit"  # [(the transaction it waits for, function)], in order
_ON_COMMIT_HOOKED = "transom.db.on_commit.hooked"
_COMMITTED = "transom.db.on_commit.committed"
RUNNING_KEY = "transom.db.on_commit.running"  # the asyncio tasks running them after a commit
_REPLICA = "transom.db.replica"


def _is_write(clause: ClauseElement | None) -> bool:
    if clause is None:
        return False
    if isinstance(clause, UpdateBase):
        return True
    if isinstance(clause, Select):
        # SELECT ... FOR UPDATE locks rows: only meaningful on the primary.
        return locks_rows(clause)
    if isinstance(clause, TextClause):
        # Raw SQL could do anything; only obvious reads may go to a replica.
        return not clause.text.lstrip().lower().startswith(("select", "with"))
    return False


class RoutingSession(OrmSession):
    """The ORM session behind :class:`DbSession`: sends reads to replicas, writes to the primary.

    Once a session has written (or was told to use the primary) it stays on the primary, so a
    request always reads its own writes. Without replicas this is a plain ``Session``.
    """

    def get_bind(
        self,
        mapper: Mapper[Any] | type | None = None,
        *,
        clause: ClauseElement | None = None,
        **kw: Any,
    ) -> Engine | Connection:
        database: Database | None = self.info.get(DB_KEY)
        if database is None:
            return super().get_bind(mapper, clause=clause, **kw)
        sync = bool(self.info.get(SYNC_KEY))
        primary = database.sync_engine if sync else database.engine.sync_engine
        has_replicas = bool(database.config.replica_urls)
        if not has_replicas:
            return primary
        if _is_write(clause):
            self.info[_WROTE] = True
        if self.info.get(_WROTE) or self.info.get(FORCE_PRIMARY_KEY):
            return primary
        replica = self.info.get(_REPLICA)
        if replica is None:
            # One replica per session: a request sees one consistent snapshot.
            replica = database.pick_replica(sync=sync)
            self.info[_REPLICA] = replica
        return cast(Engine, replica) if replica is not None else primary

    @contextmanager
    def use_primary(self) -> Iterator[None]:
        """Within the block, send reads to the primary too (e.g. right after another write)."""
        previous = self.info.get(FORCE_PRIMARY_KEY, False)
        self.info[FORCE_PRIMARY_KEY] = True
        try:
            yield
        finally:
            self.info[FORCE_PRIMARY_KEY] = previous


@event.listens_for(RoutingSession, "before_flush")
def _flushing(session: OrmSession, _flush_context: Any, _instances: Any) -> None:
    # A flush writes (SQLAlchemy calls before_flush only when there is something to flush),
    # and the flush asks get_bind with no statement to look at: note it first.
    session.info[_WROTE] = True


#: Callbacks started by commits, kept so they are not garbage-collected mid-way.
_running: set[asyncio.Task[None]] = set()


def _committed(session: OrmSession) -> None:
    # SQLAlchemy's after_commit carries no transaction; the after_transaction_end that follows
    # it (the same transaction's) reads this note.
    session.info[_COMMITTED] = True


def _transaction_ended(session: OrmSession, transaction: SessionTransaction) -> None:
    committed = session.info.pop(_COMMITTED, False)
    entries: list[tuple[SessionTransaction, OnCommit]] = session.info.get(_ON_COMMIT, [])
    if not any(owner is transaction for owner, _ in entries):
        return
    parent = transaction.parent
    kept: list[tuple[SessionTransaction, OnCommit]] = []
    ready: list[OnCommit] = []
    for owner, func in entries:
        if owner is not transaction:
            kept.append((owner, func))
        elif committed and parent is not None:
            kept.append((parent, func))  # a released savepoint: they wait for the outer commit
        elif committed:
            ready.append(func)
        # else: rolled back (or closed without a commit), so they never run
    session.info[_ON_COMMIT] = kept
    if ready:
        _start(session, ready)


def _start(session: OrmSession, funcs: list[OnCommit]) -> None:
    """Run ``funcs`` in order in one asyncio task; ``commit()`` and the request's end await it.

    A task, not a call: SQLAlchemy runs this listener in synchronous code (inside its greenlet)
    where nothing can be awaited.
    """
    task = asyncio.get_running_loop().create_task(_run_callbacks(funcs))
    _running.add(task)
    task.add_done_callback(_running.discard)
    session.info.setdefault(RUNNING_KEY, []).append(task)


async def _run_callbacks(funcs: list[OnCommit]) -> None:
    for func in funcs:
        try:
            result = func()
            if inspect.isawaitable(result):
                await result
        except Exception:
            # The data is committed whatever a callback does: log it, run the next one.
            logger.exception("on_commit callback %r failed", func)


async def wait_for_on_commit(session: OrmSession) -> None:
    """Wait for the callbacks that commits of ``session`` started (none: returns at once)."""
    tasks: list[asyncio.Task[None]] = session.info.pop(RUNNING_KEY, [])
    for task in tasks:
        # Shielded: a request cancelled now (its client left) must not cancel them.
        await asyncio.shield(task)


class DbSession(AsyncSession):
    """SQLAlchemy's ``AsyncSession`` plus the helpers handlers reach for every day."""

    sync_session: RoutingSession

    @property
    def request(self) -> Request | None:
        """The request this session serves, if it was injected into a handler."""
        return cast("Request | None", self.info.get(REQUEST_KEY))

    @property
    def database(self) -> Database:
        """The :class:`~transom.db.Database` this session belongs to."""
        return cast("Database", self.info[DB_KEY])

    def use_primary(self) -> AbstractContextManager[None]:
        """Send reads inside the ``with`` block to the primary database, not a replica.

        Example:
            >>> with db.use_primary():  # doctest: +SKIP
            ...     fresh = await db.get(Article, 1)
        """
        return self.sync_session.use_primary()

    async def get(
        self,
        entity: type[T] | Mapper[T],
        ident: Any,
        *,
        options: Sequence[ORMOption] | None = None,
        populate_existing: bool | None = None,
        with_for_update: ForUpdateParameter = None,
        identity_token: Any | None = None,
        execution_options: Mapping[str, Any] | None = None,
    ) -> T | None:
        """Load an instance by primary key, or ``None``: SQLAlchemy's ``AsyncSession.get``.

        A key the database could not even store (an id of ``2**31`` for an ``INTEGER``
        column on PostgreSQL, beyond 64 bits on SQLite) finds nothing: ``None``, so
        ``get_or_404`` answers 404 for ``/items/99999999999999999999`` like for any other id
        that doesn't exist. (MariaDB compares such a key and finds nothing by itself.)
        """
        try:
            return await super().get(
                entity,
                ident,
                options=options,
                populate_existing=populate_existing,
                with_for_update=with_for_update,
                identity_token=identity_token,
                execution_options=execution_options or {},
            )
        except Exception as exc:
            # The driver refused the key before sending it: the connection and its
            # transaction are untouched, and no row can have that key.
            if is_unstorable_value(exc):
                return None
            raise

    async def get_or_404(
        self, entity: type[T], ident: Any, *, detail: str | None = None, **options: Any
    ) -> T:
        """Load ``entity`` by primary key or answer 404.

        Args:
            entity: The model class.
            ident: The primary key value (a tuple or dict for composite keys).
            detail: The 404 message; default names the model.
            **options: Passed to :meth:`AsyncSession.get` (``options=``, ``with_for_update=``).
        """
        obj = await self.get(entity, ident, **options)
        if obj is None:
            raise HTTPException(404, detail=detail or f"{entity.__name__} not found")
        return obj

    async def get_one_or_404(
        self, entity: type[T], /, *, detail: str | None = None, **filters: Any
    ) -> T:
        """Load the one ``entity`` matching ``filters`` (``slug="x"``) or answer 404.

        Raises:
            sqlalchemy.exc.MultipleResultsFound: the filters match several rows (a bug: filter
                on a unique column).
        """
        stmt = select(entity).filter_by(**filters)
        obj = (await self.execute(stmt)).scalar_one_or_none()
        if obj is None:
            raise HTTPException(404, detail=detail or f"{entity.__name__} not found")
        return obj

    async def one_or_404(self, stmt: Select[T], *, detail: str | None = None) -> T:
        """Run a ``select()`` that must return exactly one row, else answer 404."""
        obj = (await self.execute(stmt)).scalar_one_or_none()
        if obj is None:
            raise HTTPException(404, detail=detail or "Not found")
        return obj

    async def first_or_404(self, stmt: Select[T], *, detail: str | None = None) -> T:
        """Run a ``select()`` and return its first row, or answer 404 when there is none."""
        obj = (await self.execute(stmt.limit(1))).scalars().first()
        if obj is None:
            raise HTTPException(404, detail=detail or "Not found")
        return obj

    def on_commit(self, func: OnCommit) -> None:
        """Call ``func`` (no arguments; plain or async) once this session's transaction
        commits, and never if it rolls back: Django's ``transaction.on_commit``.

        For what must not happen unless the data is saved: tell open pages about a new
        comment, invalidate a cache, call another service. Inside ``begin_nested()`` it waits
        for the savepoint to be released and then for the outer commit; a rolled-back
        savepoint drops it. Callbacks run in the order they were registered, after the
        commit: ``await db.commit()`` returns once they have run, and so does the request's
        own commit (``DbSessionDep``). One that raises is logged (``transom.db``) and the
        next still runs: the data is committed either way. Outside a transaction ``func``
        runs at once (as in Django).

        Example:
            >>> comment = await db.save(Comment(body=body))  # doctest: +SKIP
            >>> db.on_commit(lambda: channels.publish("comments", {"id": comment.id}))
        """
        sync = self.sync_session
        transaction = sync.get_nested_transaction() or sync.get_transaction()
        if transaction is None:
            _start(sync, [func])
            return
        if not sync.info.get(_ON_COMMIT_HOOKED):
            # Listeners on this session only: sessions that never use on_commit pay nothing.
            sync.info[_ON_COMMIT_HOOKED] = True
            event.listen(sync, "after_commit", _committed)
            event.listen(sync, "after_transaction_end", _transaction_ended)
        sync.info.setdefault(_ON_COMMIT, []).append((transaction, func))

    async def commit(self) -> None:
        """Commit, then wait for the :meth:`on_commit` callbacks it started."""
        await super().commit()
        if RUNNING_KEY in self.sync_session.info:
            await wait_for_on_commit(self.sync_session)

    async def save(self, obj: T) -> T:
        """Add ``obj`` and flush, so its id and server defaults are set; returns ``obj``.

        Handy as ``return await db.save(Article(...))``: the response is rendered before the
        request's commit, so a new object needs this flush to show its id.
        """
        self.add(obj)
        await self.flush()
        return obj

    async def paginate(
        self,
        stmt: Select[T],
        *,
        page: int | None = None,
        per_page: int | None = None,
        max_per_page: int = 100,
        count: bool = True,
    ) -> Page[T]:
        """Offset pagination; see :func:`transom.db.pagination.paginate`."""
        from transom.db.pagination import paginate

        return await paginate(
            self, stmt, page=page, per_page=per_page, max_per_page=max_per_page, count=count
        )

    async def paginate_offset(
        self,
        stmt: Select[T],
        *,
        limit: int | None = None,
        offset: int | None = None,
        max_limit: int = 100,
        count: bool = True,
    ) -> OffsetPage[T]:
        """``limit``/``offset`` pagination; see :func:`transom.db.pagination.paginate_offset`."""
        from transom.db.pagination import paginate_offset

        return await paginate_offset(
            self, stmt, limit=limit, offset=offset, max_limit=max_limit, count=count
        )

    async def paginate_cursor(
        self,
        stmt: Select[T],
        *,
        cursor: str | None = None,
        limit: int | None = None,
        max_limit: int = 100,
        count: bool = False,
    ) -> CursorPage[T]:
        """Keyset (cursor) pagination; see :func:`transom.db.pagination.paginate_cursor`."""
        from transom.db.pagination import paginate_cursor

        return await paginate_cursor(
            self, stmt, cursor=cursor, limit=limit, max_limit=max_limit, count=count
        )
