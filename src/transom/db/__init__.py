"""Transom's data battery: SQLAlchemy 2 (async) models, per-request sessions and migrations.

Example:
    >>> from sqlalchemy.orm import Mapped, mapped_column
    >>> from transom.db import Model, Session
    >>> class Article(Model):
    ...     id: Mapped[int] = mapped_column(primary_key=True)
    ...     slug: Mapped[str] = mapped_column(unique=True)
    ...     title: Mapped[str]
"""

from transom.db.config import DEFAULT_DATABASE_URL, DatabaseConfig
from transom.db.engine import EXTENSION_KEY, Database, get_database, setup
from transom.db.errors import DatabaseProblem, classify, to_http_exception
from transom.db.lifecycle import (
    ManualSession,
    PrimarySession,
    Session,
    SessionOptions,
    SyncSession,
    get_session,
    get_sync_session,
    session_dependency,
    session_options,
)
from transom.db.models import NAMING_CONVENTION, Model, TimestampMixin, make_base, to_dict
from transom.db.pagination import CursorPage, Page, paginate, paginate_cursor
from transom.db.schemas import from_schema, schema_for, to_schema, update_from
from transom.db.sessions import DbSession, RoutingSession
from transom.db.types import UTCDateTime

__all__ = [
    "DEFAULT_DATABASE_URL",
    "EXTENSION_KEY",
    "NAMING_CONVENTION",
    "CursorPage",
    "Database",
    "DatabaseConfig",
    "DatabaseProblem",
    "DbSession",
    "ManualSession",
    "Model",
    "Page",
    "PrimarySession",
    "RoutingSession",
    "Session",
    "SessionOptions",
    "SyncSession",
    "TimestampMixin",
    "UTCDateTime",
    "classify",
    "from_schema",
    "get_database",
    "get_session",
    "get_sync_session",
    "make_base",
    "paginate",
    "paginate_cursor",
    "schema_for",
    "session_dependency",
    "session_options",
    "setup",
    "to_dict",
    "to_http_exception",
    "to_schema",
    "update_from",
]
