"""Database errors on the command line, as one paragraph that names the variable to fix.

Registered in the ``transom.cli_errors`` entry-point group: the ``transom`` command asks this
module about any error a command didn't handle. A bad ``DATABASE_URL`` (a typo'd scheme, an
unparsable string, a server that is down, a missing database, refused credentials, a driver
that isn't installed) otherwise surfaces as a long SQLAlchemy traceback that never says where
the URL came from.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url

from transom.exceptions import ImproperlyConfigured

__all__ = ["DRIVER_EXTRAS", "driver_required", "explain", "mask_url", "missing_driver_message"]

#: The extra of ``transom`` that installs each database driver.
DRIVER_EXTRAS: dict[str, str] = {
    "asyncpg": "postgres",
    "psycopg": "postgres",
    "psycopg2": "postgres",
    "aiomysql": "mysql",
    "pymysql": "mysql",
    "MySQLdb": "mysql",
}
_ENV_NAMES = ("TRANSOM_DATABASE_URL", "DATABASE_URL")
_MISSING_DATABASE = (
    re.compile(r'database "(?P<name>[^"]+)" does not exist'),  # PostgreSQL
    re.compile(r"Unknown database '(?P<name>[^']+)'"),  # MariaDB/MySQL 1049
)
_UNREACHABLE = (
    "connection refused",
    "connect call failed",
    "can't connect to",
    "could not connect",
    "could not translate host name",
    "name or service not known",
    "temporary failure in name resolution",
    "nodename nor servname",
    "timed out",
    "timeout",
    "no route to host",
    "network is unreachable",
)
_CREDENTIALS = (
    "password authentication failed",
    "access denied for user",
    "no password supplied",
)
_ROLE = re.compile(r'role "(?P<name>[^"]+)" does not exist')


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, even when it doesn't parse."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        # Whatever sits between a colon and an '@' may be a password.
        return re.sub(r":[^:@/\s]*@", ":***@", url)


def _variable() -> str:
    for name in _ENV_NAMES:
        if os.environ.get(name):
            return name
    return "DATABASE_URL"


def _configured_url(ctx: Any) -> str | None:
    # The app's Database, when the command got that far; else what the environment says.
    app = ctx.find_root().meta.get("transom.app") if ctx is not None else None
    database = getattr(app, "extensions", {}).get("transom.db") if app is not None else None
    config = getattr(database, "config", None)
    url = getattr(config, "url", None)
    if isinstance(url, str):
        return url
    for name in _ENV_NAMES:
        if os.environ.get(name):
            return os.environ[name]
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def missing_driver_message(exc: ImportError, url: str | None = None) -> str | None:
    """The advice for a database driver that isn't installed, or ``None`` for another import."""
    extra = DRIVER_EXTRAS.get((exc.name or "").partition(".")[0])
    if extra is None:
        return None
    where = f" ({mask_url(url)})" if url else ""
    return (
        f"The database URL in {_variable()}{where} needs the {exc.name} driver, which is not "
        f"installed. Install Transom with the {extra} extra: pip install 'transom[{extra}]'."
    )


@contextmanager
def driver_required(url: str | URL) -> Iterator[None]:
    """Around creating an engine: a driver that isn't installed raises
    :class:`~transom.exceptions.ImproperlyConfigured` naming the extra that installs it."""
    try:
        yield
    except ImportError as exc:
        shown = url.render_as_string(hide_password=True) if isinstance(url, URL) else url
        message = missing_driver_message(exc, shown)
        if message is None:
            raise
        raise ImproperlyConfigured(message) from exc


def explain(exc: BaseException, ctx: Any = None) -> str | None:
    """One paragraph for a database error a command didn't handle, or ``None`` if it isn't one."""
    url = _configured_url(ctx)
    variable = _variable()
    shown = f"{variable} ({mask_url(url)})" if url else variable
    for error in _chain(exc):
        if isinstance(error, ImportError):
            message = missing_driver_message(error, url)
            if message:
                return message
        if isinstance(error, sa_exc.NoSuchModuleError):
            scheme = mask_url(url).partition(":")[0] if url else "its scheme"
            return (
                f"{shown} names a database SQLAlchemy doesn't know ({scheme!r}). Use "
                "postgresql://, mysql://, mariadb:// or sqlite:/// (a driver may follow a '+')."
            )
        if isinstance(error, sa_exc.ArgumentError) and "URL" in str(error):
            return (
                f"{shown} is not a database URL. Expected "
                "dialect://user:password@host:port/database, for example "
                "postgresql://app@localhost/app or sqlite:///db.sqlite3."
            )
    text = " ".join(str(exc).split())
    lowered = text.lower()
    for pattern in _MISSING_DATABASE:
        found = pattern.search(text)
        if found:
            name = found.group("name")
            create = (
                f"createdb {name}"
                if pattern is _MISSING_DATABASE[0]
                else (f"CREATE DATABASE `{name}`")
            )
            return (
                f"The database {name!r} named by {shown} does not exist on that server: "
                f"create it ({create}), or correct the name in {variable}."
            )
    role = _ROLE.search(text)
    if role or any(marker in lowered for marker in _CREDENTIALS):
        return (
            f"The database server refused the user or password of {shown}"
            + (f" (no role {role.group('name')!r})" if role else "")
            + f". Correct them in {variable}."
        )
    unreachable = any(isinstance(e, ConnectionError | TimeoutError) for e in _chain(exc))
    if unreachable or any(marker in lowered for marker in _UNREACHABLE):
        return (
            f"Could not reach the database server of {shown}: is it running, and is the host "
            f"and port in {variable} right? ({_first_line(exc)})"
        )
    if any(isinstance(e, sa_exc.DBAPIError) for e in _chain(exc)):
        return f"The database of {shown} failed: {_first_line(exc)}"
    return None


def _first_line(exc: BaseException) -> str:
    # SQLAlchemy appends its background link and the statement on further lines.
    for error in _chain(exc):
        orig = getattr(error, "orig", None)
        if orig is not None:
            text = str(orig).strip().splitlines()
            return text[0] if text else type(orig).__name__
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
