"""Sessions: one per request, injected by type, committed on success and rolled back on error."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, cast

from sqlalchemy import Select, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapper
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.util import EMPTY_DICT

from transom.db._fastget import FALLBACK, fast_get, transaction_watched
from transom.db.engine import get_database, has_begun
from transom.db.errors import is_unstorable_value
from transom.exceptions import HTTPException
from transom.params import Depends
from transom.requests import Request

if TYPE_CHECKING:
    from sqlalchemy.orm._typing import OrmExecuteOptionsParameter
    from sqlalchemy.orm.interfaces import ORMOption
    from sqlalchemy.orm.session import _EntityBindKey, _PKIdentityArgument
    from sqlalchemy.sql.selectable import ForUpdateParameter

    from transom.db.engine import Database
    from transom.db.pagination import CursorPage, Page

__all__ = [
    "DbSession",
    "ManualSession",
    "PrimarySession",
    "RoutingSession",
    "Session",
    "SessionOptions",
    "SyncSession",
    "get_session",
    "get_sync_session",
    "session_dependency",
    "session_options",
]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

# Keys in Session.info (a plain dict SQLAlchemy gives every session for this purpose).
_DB = "transom.db"
_SYNC = "transom.db.sync"
_FORCE_PRIMARY = "transom.db.force_primary"
_WROTE = "transom.db.wrote"
_REPLICA = "transom.db.replica"
_REQUEST = "transom.db.request"
_OPTIONS_ATTR = "__transom_db_options__"


def _is_write(clause: ClauseElement | None) -> bool:
    if clause is None:
        return False
    if isinstance(clause, UpdateBase):
        return True
    if isinstance(clause, Select):
        # SELECT ... FOR UPDATE locks rows: only meaningful on the primary.
        return clause._for_update_arg is not None
    if isinstance(clause, TextClause):
        # Raw SQL could do anything; only obvious reads may go to a replica.
        return not clause.text.lstrip().lower().startswith(("select", "with"))
    return False


def _plain_mapper(entity: Any) -> Mapper[Any] | None:
    # A mapped class (the everyday case); mappers and aliases take the ordinary path.
    mapper = getattr(entity, "__mapper__", None)
    return mapper if isinstance(mapper, Mapper) and mapper.class_ is entity else None


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
        database: Database | None = self.info.get(_DB)
        if database is None:
            return super().get_bind(mapper, clause=clause, **kw)
        sync = bool(self.info.get(_SYNC))
        primary = database.sync_engine if sync else database.engine.sync_engine
        has_replicas = bool(database.config.replica_urls)
        if not has_replicas:
            return primary
        if self._flushing or _is_write(clause):
            self.info[_WROTE] = True
        if self.info.get(_WROTE) or self.info.get(_FORCE_PRIMARY):
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
        previous = self.info.get(_FORCE_PRIMARY, False)
        self.info[_FORCE_PRIMARY] = True
        try:
            yield
        finally:
            self.info[_FORCE_PRIMARY] = previous


class DbSession(AsyncSession):
    """SQLAlchemy's ``AsyncSession`` plus the helpers handlers reach for every day."""

    sync_session: RoutingSession

    @property
    def request(self) -> Request | None:
        """The request this session serves, if it was injected into a handler."""
        return cast("Request | None", self.info.get(_REQUEST))

    @property
    def database(self) -> Database:
        """The :class:`~transom.db.Database` this session belongs to."""
        return cast("Database", self.info[_DB])

    def use_primary(self) -> AbstractContextManager[None]:
        """Send reads inside the ``with`` block to the primary database, not a replica.

        Example:
            >>> with db.use_primary():  # doctest: +SKIP
            ...     fresh = await db.get(Article, 1)
        """
        return self.sync_session.use_primary()

    async def get(
        self,
        entity: _EntityBindKey[T],
        ident: _PKIdentityArgument,
        *,
        options: Sequence[ORMOption] | None = None,
        populate_existing: bool | None = None,
        with_for_update: ForUpdateParameter = None,
        identity_token: Any | None = None,
        execution_options: OrmExecuteOptionsParameter = EMPTY_DICT,
    ) -> T | None:
        """Load an instance by primary key, or ``None``: SQLAlchemy's ``AsyncSession.get``.

        On PostgreSQL (asyncpg), a plain load of a plain model that misses the identity map
        skips the ORM's query pipeline (see :mod:`transom.db._fastget`) with the same result:
        the same persistent instance, read from what the ordinary ``get`` would have read.
        Everything else, and every case where the two could differ, goes through SQLAlchemy
        unchanged.

        A key the database could not even store (an id of ``2**31`` for an ``INTEGER``
        column on PostgreSQL, beyond 64 bits on SQLite) finds nothing: ``None``, so
        ``get_or_404`` answers 404 for ``/items/99999999999999999999`` like for any other id
        that doesn't exist. (MariaDB compares such a key and finds nothing by itself.)
        """
        try:
            return await self._get(
                entity,
                ident,
                options=options,
                populate_existing=populate_existing,
                with_for_update=with_for_update,
                identity_token=identity_token,
                execution_options=execution_options,
            )
        except Exception as exc:
            # The driver refused the key before sending it: the connection and its
            # transaction are untouched, and no row can have that key.
            if is_unstorable_value(exc):
                return None
            raise

    async def _get(
        self,
        entity: _EntityBindKey[T],
        ident: _PKIdentityArgument,
        *,
        options: Sequence[ORMOption] | None,
        populate_existing: bool | None,
        with_for_update: ForUpdateParameter,
        identity_token: Any | None,
        execution_options: OrmExecuteOptionsParameter,
    ) -> T | None:
        if (
            options is None
            and not populate_existing
            and with_for_update is None
            and identity_token is None
            and not execution_options
        ):
            mapper = _plain_mapper(entity)
            if mapper is not None:
                found = await fast_get(self, mapper, ident)
                if found is not FALLBACK:
                    return cast("T | None", found)
        return await super().get(
            entity,
            ident,
            options=options,
            populate_existing=populate_existing,
            with_for_update=with_for_update,
            identity_token=identity_token,
            execution_options=execution_options,
        )

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


@dataclass(frozen=True)
class SessionOptions:
    """How the per-request session behaves for one route.

    Attributes:
        autocommit: Commit when the handler succeeds (rollback on any exception regardless).
            With ``False`` the handler commits itself; anything left uncommitted is rolled back.
        primary: Read from the primary even when replicas are configured.
        commit_on: Exception types after which the transaction still commits (e.g. an
            ``HTTPException`` used for a redirect after a successful write).
    """

    autocommit: bool = True
    primary: bool = False
    commit_on: tuple[type[BaseException], ...] = ()


_DEFAULT_OPTIONS = SessionOptions()


def session_options(
    *,
    autocommit: bool = True,
    primary: bool = False,
    commit_on: Sequence[type[BaseException]] = (),
) -> Callable[[F], F]:
    """Decorate a handler to change how its injected session commits.

    Example:
        >>> @app.post("/import")  # doctest: +SKIP
        ... @session_options(autocommit=False)
        ... async def bulk_import(db: Session): ...
    """
    options = SessionOptions(autocommit=autocommit, primary=primary, commit_on=tuple(commit_on))

    def decorate(func: F) -> F:
        setattr(func, _OPTIONS_ATTR, options)
        return func

    return decorate


def _route_options(request: Request, override: SessionOptions | None) -> SessionOptions:
    if override is not None:
        return override
    route = getattr(request, "route", None)
    endpoint = getattr(route, "endpoint", None)
    options = getattr(endpoint, _OPTIONS_ATTR, None)
    return options if isinstance(options, SessionOptions) else _DEFAULT_OPTIONS


def _translate(exc: BaseException, database: Database) -> HTTPException | None:
    from transom.db.errors import to_http_exception

    return to_http_exception(exc, database.metadatas, retry_after=database.config.retry_after)


def _end(session: OrmSession, commit: bool) -> None:
    """Commit (or roll back) and close, in one pass: one greenlet hop instead of two."""
    try:
        if session.in_transaction():
            if not commit:
                session.rollback()
            elif not _nothing_to_commit(session):
                session.commit()
    finally:
        session.close()


def _nothing_to_commit(session: OrmSession) -> bool:
    """True when committing could change nothing: then closing the session is the same.

    That is a request that only read, on PostgreSQL with lazy BEGIN: nothing pending, and no
    connection of the session has sent BEGIN (its reads ran on their own), so there is no
    transaction on the server. Committing would still walk SQLAlchemy's transaction machinery
    (an eighth of a single-query request's samples under load, in py-spy). Any other case,
    or anyone listening for the commit, gets the real commit.
    """
    transaction = session.get_transaction()
    if (
        transaction is None
        or session.get_nested_transaction() is not None
        or session.expire_on_commit
        or not session._is_clean()
        or transaction_watched(session)  # they would notice a commit become a close
    ):
        return False
    for connection, *_ in transaction._connections.values():
        if connection.invalidated or connection.dialect.driver != "asyncpg":
            return False
        adapted = connection.connection.dbapi_connection
        if adapted is None or not adapted.autocommit or has_begun(adapted):
            return False
    return True


async def _end_async(session: DbSession, commit: bool) -> None:
    sync = session.sync_session
    if sync._transaction is None:  # get_transaction() is None, without the call
        # Never bound a connection (it only read through borrowed ones, or not at all):
        # closing just lets go of the loaded objects, no I/O, so no greenlet hop either.
        sync.close()
    else:
        await session.run_sync(_end, commit)


def _wants_commit(options: SessionOptions, exc: BaseException | None) -> bool:
    return options.autocommit and (exc is None or isinstance(exc, options.commit_on))


def session_dependency(
    options: SessionOptions | None = None,
) -> Callable[[Request], AsyncIterator[DbSession]]:
    """Build a session dependency with fixed options (default: read them from the route).

    ``Session`` is ``Annotated[DbSession, Depends(get_session)]``; make your own variant with
    ``Annotated[DbSession, Depends(session_dependency(SessionOptions(autocommit=False)))]``.
    """

    async def dependency(request: Request) -> AsyncIterator[DbSession]:
        database = get_database(request.app)
        opts = _route_options(request, options)
        session = database.session(**{_REQUEST: request})
        if opts.primary:
            session.info[_FORCE_PRIMARY] = True
        ended = False
        try:
            try:
                yield session
            except BaseException as exc:
                await _end_async(session, _wants_commit(opts, exc))
                ended = True
                raise
            await _end_async(session, _wants_commit(opts, None))
            ended = True
        except Exception as exc:
            # Constraint violations and outages become 409/422/503 instead of a 500.
            translated = _translate(exc, database)
            if translated is not None:
                raise translated from exc
            raise
        finally:
            if not ended:  # _end failed part-way (or never ran): make sure nothing is held
                await session.close()

    dependency.__name__ = "get_session" if options is None else "session_dependency"
    dependency.__doc__ = "Yield the request's database session (commit on success)."
    return dependency


#: The dependency behind :data:`Session`; override it in tests with ``app.dependency_overrides``.
get_session = session_dependency()
_manual = session_dependency(SessionOptions(autocommit=False))
_primary = session_dependency(SessionOptions(primary=True))

#: The request's async session. Commits when the handler succeeds, rolls back on any exception.
Session = Annotated[DbSession, Depends(get_session)]
#: Like :data:`Session` but never commits by itself: call ``await db.commit()``.
ManualSession = Annotated[DbSession, Depends(_manual)]
#: Like :data:`Session` but reads from the primary even when replicas are configured.
PrimarySession = Annotated[DbSession, Depends(_primary)]


def get_sync_session(request: Request) -> Iterator[OrmSession]:
    """Yield a blocking session for sync handlers (same commit/rollback rules as ``Session``).

    The core runs a sync generator dependency in its thread pool, so the blocking commit never
    stalls the event loop.
    """
    database = get_database(request.app)
    opts = _route_options(request, None)
    session = database.sync_session(**{_REQUEST: request})
    if opts.primary:
        session.info[_FORCE_PRIMARY] = True
    try:
        try:
            yield session
        except BaseException as exc:
            if isinstance(exc, opts.commit_on) and opts.autocommit:
                session.commit()
            elif session.in_transaction():
                session.rollback()
            raise
        if opts.autocommit and session.in_transaction():
            session.commit()
        elif session.in_transaction():
            session.rollback()
    except Exception as exc:
        translated = _translate(exc, database)
        if translated is not None:
            raise translated from exc
        raise
    finally:
        session.close()


#: A blocking ``sqlalchemy.orm.Session`` for sync (``def``) handlers.
SyncSession = Annotated[RoutingSession, Depends(get_sync_session)]
