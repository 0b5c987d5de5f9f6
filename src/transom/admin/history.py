"""The admin's history: one row per add, change or delete made through it.

The table (``transom_admin_log``) lives on :class:`transom.db.Model`'s metadata, so a project's
migrations pick it up like any of its own tables. ``user_id`` is a string with no foreign key:
the record outlives the user, and any user model works.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, Index, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from transom.db import DbSession, Model, UTCDateTime

__all__ = ["ADDITION", "CHANGE", "DELETION", "LogEntry", "log_action", "object_history"]

ADDITION = "add"
CHANGE = "change"
DELETION = "delete"
_MAX_VALUE = 200


class LogEntry(Model):
    """One action taken in the admin: who, when, on what, and which fields changed."""

    __tablename__ = "transom_admin_log"
    __table_args__ = (Index("ix_transom_admin_log_object", "model_key", "object_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    action_time: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    user_repr: Mapped[str] = mapped_column(String(200))
    #: ``"app_label.model_name"``.
    model_key: Mapped[str] = mapped_column(String(200))
    object_id: Mapped[str] = mapped_column(String(200))
    object_repr: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(10))
    #: ``[{"field": ..., "old": ..., "new": ...}]`` as text: values shown, not re-typed.
    changes: Mapped[list[Any]] = mapped_column(JSON(), default=list)
    message: Mapped[str] = mapped_column(Text(), default="")

    def __str__(self) -> str:
        return f"{self.action} {self.model_key} {self.object_repr}"

    @property
    def change_summary(self) -> str:
        """A one-line description of what changed."""
        if self.message:
            return self.message
        if self.action == ADDITION:
            return "Added."
        if self.action == DELETION:
            return "Deleted."
        names = [str(c.get("field", "")) for c in self.changes or ()]
        return f"Changed {', '.join(names)}." if names else "No fields changed."


def display_value(value: Any, zone: dt.tzinfo = dt.UTC) -> str:
    """A value as history shows it (truncated, JSON for structures, dates as the admin's)."""
    from transom.admin.forms import format_moment

    moment = format_moment(value, zone)
    if value is None:
        text = "—"
    elif moment is not None:
        text = moment
    elif isinstance(value, dict | list):
        text = json.dumps(value, default=str, sort_keys=True)
    elif hasattr(value, "value") and hasattr(value, "name"):  # an Enum member
        text = str(value.name)
    else:
        text = str(value)
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 1] + "…"


async def log_action(
    db: DbSession,
    *,
    user_id: str,
    user_repr: str,
    model_key: str,
    object_id: str,
    object_repr: str,
    action: str,
    changes: Sequence[dict[str, Any]] = (),
    message: str = "",
) -> LogEntry:
    """Add a history record to the session (committed with the change it describes)."""
    entry = LogEntry(
        action_time=dt.datetime.now(dt.UTC),
        user_id=user_id[:64],
        user_repr=user_repr[:200],
        model_key=model_key,
        object_id=object_id[:200],
        object_repr=object_repr[:200],
        action=action,
        changes=list(changes),
        message=message,
    )
    db.add(entry)
    return entry


async def object_history(
    db: DbSession, model_key: str, object_id: str, limit: int = 200, *, exists: bool = True
) -> list[LogEntry]:
    """The records of one object, newest first: only that object's, never a predecessor's.

    A deletion closes an id's history: a database that hands the id out again (SQLite
    without ``AUTOINCREMENT``, or a row inserted with an explicit id) makes a new object, whose
    history starts after that deletion. For an object that ``exists``, the records after the
    last deletion; for one that is gone, that deletion and the records before it back to the
    one before.
    """
    stmt = (
        select(LogEntry)
        .where(LogEntry.model_key == model_key, LogEntry.object_id == object_id)
        .order_by(LogEntry.action_time.desc(), LogEntry.id.desc())
        .limit(limit)
    )
    entries = list((await db.execute(stmt)).scalars())
    kept: list[LogEntry] = []
    for entry in entries:
        if entry.action == DELETION and (exists or kept):
            break
        kept.append(entry)
    return kept


async def recent_actions(
    db: DbSession,
    *,
    user_id: str | None = None,
    model_keys: Sequence[str] | None = None,
    limit: int = 10,
) -> list[LogEntry]:
    """The latest records, optionally of one user and of some models only."""
    stmt = select(LogEntry).order_by(LogEntry.action_time.desc(), LogEntry.id.desc()).limit(limit)
    if user_id is not None:
        stmt = stmt.where(LogEntry.user_id == user_id)
    if model_keys is not None:
        stmt = stmt.where(LogEntry.model_key.in_(list(model_keys)))
    return list((await db.execute(stmt)).scalars())
