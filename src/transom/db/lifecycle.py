"""The request lifecycle: one session per request, committed on success, rolled back on error.

``DbSessionDep`` (and its variants) is a dependency: it opens a :class:`~transom.db.DbSession`
from the app's :class:`~transom.db.Database`, hands it to the handler and every dependency
of the same request, and ends it after the handler: commit (or rollback) and close.

The names say what each thing is: ``DbSession`` is the session *class*, ``...Dep`` names are
``Annotated`` aliases that inject one, ``get_...`` names are the dependency functions behind
them. The old names (``Session``, ``get_session``...) are deprecated aliases.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from sqlalchemy.orm import Session as OrmSession

from transom._deprecation import renamed_names
from transom.db.engine import Database, get_database
from transom.db.sessions import (
    FORCE_PRIMARY_KEY,
    REQUEST_KEY,
    RUNNING_KEY,
    DbSession,
    RoutingSession,
    wait_for_on_commit,
)
from transom.exceptions import HTTPException
from transom.params import Depends
from transom.requests import Request

__all__ = [
    "DbSessionDep",
    "DbSessionOptions",
    "ManualDbSessionDep",
    "PrimaryDbSessionDep",
    "SyncDbSessionDep",
    "db_session_dependency",
    "db_session_options",
    "get_db_session",
    "get_sync_db_session",
]

F = TypeVar("F", bound=Callable[..., Any])

_OPTIONS_ATTR = "__transom_db_options__"


@dataclass(frozen=True)
class DbSessionOptions:
    """How the per-request database session behaves for one route.

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


_DEFAULT_OPTIONS = DbSessionOptions()


def db_session_options(
    *,
    autocommit: bool = True,
    primary: bool = False,
    commit_on: Sequence[type[BaseException]] = (),
) -> Callable[[F], F]:
    """Decorate a handler to change how its injected database session commits.

    Example:
        >>> @app.post("/import")  # doctest: +SKIP
        ... @db_session_options(autocommit=False)
        ... async def bulk_import(db: DbSessionDep): ...
    """
    options = DbSessionOptions(autocommit=autocommit, primary=primary, commit_on=tuple(commit_on))

    def decorate(func: F) -> F:
        setattr(func, _OPTIONS_ATTR, options)
        return func

    return decorate


def _route_options(request: Request, override: DbSessionOptions | None) -> DbSessionOptions:
    if override is not None:
        return override
    route = getattr(request, "route", None)
    endpoint = getattr(route, "endpoint", None)
    options = getattr(endpoint, _OPTIONS_ATTR, None)
    return options if isinstance(options, DbSessionOptions) else _DEFAULT_OPTIONS


def _translate(exc: BaseException, database: Database) -> HTTPException | None:
    from transom.db.errors import to_http_exception

    return to_http_exception(exc, database.metadatas, retry_after=database.config.retry_after)


def _end(session: OrmSession, commit: bool) -> None:
    """Commit (or roll back) and close, in one pass: one greenlet hop instead of two."""
    try:
        if session.in_transaction():
            if commit:
                session.commit()
            else:
                session.rollback()
    finally:
        session.close()


async def _end_async(session: DbSession, commit: bool) -> None:
    sync = session.sync_session
    if not sync.in_transaction():
        # Never began (it ran no query, or nothing at all): closing just lets go of the
        # loaded objects, no I/O, so no greenlet hop either.
        sync.close()
    else:
        await session.run_sync(_end, commit)
        if RUNNING_KEY in sync.info:
            await wait_for_on_commit(sync)


def _wants_commit(options: DbSessionOptions, exc: BaseException | None) -> bool:
    return options.autocommit and (exc is None or isinstance(exc, options.commit_on))


def db_session_dependency(
    options: DbSessionOptions | None = None,
) -> Callable[[Request], AsyncIterator[DbSession]]:
    """Build a database session dependency with fixed options (default: from the route).

    ``DbSessionDep`` is ``Annotated[DbSession, Depends(get_db_session)]``; make your own
    variant with
    ``Annotated[DbSession, Depends(db_session_dependency(DbSessionOptions(autocommit=False)))]``.
    """

    async def dependency(request: Request) -> AsyncIterator[DbSession]:
        database = get_database(request.app)
        opts = _route_options(request, options)
        session = database.session(**{REQUEST_KEY: request})
        if opts.primary:
            session.info[FORCE_PRIMARY_KEY] = True
        if opts.autocommit and request.scope.get("type") == "websocket":
            # A WebSocket lasts long: commit what resolving its dependencies did (the query
            # behind CurrentUser) before the handler starts, so its pool connection is not
            # held for the connection's lifetime (objects stay loaded: expire_on_commit=False).
            request.on_resolved(session.commit)  # type: ignore[attr-defined]
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

    # Declares the battery it needs: a handler taking a session makes the app install a
    # Database (with its defaults if none was installed) when it is built.
    dependency.__transom_requires__ = (Database,)  # type: ignore[attr-defined]
    dependency.__name__ = "get_db_session" if options is None else "db_session_dependency"
    dependency.__doc__ = "Yield the request's database session (commit on success)."
    return dependency


#: The dependency behind :data:`DbSessionDep`; override it in tests with
#: ``app.dependency_overrides``.
get_db_session = db_session_dependency()
_manual = db_session_dependency(DbSessionOptions(autocommit=False))
_primary = db_session_dependency(DbSessionOptions(primary=True))

#: Inject the request's :class:`DbSession`. Commits when the handler succeeds, rolls back on
#: any exception.
DbSessionDep = Annotated[DbSession, Depends(get_db_session)]
#: Like :data:`DbSessionDep` but never commits by itself: call ``await db.commit()``.
ManualDbSessionDep = Annotated[DbSession, Depends(_manual)]
#: Like :data:`DbSessionDep` but reads from the primary even when replicas are configured.
PrimaryDbSessionDep = Annotated[DbSession, Depends(_primary)]


def get_sync_db_session(request: Request) -> Iterator[OrmSession]:
    """Yield a blocking session for sync handlers (same rules as ``DbSessionDep``).

    The core runs a sync generator dependency in its thread pool, so the blocking commit never
    stalls the event loop.
    """
    database = get_database(request.app)
    opts = _route_options(request, None)
    session = database.sync_session(**{REQUEST_KEY: request})
    if opts.primary:
        session.info[FORCE_PRIMARY_KEY] = True
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


get_sync_db_session.__transom_requires__ = (Database,)  # type: ignore[attr-defined]

#: Inject a blocking ``sqlalchemy.orm.Session`` (a :class:`RoutingSession`) into sync
#: (``def``) handlers.
SyncDbSessionDep = Annotated[RoutingSession, Depends(get_sync_db_session)]

#: Old name -> new name (also served by :mod:`transom.db`). ``Session`` read as SQLAlchemy's
#: class but was an ``Annotated`` alias; every name now says which session and what kind of thing.
RENAMES = {
    "Session": "DbSessionDep",
    "ManualSession": "ManualDbSessionDep",
    "PrimarySession": "PrimaryDbSessionDep",
    "SyncSession": "SyncDbSessionDep",
    "SessionOptions": "DbSessionOptions",
    "session_options": "db_session_options",
    "session_dependency": "db_session_dependency",
    "get_session": "get_db_session",
    "get_sync_session": "get_sync_db_session",
}

if TYPE_CHECKING:
    # The old names, still accepted by type checkers while they are deprecated.
    Session = DbSessionDep
    ManualSession = ManualDbSessionDep
    PrimarySession = PrimaryDbSessionDep
    SyncSession = SyncDbSessionDep
    SessionOptions = DbSessionOptions
    session_options = db_session_options
    session_dependency = db_session_dependency
    get_session = get_db_session
    get_sync_session = get_sync_db_session

# Runtime only: a module __getattr__ seen by type checkers would make them accept any name.
if not TYPE_CHECKING:
    __getattr__ = renamed_names(__name__, globals(), RENAMES)
