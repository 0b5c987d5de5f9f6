"""Turn database errors into HTTP answers: constraint violations name the field, outages give 503.

Each engine reports the same violation differently (SQLite: message text, PostgreSQL: SQLSTATE
and structured fields, MariaDB/MySQL: numeric error codes and a constraint name), so this module
first *classifies* an exception into a :class:`DatabaseProblem`, then renders it. Constraint
names are mapped back to columns through the models' metadata, which is reliable because
:class:`~transom.db.Model` names every constraint by convention.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import exc as sa_exc
from sqlalchemy.sql.schema import MetaData, Table

from transom.exceptions import HTTPException

__all__ = [
    "DatabaseProblem",
    "classify",
    "is_sqlite_overflow",
    "is_unstorable_value",
    "to_http_exception",
]

logger = logging.getLogger("transom.db")

Kind = Literal["unique", "not_null", "foreign_key", "restrict", "check", "invalid", "unavailable"]

_STATUS: dict[Kind, int] = {
    "unique": 409,  # the request is fine but clashes with existing data
    "restrict": 409,  # deleting/updating a row others still reference
    "not_null": 422,  # the request lacks a required value
    "foreign_key": 422,  # the request points at a row that doesn't exist
    "check": 422,
    "invalid": 422,  # a value the column can't hold: out of range, too long, a NUL byte...
    "unavailable": 503,
}
_MESSAGES: dict[Kind, str] = {
    "unique": "already exists",
    "restrict": "is still referenced by other records",
    "not_null": "is required",
    "foreign_key": "refers to a record that does not exist",
    "check": "is not allowed",
    "invalid": "contains a value the database cannot accept "
    "(a number out of range, text too long or with invalid characters)",
    "unavailable": "database unavailable",
}

# MariaDB/MySQL error numbers (shared by every driver built on the MySQL protocol).
_MYSQL_CODES: dict[int, Kind] = {
    1062: "unique",
    1586: "unique",
    1048: "not_null",
    1364: "not_null",  # strict mode, column omitted: raised as OperationalError
    1452: "foreign_key",
    1216: "foreign_key",
    1451: "restrict",
    1217: "restrict",
    3819: "check",  # MySQL 8
    4025: "check",  # MariaDB: raised as OperationalError
}
# Client-side codes meaning "no server": can't connect, gone away, lost connection, ...
# ... and the statement timeouts (MariaDB's max_statement_time, MySQL's max_execution_time).
_MYSQL_DOWN = {1040, 1053, 1205, 1969, 2002, 2003, 2005, 2006, 2013, 2055, 3024}
_PG_CODES: dict[str, Kind] = {
    "23505": "unique",
    "23502": "not_null",
    "23503": "foreign_key",  # refined to "restrict" below from the message
    "23514": "check",
}
_SQLITE_DOWN = ("database is locked", "unable to open database", "disk i/o error")

# "Invalid input": the statement was right, the value it carried can't be stored or compared.
# Such values come from the client (an id of 2**63 in a path, a NUL byte in a login form), so
# they answer 422, never 500. The lists are explicit on purpose: other data exceptions (a
# division by zero, a value of the wrong type for its column) point at the app's code and
# stay 500s with their traceback.
_PG_INVALID = {
    "22001",  # string_data_right_truncation: longer than VARCHAR(n)
    "22003",  # numeric_value_out_of_range
    "22007",  # invalid_datetime_format
    "22008",  # datetime_field_overflow
    "22021",  # character_not_in_repertoire: a NUL byte in text
    "22P02",  # invalid_text_representation: text cast to a number, uuid...
    "22P05",  # untranslatable_character
}
# asyncpg checks arguments before sending them and reports a number that doesn't fit the
# column's type, or text it can't encode, as a generic 22000 "invalid input for query argument".
_ASYNCPG_INVALID = re.compile(r"^invalid input for query argument .*(?:out of int|can't encode)")
_MYSQL_INVALID = {
    1264,  # Out of range value for column
    1265,  # Data truncated for column
    1292,  # Incorrect/Truncated incorrect <type> value
    1366,  # Incorrect string value (bytes the column's charset can't hold)
    1367,  # Illegal <type> value found during parsing
    1406,  # Data too long for column
}
# sqlite3 refuses to bind an int beyond 64 bits with a bare OverflowError (not a DBAPI error,
# so SQLAlchemy passes it through unwrapped).
_SQLITE_OVERFLOW = "too large to convert to SQLite INTEGER"


@dataclass
class DatabaseProblem:
    """A database error understood well enough to answer the client properly."""

    kind: Kind
    fields: list[str] = field(default_factory=list)
    table: str | None = None
    constraint: str | None = None

    @property
    def status_code(self) -> int:
        """The HTTP status for this problem."""
        return _STATUS[self.kind]

    def detail(self) -> list[dict[str, Any]]:
        """One error entry per field, in the same shape as request validation errors."""
        msg = _MESSAGES[self.kind]
        if not self.fields:
            # The database can't say which parameter held a refused value, nor whether it came
            # from the path, the query or the body.
            where = "request" if self.kind == "invalid" else "body"
            return [{"loc": [where], "msg": msg, "type": f"db.{self.kind}"}]
        return [
            {"loc": ["body", name], "msg": msg, "type": f"db.{self.kind}"} for name in self.fields
        ]


def _orig(exc: BaseException) -> BaseException:
    inner = exc.orig if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None else exc
    # asyncpg's own exception (with sqlstate/constraint_name/detail) hides behind SQLAlchemy's
    # adapter class.
    cause = inner.__cause__
    if cause is not None and hasattr(cause, "sqlstate"):
        return cause
    return inner


def _columns_of_constraint(metadatas: Iterable[MetaData], name: str) -> tuple[Table, list[str]]:
    for md in metadatas:
        for table in md.tables.values():
            for constraint in table.constraints:
                if constraint.name == name and hasattr(constraint, "columns"):
                    return table, [c.key for c in constraint.columns]
            for index in table.indexes:
                if index.name == name:
                    return table, [c.key for c in index.columns if hasattr(c, "key")]
    raise LookupError(name)


def _keys_for(metadatas: Sequence[MetaData], table: str | None, columns: list[str]) -> list[str]:
    """Map DB column names to model attribute keys where they differ (``Column("x", key=...)``)."""
    if table is None:
        return columns
    for md in metadatas:
        t = md.tables.get(table)
        if t is not None:
            by_name = {c.name: c.key for c in t.columns}
            return [by_name.get(c, c) for c in columns]
    return columns


_PG_KEY = re.compile(r"Key \((?P<cols>[^)]*)\)")
_SQLITE_COLS = re.compile(r"constraint failed: (?P<cols>.+)$")
_MYSQL_KEY = re.compile(r"for key '(?:[^'.]*\.)?(?P<name>[^']+)'")
_MYSQL_COLUMN = re.compile(r"(?:Column|Field) '(?P<col>[^']+)'")
_MYSQL_FK = re.compile(
    r"`(?P<table>[^`]+)`, CONSTRAINT `(?P<name>[^`]+)` FOREIGN KEY \((?P<cols>[^)]*)\)"
)
_MYSQL_CHECK = re.compile(r"(?:CONSTRAINT|constraint) [`'](?P<name>[^`']+)[`']")
_INSERT_TABLE = re.compile(r"^\s*(?:INSERT\s+INTO|UPDATE)\s+[`\"]?(?P<t>[\w.]+)", re.IGNORECASE)


def _split_cols(text: str) -> list[str]:
    return [c.strip().strip('`"') for c in text.split(",") if c.strip()]


def _classify_postgres(orig: Any, metadatas: Sequence[MetaData]) -> DatabaseProblem | None:
    kind = _PG_CODES.get(orig.sqlstate)
    if kind is None:
        return None
    table, constraint = orig.table_name, orig.constraint_name
    detail = orig.detail or ""
    fields: list[str] = []
    if kind == "not_null" and orig.column_name:
        fields = [orig.column_name]
    elif kind == "foreign_key" and "still referenced" in detail:
        kind = "restrict"
        m = _PG_KEY.search(detail)
        return DatabaseProblem(kind, _split_cols(m["cols"]) if m else [], None, constraint)
    elif (m := _PG_KEY.search(detail)) is not None:
        fields = _split_cols(m["cols"])
    elif constraint:
        try:
            _, fields = _columns_of_constraint(metadatas, constraint)
        except LookupError:
            fields = []
    return DatabaseProblem(kind, _keys_for(metadatas, table, fields), table, constraint)


def _classify_mysql(
    code: int, message: str, metadatas: Sequence[MetaData]
) -> DatabaseProblem | None:
    kind = _MYSQL_CODES.get(code)
    if kind is None:
        return DatabaseProblem("unavailable") if code in _MYSQL_DOWN else None
    if kind in ("foreign_key", "restrict") and (m := _MYSQL_FK.search(message)):
        cols = _split_cols(m["cols"])
        # For "restrict" the message names the *child* table; the client acted on the parent.
        if kind == "restrict":
            return DatabaseProblem(kind, [], None, m["name"])
        return DatabaseProblem(kind, _keys_for(metadatas, m["table"], cols), m["table"], m["name"])
    if kind == "not_null" and (m := _MYSQL_COLUMN.search(message)):
        return DatabaseProblem(kind, [m["col"]])
    name_match = _MYSQL_KEY.search(message) if kind == "unique" else _MYSQL_CHECK.search(message)
    if name_match is not None:
        name = name_match["name"]
        try:
            table, cols = _columns_of_constraint(metadatas, name)
        except LookupError:
            # MySQL names a single-column unique index after its column when unnamed.
            return DatabaseProblem(kind, [name] if kind == "unique" else [], None, name)
        return DatabaseProblem(kind, cols, table.name, name)
    return DatabaseProblem(kind)


def _classify_sqlite(
    exc: sa_exc.DBAPIError, orig: Any, metadatas: Sequence[MetaData]
) -> DatabaseProblem | None:
    message = str(orig.args[0]) if orig.args else ""
    lowered = message.lower()
    if isinstance(exc, sa_exc.OperationalError):
        return DatabaseProblem("unavailable") if lowered.startswith(_SQLITE_DOWN) else None
    kinds: dict[str, Kind] = {
        "UNIQUE": "unique",
        "NOT NULL": "not_null",
        "FOREIGN KEY": "foreign_key",
        "CHECK": "check",
    }
    kind = next((k for prefix, k in kinds.items() if message.startswith(prefix)), None)
    if kind is None:
        return None
    if kind == "foreign_key":
        return _sqlite_foreign_key(exc, metadatas)
    m = _SQLITE_COLS.search(message)
    if m is None:
        return DatabaseProblem(kind)
    if kind == "check":
        name = m["cols"].strip()
        try:
            table, cols = _columns_of_constraint(metadatas, name)
        except LookupError:
            return DatabaseProblem(kind, [], None, name)
        return DatabaseProblem(kind, cols, table.name, name)
    qualified = _split_cols(m["cols"])  # "table.col, table.col2"
    table_name = qualified[0].rpartition(".")[0] if qualified else None
    cols = [q.rpartition(".")[2] for q in qualified]
    return DatabaseProblem(kind, _keys_for(metadatas, table_name, cols), table_name)


def _sqlite_foreign_key(exc: sa_exc.DBAPIError, metadatas: Sequence[MetaData]) -> DatabaseProblem:
    """SQLite says only "FOREIGN KEY constraint failed": infer the field from the statement."""
    statement = exc.statement or ""
    if statement.lstrip().upper().startswith("DELETE"):
        return DatabaseProblem("restrict")
    m = _INSERT_TABLE.search(statement)
    if m is None:
        return DatabaseProblem("foreign_key")
    table_name = m["t"]
    for md in metadatas:
        table = md.tables.get(table_name)
        if table is None:
            continue
        params = exc.params if isinstance(exc.params, dict) else {}
        fk_cols = [c for c in table.columns if c.foreign_keys]
        # Prefer FK columns the statement actually set to a non-NULL value.
        named = [c.key for c in fk_cols if params.get(c.key) is not None]
        if statement.lstrip().upper().startswith("UPDATE") and not named:
            return DatabaseProblem("restrict", [], table_name)
        return DatabaseProblem("foreign_key", named or [c.key for c in fk_cols], table_name)
    return DatabaseProblem("foreign_key", [], table_name)


def _is_disconnect(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, (sa_exc.TimeoutError, sa_exc.DisconnectionError, OSError, TimeoutError)):
        # Pool exhausted, or the driver couldn't even open a socket (asyncpg raises bare OSError).
        return True
    if isinstance(exc, sa_exc.InterfaceError):
        return True
    orig = _orig(exc)
    sqlstate = getattr(orig, "sqlstate", None)
    # 57014: the statement ran past statement_timeout (or was cancelled): too busy to answer.
    if isinstance(sqlstate, str) and (
        sqlstate.startswith("08") or sqlstate in {"57014", "57P01", "57P03"}
    ):
        return True
    # asyncpg's own connection-level exception classes.
    return type(orig).__name__ in {
        "ConnectionDoesNotExistError",
        "InterfaceError",
        "CannotConnectNowError",
        "ConnectionFailureError",
    }


def _is_invalid_input(exc: BaseException, orig: BaseException) -> bool:
    """True when the database refused a *value*, not the statement: the client's doing."""
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str):  # PostgreSQL, through asyncpg or psycopg
        if sqlstate in _PG_INVALID:
            return True
        return sqlstate == "22000" and bool(_ASYNCPG_INVALID.match(str(orig)))
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):  # MariaDB/MySQL error number
        return args[0] in _MYSQL_INVALID
    # What's left is a driver's own PEP 249 DataError without a server code: psycopg refuses
    # NUL bytes in text before sending ("PostgreSQL text fields cannot contain NUL").
    return isinstance(exc, sa_exc.DataError)


def is_sqlite_overflow(exc: BaseException) -> bool:
    """True for sqlite3's refusal to bind an integer that doesn't fit in 64 bits."""
    return isinstance(exc, OverflowError) and _SQLITE_OVERFLOW in str(exc)


def is_unstorable_value(exc: BaseException) -> bool:
    """True when the driver refused a parameter *before sending it*: no row can match it.

    That is an integer outside the column's range for asyncpg (checked client-side) or beyond
    64 bits for sqlite3. Nothing reached the server, so the connection and its transaction are
    as they were, and a lookup by that key can simply find nothing.
    """
    if is_sqlite_overflow(exc):
        return True
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    orig = _orig(exc)
    return getattr(orig, "sqlstate", None) == "22000" and bool(_ASYNCPG_INVALID.match(str(orig)))


def classify(exc: BaseException, metadatas: Sequence[MetaData] = ()) -> DatabaseProblem | None:
    """Say what went wrong in database terms, or ``None`` if ``exc`` is not something to map.

    Args:
        exc: Any exception; SQLAlchemy and driver exceptions are recognised.
        metadatas: Model metadata used to map constraint names back to columns.

    Returns:
        The problem, or ``None`` for errors that are bugs (syntax errors, missing tables...)
        and should stay 500s.
    """
    if is_sqlite_overflow(exc):
        return DatabaseProblem("invalid")
    if not isinstance(exc, (sa_exc.SQLAlchemyError, OSError, TimeoutError)) and type(
        exc
    ).__module__.split(".")[0] not in {"asyncpg"}:
        return None
    if isinstance(exc, sa_exc.DBAPIError):
        orig = _orig(exc)
        if isinstance(getattr(orig, "sqlstate", None), str) and hasattr(orig, "constraint_name"):
            problem = _classify_postgres(orig, metadatas)
            if problem is not None:
                return problem
        args = getattr(orig, "args", ())
        if args and isinstance(args[0], int):
            problem = _classify_mysql(args[0], str(args[1]) if len(args) > 1 else "", metadatas)
            if problem is not None:
                return problem
        if type(orig).__module__.startswith("sqlite3"):
            problem = _classify_sqlite(exc, orig, metadatas)
            if problem is not None:
                return problem
        if _is_invalid_input(exc, orig):
            return DatabaseProblem("invalid")
    if _is_disconnect(exc):
        return DatabaseProblem("unavailable")
    return None


def to_http_exception(
    exc: BaseException, metadatas: Sequence[MetaData] = (), *, retry_after: int = 5
) -> HTTPException | None:
    """Build the HTTP error for a database exception, or ``None`` when it should stay a 500.

    An outage is logged here (logger ``transom.db``, WARNING, the driver's message, no
    traceback), once for the request that answers 503; a value the database refused is logged
    at INFO.

    Args:
        exc: The exception raised by SQLAlchemy or the driver.
        metadatas: Model metadata used to name fields from constraint names.
        retry_after: Seconds for the ``Retry-After`` header of 503 answers.
    """
    problem = classify(exc, metadatas)
    if problem is None:
        return None
    cause = _describe(exc)
    if problem.kind == "unavailable":
        # One line, no traceback: during an outage every request fails the same way, and a
        # traceback each would bury the cause. The 503 itself is not logged elsewhere.
        logger.warning("Database unavailable, answering 503: %s", cause)
        return HTTPException(
            503,
            detail="The database is unavailable; try again shortly.",
            headers={"Retry-After": str(retry_after)},
        )
    if problem.kind == "invalid":
        # The client's doing, so not a warning; but a bug that produces such values shows up
        # here rather than nowhere.
        logger.info("Database refused a value from the request, answering 422: %s", cause)
    return HTTPException(problem.status_code, detail=problem.detail())


def _describe(exc: BaseException) -> str:
    """The driver's own words, on one line (SQLAlchemy's text repeats the statement)."""
    orig = _orig(exc)
    text = " ".join(str(orig).split())
    if text:
        return f"{type(orig).__name__}: {text}"
    if isinstance(orig, TimeoutError):  # asyncpg's timeouts carry no message
        return "TimeoutError: no answer within connect_timeout / command_timeout"
    return type(orig).__name__
