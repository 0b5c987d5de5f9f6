"""The request lifecycle: one session per request, committed on success, rolled back on error.

``Session`` (and its variants) is a dependency: it opens a :class:`~transom.db.DbSession`
from the app's :class:`~transom.db.Database`, hands it to the handler and every dependency
of the same request, and ends it after the handler: commit (or rollback) and close.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from sqlalchemy.orm import Session as OrmSession

from transom.db.engine import Database, get_database
from transom.db.sessions import FORCE_PRIMARY_KEY, REQUEST_KEY, DbSession, RoutingSession
from transom.exceptions import HTTPException
from transom.params import Depends
from transom.requests import Request

__all__ = [
    "ManualSession",
    "PrimarySession",
    "Session",
    "SessionOptions",
    "SyncSession",
    "get_session",
    "get_sync_session",
    "session_dependency",
    "session_options",
]

F = TypeVar("F", bound=Callable[..., Any])

_OPTIONS_ATTR = "__transom_db_options__"


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
        session = database.session(**{REQUEST_KEY: request})
        if opts.primary:
            session.info[FORCE_PRIMARY_KEY] = True
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


get_sync_session.__transom_requires__ = (Database,)  # type: ignore[attr-defined]

#: A blocking ``sqlalchemy.orm.Session`` for sync (``def``) handlers.
SyncSession = Annotated[RoutingSession, Depends(get_sync_session)]
