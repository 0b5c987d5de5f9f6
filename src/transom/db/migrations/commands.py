"""Migration commands as a Python API (the ``transom db`` CLI is a thin layer over it)."""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import importlib.util
import io
import os
import re
import secrets
import shutil
import sys
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, TextIO, TypeVar, cast

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import event
from sqlalchemy.engine import Connection

from transom.db.config import DatabaseConfig
from transom.db.engine import Database, make_async_engine
from transom.db.migrations.runner import (
    DATABASE_ATTRIBUTE,
    NO_CHANGES_ATTRIBUTE,
    migration_options,
)

__all__ = [
    "BatteryMigrations",
    "MigrationError",
    "Migrations",
    "NotUpToDate",
    "battery_migrations",
    "run_on_connection",
]

T = TypeVar("T")
TEMPLATE_DIR = Path(__file__).with_name("template")
#: Entry-point group through which batteries ship migrations (see :class:`BatteryMigrations`).
ENTRY_POINT_GROUP = "transom.migrations"


class MigrationError(Exception):
    """A migration command failed for a reason the user can fix (the message says how)."""


class NotUpToDate(MigrationError):
    """The database is not at the latest migration."""


def _run_coroutine(coro: Coroutine[Any, Any, T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # Called from async code (a test, an app hook): give the coroutine a loop of its own.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def run_on_connection(config: DatabaseConfig, fn: Callable[[Connection], T]) -> T:
    """Run blocking ``fn(connection)`` on a fresh async connection and commit.

    Migrations use their own short-lived engine (no pool), so they work from the CLI, from a
    script, or from async code, with only the async driver installed.
    """

    async def go() -> T:
        engine = make_async_engine(config, pooled=False)
        if engine.dialect.name == "sqlite":
            # Batch mode rebuilds tables; enforcing foreign keys during the copy would fail or
            # cascade. (The pragma is ignored inside a transaction, hence on connect.)
            @event.listens_for(engine.sync_engine, "connect")
            def _fk_off(dbapi_connection: Any, _record: Any) -> None:
                dbapi_connection.cursor().execute("PRAGMA foreign_keys=OFF")

        try:
            async with engine.connect() as conn:
                result = await conn.run_sync(fn)
                await conn.commit()
            return result
        finally:
            await engine.dispose()

    return _run_coroutine(go())


def _next_rev_id(scripts: ScriptDirectory) -> str:
    # "0007_3fa2c1": ordered like Django's numbers, the random tail keeps two branches that
    # both add migration 0007 from clashing.
    numbers = [
        int(m.group(1))
        for rev in scripts.walk_revisions()
        if (m := re.match(r"(\d+)_", rev.revision))
    ]
    return f"{max(numbers, default=0) + 1:04d}_{secrets.token_hex(3)}"


class BatteryMigrations:
    """A battery's own migrations: an Alembic branch kept in the battery's package.

    A battery announces the module holding them in the ``transom.migrations`` entry-point group;
    the module defines ``VERSIONS`` (the folder of revision scripts), ``BRANCH`` (their branch
    label) and ``TABLE_PREFIX``. The branch is applied with the project's migrations only when
    the project's models include the battery's tables (Django's ``INSTALLED_APPS``, decided by
    what the app imports), so an app without users gets no user tables.
    """

    def __init__(self, name: str, versions: Path, branch: str, table_prefix: str) -> None:
        self.name = name
        self.versions = versions
        self.branch = branch
        self.table_prefix = table_prefix

    def used_by(self, database: Database) -> bool:
        """Whether ``database``'s models include this battery's tables."""
        return any(
            name.startswith(self.table_prefix) for md in database.metadatas for name in md.tables
        )

    def __repr__(self) -> str:
        return f"BatteryMigrations({self.name!r}, branch={self.branch!r})"


def battery_migrations() -> list[BatteryMigrations]:
    """Migrations of the batteries this process imported (``transom.migrations`` entry points)."""
    found: dict[str, BatteryMigrations] = {}
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in found:  # the same distribution seen twice on sys.path
            continue
        # A battery the app never imported is not in use: skip it without importing it, as
        # importing would add its models to the shared metadata.
        package = entry.value.rpartition(".")[0] or entry.value
        if package not in sys.modules:
            continue
        module = importlib.import_module(entry.value)
        found[entry.name] = BatteryMigrations(
            entry.name, Path(module.VERSIONS), module.BRANCH, module.TABLE_PREFIX
        )
    return [found[name] for name in sorted(found)]


class Migrations:
    """Alembic, configured for a Transom project: no ``alembic.ini``, no ``init`` step.

    Args:
        database: The database to migrate (its metadata is what autogenerate compares with).
        directory: The migrations directory (default ``config.migrations_dir``).
        stdout: Where command output goes (default: captured, see :attr:`output`).
    """

    def __init__(
        self,
        database: Database,
        directory: str | Path | None = None,
        *,
        stdout: IO[str] | None = None,
    ) -> None:
        self.database = database
        self.directory = Path(directory or database.config.migrations_dir).resolve()
        self.stdout: IO[str] = stdout if stdout is not None else io.StringIO()
        #: The batteries whose migration branches run with the project's.
        self.batteries = [b for b in battery_migrations() if b.used_by(database)]

    @property
    def versions(self) -> Path:
        """The folder of the project's own revision scripts."""
        return self.directory / "versions"

    @property
    def output(self) -> str:
        """Text printed by the commands so far (when ``stdout`` was not given)."""
        return self.stdout.getvalue() if isinstance(self.stdout, io.StringIO) else ""

    def ensure_directory(self) -> bool:
        """Create the migrations directory from Transom's template; True if it was created."""
        if (self.directory / "env.py").exists():
            return False
        (self.directory / "versions").mkdir(parents=True, exist_ok=True)
        shutil.copy(TEMPLATE_DIR / "env.py", self.directory / "env.py")
        shutil.copy(TEMPLATE_DIR / "script.py.mako", self.directory / "script.py.mako")
        return True

    @property
    def has_own(self) -> bool:
        """Whether the project has a migrations directory of its own."""
        return (self.directory / "env.py").exists()

    def config(self) -> Config:
        """The Alembic :class:`~alembic.config.Config` for this project."""
        if self.has_own:
            location = self.directory
        elif self.batteries:
            # No migration of the project's own (an app using only the batteries' tables):
            # like Django's `migrate` in a fresh project, apply the batteries' branches,
            # with Transom's template env.py (the same two lines a project gets).
            location = TEMPLATE_DIR
        else:
            raise MigrationError(
                f"no migrations in {self.directory}; create the first one with "
                '`transom db makemigrations -m "initial"`'
            )
        cfg = Config(stdout=cast(TextIO, self.stdout))
        cfg.set_main_option("script_location", str(location))
        # ConfigParser interpolation: a literal % is written %%.
        cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
        cfg.set_main_option("truncate_slug_length", "40")
        cfg.set_main_option("path_separator", "os")
        own = [str(self.versions)] if self.has_own else []
        locations = [*own, *(str(b.versions) for b in self.batteries)]
        cfg.set_main_option("version_locations", os.pathsep.join(locations))
        if importlib.util.find_spec("ruff") is not None:
            # Alembic writes its own quoting and wrapping; a project whose CI runs
            # `ruff format --check` gets new migrations formatted by its own ruff settings.
            hooks = "post_write_hooks"
            cfg.set_section_option(hooks, "hooks", "ruff")
            cfg.set_section_option(hooks, "ruff.type", "exec")
            cfg.set_section_option(hooks, "ruff.executable", sys.executable)
            cfg.set_section_option(
                hooks, "ruff.options", "-m ruff format --quiet REVISION_SCRIPT_FILENAME"
            )
        cfg.attributes[DATABASE_ATTRIBUTE] = self.database
        return cfg

    def scripts(self) -> ScriptDirectory:
        """The migration scripts on disk."""
        return ScriptDirectory.from_config(self.config())

    def make(self, message: str, *, empty: bool = False) -> Script | None:
        """Write a new migration; with autogenerate (default) it describes model changes.

        Args:
            message: What the migration does ("add article").
            empty: Write an empty migration to fill in by hand (data migrations).

        Returns:
            The new script, or ``None`` when autogenerate found no changes.

        Raises:
            NotUpToDate: the database has unapplied migrations (autogenerate compares against
                it, so it must be current).
        """
        self.ensure_directory()
        cfg = self.config()
        cfg.attributes["transom.autogenerate"] = not empty
        scripts = self.scripts()
        if not empty:
            # Autogenerate compares against the database, so the batteries' tables must be
            # there first; applying their branches is what `migrate` would do anyway.
            for battery in self.batteries:
                self._run(command.upgrade, f"{battery.branch}@head")
        rev_id = _next_rev_id(scripts)
        own_heads = self.project_heads(scripts)
        # The project's first migration starts a branch of its own and runs after the
        # batteries' (its models may point at their tables: an author_id to the user table).
        depends_on: list[str] = []
        if not own_heads:
            for battery in self.batteries:
                depends_on += [
                    head.revision
                    for head in scripts.get_revisions(f"{battery.branch}@head")
                    if head is not None
                ]
        try:
            script = command.revision(
                cfg,
                message=message,
                autogenerate=not empty,
                rev_id=rev_id,
                head=own_heads[0] if own_heads else "base",
                version_path=str(self.versions),
                # Typed as one id, but Alembic takes a list as migration scripts do.
                depends_on=cast(str | None, depends_on or None),
            )
        except CommandError as exc:
            if "not up to date" in str(exc):
                raise NotUpToDate(
                    "the database has unapplied migrations; run `transom db migrate` first"
                ) from exc
            raise MigrationError(str(exc)) from exc
        if cfg.attributes.get(NO_CHANGES_ATTRIBUTE):
            return None
        return script if isinstance(script, Script) else None

    def project_heads(self, scripts: ScriptDirectory | None = None) -> list[str]:
        """The newest revision(s) of the project's own migrations (not the batteries')."""
        scripts = scripts or self.scripts()
        own = self.versions.resolve()
        return sorted(
            head
            for head in scripts.get_heads()
            if Path(scripts.get_revision(head).path).resolve().parent == own
        )

    def _target(self, revision: str) -> str:
        # With battery branches there are several heads: "head" means all of them, and a
        # step down ("-1") counts along the project's own branch, as users expect.
        if not self.batteries:
            return revision
        if revision == "head":
            return "heads"
        if re.fullmatch(r"-\d+", revision):
            own = self.project_heads()
            if len(own) == 1:
                return f"{own[0]}@{revision}"
        return revision

    def upgrade(self, revision: str = "head", *, sql: bool = False) -> None:
        """Apply migrations up to ``revision`` (default: all). ``sql`` prints SQL instead."""
        self._run(command.upgrade, self._target(revision), sql=sql)

    def downgrade(self, revision: str = "-1", *, sql: bool = False) -> None:
        """Revert migrations down to ``revision`` (default: the last one; ``base``: all)."""
        self._run(command.downgrade, self._target(revision), sql=sql)

    def stamp(self, revision: str = "head") -> None:
        """Mark the database as being at ``revision`` without running anything."""
        self._run(command.stamp, self._target(revision))

    def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        try:
            fn(self.config(), *args, **kwargs)
        except CommandError as exc:
            raise MigrationError(str(exc)) from exc

    def history(self, *, verbose: bool = False) -> None:
        """Print the migrations, newest first."""
        self._run(command.history, verbose=verbose)

    def current_revisions(self) -> set[str]:
        """The revision(s) the database is at (empty when nothing was applied)."""

        def read(connection: Connection) -> set[str]:
            return set(MigrationContext.configure(connection).get_current_heads())

        return run_on_connection(self.database.config, read)

    def heads(self) -> set[str]:
        """The newest revision(s) on disk.

        A head that another branch depends on is not one: the database records only the
        dependent revision once both are applied, so this is what a current database shows.
        """
        return {script.revision for script in self.scripts().get_revisions("heads") if script}

    def current(self) -> None:
        """Print the revision the database is at."""
        self._run(command.current)

    def check(self) -> list[Any]:
        """Compare the models with the database at head; return the differences.

        Raises:
            NotUpToDate: the database is not at the latest migration.
        """
        heads = self.heads()
        metadata = self.database.metadatas
        options = migration_options(
            metadata[0] if len(metadata) == 1 else metadata,
            ignore=self.database.config.migrations_ignore,
        )
        options.pop("process_revision_directives")

        def compare(connection: Connection) -> tuple[set[str], list[Any]]:
            context = MigrationContext.configure(connection, opts=options)
            current = set(context.get_current_heads())
            if current != heads:
                return current, []
            return current, list(compare_metadata(context, options["target_metadata"]))

        current, diffs = run_on_connection(self.database.config, compare)
        if current != heads:
            raise NotUpToDate(
                f"the database is at {sorted(current) or 'no revision'}, the migrations' head "
                f"is {sorted(heads) or 'empty'}: run `transom db migrate`"
            )
        return diffs
