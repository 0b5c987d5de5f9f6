"""What runs inside Alembic's ``env.py``: connect, configure autogenerate, run the migrations."""

from __future__ import annotations

import fnmatch
import importlib
import re
from collections.abc import Callable, Sequence
from typing import Any

from alembic import context
from alembic.autogenerate.api import AutogenContext
from alembic.operations import MigrationScript, ops
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.sql.schema import MetaData

from transom.db.config import DatabaseConfig, sync_url
from transom.db.engine import Database
from transom.db.types import UTCDateTime

__all__ = ["DATABASE_ATTRIBUTE", "ignore_tables", "migration_options", "run_migrations"]

#: ``alembic.config.Config.attributes`` key under which the CLI passes the app's Database.
DATABASE_ATTRIBUTE = "transom.database"
#: Set by ``makemigrations`` when autogenerate found nothing (no empty file is written).
NO_CHANGES_ATTRIBUTE = "transom.no_changes"


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | bool:
    # Transom's own column types are rendered as ``transom.db.types.X()``: import that module.
    module = type(obj).__module__
    if type_ == "type" and module.startswith("transom.") and autogen_context.imports is not None:
        autogen_context.imports.add(f"import {module}")
    return False  # default rendering


def _skip_empty(
    context: MigrationContext, revision: Any, directives: list[MigrationScript]
) -> None:
    config = context.config
    if config is None or not directives:
        return
    cmd_opts = getattr(config, "cmd_opts", None)
    autogenerate = getattr(cmd_opts, "autogenerate", False) or config.attributes.get(
        "transom.autogenerate", False
    )
    script = directives[0]
    if autogenerate and script.upgrade_ops is not None and script.upgrade_ops.is_empty():
        # Like Django: "No changes detected" instead of an empty migration file.
        directives[:] = []
        config.attributes[NO_CHANGES_ATTRIBUTE] = True
        return
    if script.downgrade_ops is not None:
        _skip_index_drops_of_dropped_tables(script.downgrade_ops)


def _skip_index_drops_of_dropped_tables(container: ops.OpContainer) -> None:
    # Autogenerate drops a table's indexes before the table; MySQL/MariaDB refuse to drop an
    # index a foreign key needs. Dropping the table drops its indexes anyway.
    dropped = {op.table_name for op in container.ops if isinstance(op, ops.DropTableOp)}
    if not dropped:
        return
    kept: list[ops.MigrateOperation] = []
    for op in container.ops:
        if isinstance(op, ops.DropIndexOp) and op.table_name in dropped:
            continue
        if isinstance(op, ops.ModifyTableOps) and op.table_name in dropped:
            op.ops = [o for o in op.ops if not isinstance(o, ops.DropIndexOp)]
            if not op.ops:
                continue
        kept.append(op)
    container.ops = kept


_NOW_SPELLINGS = frozenset(
    {"now()", "current_timestamp", "current_timestamp()", "current_timestamp(6)", "localtimestamp"}
)
_PG_CAST = re.compile(r"::[a-z ]+(\[\])?$")


def _normalize_default(text: str | None) -> str | None:
    if text is None:
        return None
    value = text.strip()
    while value.startswith("(") and value.endswith(")"):
        value = value[1:-1].strip()
    value = _PG_CAST.sub("", value.lower())  # PostgreSQL reflects ''::character varying
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return "current_timestamp" if value in _NOW_SPELLINGS else value


def _compare_server_default(
    context: MigrationContext,
    inspected_column: Any,
    metadata_column: Any,
    inspected_default: str | None,
    metadata_default: Any,
    rendered_metadata_default: str | None,
) -> bool | None:
    # Engines echo defaults back in their own spelling ("('')", "''::text", "current_timestamp()")
    # which Alembic sometimes reads as a change. Equal after normalising means unchanged; anything
    # else is left to Alembic's per-engine comparison.
    if _normalize_default(inspected_default) == _normalize_default(rendered_metadata_default):
        return False
    return None


def _compare_type(
    context: MigrationContext,
    inspected_column: Any,
    metadata_column: Any,
    inspected_type: Any,
    metadata_type: Any,
) -> bool | None:
    # Alembic reads DATETIME and DATETIME(6) as the same type on MySQL/MariaDB, so a table made
    # before UTCDateTime became DATETIME(6) there would silently keep whole seconds: report it,
    # and makemigrations writes the ALTER. Anything else is Alembic's own comparison.
    mysql = context.dialect.name in ("mysql", "mariadb")
    if mysql and isinstance(metadata_type, UTCDateTime) and getattr(inspected_type, "fsp", 0) != 6:
        return True
    return None


def ignore_tables(patterns: Sequence[str]) -> Callable[..., bool]:
    """An ``include_object`` hook leaving alone database tables no model maps that match.

    Without it autogenerate would drop tables it doesn't know, such as the ones batteries
    create for themselves (``transom_sessions``).
    """

    def include_object(
        obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        if type_ == "table" and reflected and compare_to is None and name is not None:
            return not any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)
        return True

    return include_object


def migration_options(
    metadata: MetaData | Sequence[MetaData], *, ignore: Sequence[str] = ()
) -> dict[str, Any]:
    """The ``context.configure`` options Transom uses, for projects that customise env.py.

    - ``render_as_batch``: migrations generated on any engine also run on SQLite, whose ALTER
      TABLE can't drop or alter columns (on PostgreSQL/MariaDB batch ops are plain ALTERs);
    - ``compare_type`` and ``compare_server_default``: autogenerate sees type and default
      changes, not only added/removed columns;
    - one transaction per migration, so a failure leaves the database at the last good one;
    - tables matching ``ignore`` that no model maps are left alone (see :func:`ignore_tables`).
    """
    return {
        "include_object": ignore_tables(ignore),
        "target_metadata": metadata,
        "render_as_batch": True,
        "compare_type": _compare_type,
        "compare_server_default": _compare_server_default,
        "render_item": _render_item,
        "process_revision_directives": _skip_empty,
        "transaction_per_migration": True,
    }


def _database_from_environment() -> Database:
    # Plain `alembic` (or a custom script) ran this env.py: build everything from settings.
    config = DatabaseConfig()
    for module in config.models:
        importlib.import_module(module)
    return Database(config)


def run_migrations(**overrides: Any) -> None:
    """Run the migrations Alembic asked for; call this from a project's ``env.py``.

    Args:
        **overrides: Extra or replacement ``context.configure`` options.
    """
    from transom.db.migrations.commands import run_on_connection

    alembic_config = context.config
    database = alembic_config.attributes.get(DATABASE_ATTRIBUTE) or _database_from_environment()
    metadata: MetaData | list[MetaData] = (
        database.metadatas[0] if len(database.metadatas) == 1 else database.metadatas
    )
    options = migration_options(metadata, ignore=database.config.migrations_ignore) | overrides

    if context.is_offline_mode():
        url = sync_url(database.config.url)
        context.configure(
            url=url.render_as_string(hide_password=False),
            literal_binds=True,
            dialect_opts={"paramstyle": "named"},
            **options,
        )
        with context.begin_transaction():
            context.run_migrations()
        return

    def migrate(connection: Connection) -> None:
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            context.run_migrations()

    given: Connection | None = alembic_config.attributes.get("connection")
    if given is not None:
        migrate(given)
    else:
        run_on_connection(database.config, migrate)
