"""Transom's data battery: SQLAlchemy 2 (async) models, per-request sessions and migrations.

Example:
    >>> from sqlalchemy.orm import Mapped, mapped_column
    >>> from transom.db import DbSessionDep, Model
    >>> class Article(Model):
    ...     id: Mapped[int] = mapped_column(primary_key=True)
    ...     slug: Mapped[str] = mapped_column(unique=True)
    ...     title: Mapped[str]
"""

from typing import TYPE_CHECKING

from transom._deprecation import renamed_names
from transom.db.config import DEFAULT_DATABASE_URL, DatabaseConfig
from transom.db.engine import EXTENSION_KEY, Database, get_database, setup
from transom.db.errors import DatabaseProblem, classify, to_http_exception
from transom.db.lifecycle import (
    RENAMES,
    DbSessionDep,
    DbSessionOptions,
    ManualDbSessionDep,
    PrimaryDbSessionDep,
    SyncDbSessionDep,
    db_session_dependency,
    db_session_options,
    get_db_session,
    get_sync_db_session,
)
from transom.db.models import NAMING_CONVENTION, Model, TimestampMixin, make_base, to_dict
from transom.db.pagination import (
    CursorPage,
    OffsetPage,
    Page,
    paginate,
    paginate_cursor,
    paginate_offset,
)
from transom.db.schemas import from_schema, schema_for, to_schema, update_from
from transom.db.sessions import DbSession, RoutingSession
from transom.db.types import UTCDateTime, utcnow

__all__ = [
    "DEFAULT_DATABASE_URL",
    "EXTENSION_KEY",
    "NAMING_CONVENTION",
    "CursorPage",
    "Database",
    "DatabaseConfig",
    "DatabaseProblem",
    "DbSession",
    "DbSessionDep",
    "DbSessionOptions",
    "ManualDbSessionDep",
    "Model",
    "OffsetPage",
    "Page",
    "PrimaryDbSessionDep",
    "RoutingSession",
    "SyncDbSessionDep",
    "TimestampMixin",
    "UTCDateTime",
    "classify",
    "db_session_dependency",
    "db_session_options",
    "from_schema",
    "get_database",
    "get_db_session",
    "get_sync_db_session",
    "make_base",
    "paginate",
    "paginate_cursor",
    "paginate_offset",
    "schema_for",
    "setup",
    "to_dict",
    "to_http_exception",
    "to_schema",
    "update_from",
    "utcnow",
]

if TYPE_CHECKING:
    # The old names, still accepted by type checkers while they are deprecated.
    from transom.db.lifecycle import (
        ManualSession as ManualSession,
    )
    from transom.db.lifecycle import (
        PrimarySession as PrimarySession,
    )
    from transom.db.lifecycle import (
        Session as Session,
    )
    from transom.db.lifecycle import (
        SessionOptions as SessionOptions,
    )
    from transom.db.lifecycle import (
        SyncSession as SyncSession,
    )
    from transom.db.lifecycle import (
        get_session as get_session,
    )
    from transom.db.lifecycle import (
        get_sync_session as get_sync_session,
    )
    from transom.db.lifecycle import (
        session_dependency as session_dependency,
    )
    from transom.db.lifecycle import (
        session_options as session_options,
    )

# `from transom.db import Session` warns: see lifecycle.RENAMES and docs/deprecations.md.
# Runtime only: a module __getattr__ seen by type checkers would make them accept any name.
if not TYPE_CHECKING:
    __getattr__ = renamed_names(__name__, globals(), RENAMES)
