"""``transom shell``: a Python (or IPython) shell with the app, its models and a session ready."""

from __future__ import annotations

import code
import sys
from typing import Any

import click

from transom.db.cli import _load_app, load_database
from transom.db.engine import Database

__all__ = ["shell", "shell_namespace"]


def _models(database: Database) -> dict[str, type]:
    """Every mapped class of every declarative base whose tables the database knows."""
    from sqlalchemy.orm import DeclarativeBase

    found: dict[str, type] = {}
    pending: list[type[Any]] = [DeclarativeBase]
    while pending:
        for sub in pending.pop().__subclasses__():
            pending.append(sub)
            table = sub.__dict__.get("__table__")
            if table is not None and any(table.metadata is md for md in database.metadatas):
                found.setdefault(sub.__name__, sub)
    return found


def shell_namespace(app: Any, database: Database) -> dict[str, Any]:
    """What the shell starts with: ``app``, ``database``, ``session`` (blocking), ``asession``
    (async, for ``await`` in IPython), every model by class name, ``select`` and ``func``."""
    import sqlalchemy

    namespace: dict[str, Any] = {
        "app": app,
        "database": database,
        "session": database.sync_session(),
        "asession": database.session(),
        "select": sqlalchemy.select,
        "func": sqlalchemy.func,
        "sa": sqlalchemy,
    }
    namespace.update(_models(database))
    return namespace


def _banner(namespace: dict[str, Any]) -> str:
    models = sorted(k for k, v in namespace.items() if isinstance(v, type) and k[0].isupper())
    return (
        f"Transom shell (Python {sys.version.split()[0]})\n"
        f"  database: {namespace['database']!r}\n"
        "  session: a blocking Session (session.scalars(select(Model)).all()); "
        "asession: the async one\n"
        f"  models: {', '.join(models) or '(none found)'}"
    )


@click.command()
@click.option("-c", "--command", "command", default=None, help="Run this code and exit.")
@click.option("--plain", is_flag=True, help="Use the plain Python shell even if IPython exists.")
@click.pass_context
def shell(ctx: click.Context, command: str | None, plain: bool) -> None:
    """Open a Python shell with the app, its models and a database session ready."""
    app = _load_app(ctx)
    database = load_database(ctx)
    namespace = shell_namespace(app, database)
    try:
        if command is not None:
            exec(compile(command, "<transom shell -c>", "exec"), namespace)
            return
        if not plain:
            try:
                from IPython import start_ipython
            except ImportError:
                pass
            else:
                click.echo(_banner(namespace))
                start_ipython(argv=[], user_ns=namespace, display_banner=False)
                return
        code.interact(banner=_banner(namespace), local=namespace, exitmsg="")
    finally:
        namespace["session"].close()
