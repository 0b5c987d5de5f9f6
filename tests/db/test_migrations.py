"""Migrations up and down on every engine: autogenerate, apply, check, revert, data migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import ForeignKey, Index, MetaData, String, Text, UniqueConstraint, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, mapped_column

from transom.db import Database, DatabaseConfig, TimestampMixin, make_base
from transom.db.migrations import (
    Migrations,
    NotUpToDate,
    migration_options,
    run_on_connection,
)


def models_v1() -> Any:
    base = make_base()

    class Article(base):  # type: ignore[misc,valid-type]
        id: Mapped[int] = mapped_column(primary_key=True)
        slug: Mapped[str] = mapped_column(unique=True)
        title: Mapped[str]

    return base.metadata


def models_v2() -> Any:
    base = make_base()

    class Author(base):  # type: ignore[misc,valid-type]
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(100))

    class Article(TimestampMixin, base):  # type: ignore[misc,valid-type]
        __table_args__ = (Index(None, "title"),)
        id: Mapped[int] = mapped_column(primary_key=True)
        slug: Mapped[str] = mapped_column(unique=True)
        title: Mapped[str]
        body: Mapped[str] = mapped_column(Text, server_default="")
        views: Mapped[int] = mapped_column(server_default=text("0"))
        author_id: Mapped[int | None] = mapped_column(ForeignKey("author.id"))

    return base.metadata


def models_v3() -> Any:
    base = make_base()

    class Author(base):  # type: ignore[misc,valid-type]
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(100))

    class Article(TimestampMixin, base):  # type: ignore[misc,valid-type]
        __table_args__ = (Index(None, "title"), UniqueConstraint("author_id", "title"))
        id: Mapped[int] = mapped_column(primary_key=True)
        slug: Mapped[str] = mapped_column(unique=True)
        title: Mapped[str] = mapped_column(String(300))  # type change
        views: Mapped[int] = mapped_column(server_default=text("1"))  # default change
        author_id: Mapped[int | None] = mapped_column(ForeignKey("author.id"))
        # body dropped: SQLite needs batch mode for this

    return base.metadata


@pytest.fixture
def fresh_url(servers: Any, backend: str) -> str:
    url: str = servers.url(backend, fresh=True)
    return url


def migrations_for(url: str, metadata: Any, directory: Path) -> Migrations:
    return Migrations(Database(DatabaseConfig(url=url), metadata=metadata), directory)


def schema(url: str) -> dict[str, Any]:
    def read(conn: Connection) -> dict[str, Any]:
        insp = inspect(conn)
        names = insp.get_table_names()
        tables = {t for t in names if t != "alembic_version" and not t.startswith("transom_")}
        out: dict[str, Any] = {"tables": tables}
        if "article" in tables:
            out["columns"] = {c["name"] for c in insp.get_columns("article")}
            out["indexes"] = {i["name"] for i in insp.get_indexes("article")}
            out["uniques"] = {u["name"] for u in insp.get_unique_constraints("article")}
            out["fks"] = {f["name"] for f in insp.get_foreign_keys("article")}
        return out

    return run_on_connection(DatabaseConfig(url=url), read)


def test_migrations_up_and_down(fresh_url: str, tmp_path: Path) -> None:
    directory = tmp_path / "migrations"

    m1 = migrations_for(fresh_url, models_v1(), directory)
    first = m1.make("create article")
    assert first is not None
    assert first.revision.startswith("0001_")
    assert (directory / "env.py").exists()
    m1.upgrade()
    assert schema(fresh_url)["tables"] == {"article"}
    assert m1.check() == []
    # A table a battery made for itself (no model maps it) is not dropped by autogenerate.
    run_on_connection(
        DatabaseConfig(url=fresh_url),
        lambda conn: conn.execute(text("CREATE TABLE transom_sessions (k INTEGER PRIMARY KEY)")),
    )
    assert m1.check() == []
    assert m1.make("nothing") is None  # no empty migration file when nothing changed

    m2 = migrations_for(fresh_url, models_v2(), directory)
    diffs = {d[0] if isinstance(d, tuple) else d[0][0] for d in m2.check()}
    assert {"add_table", "add_column", "add_index", "add_fk"} <= diffs
    second = m2.make("authors, timestamps, body")
    assert second is not None
    source = Path(second.path).read_text()
    assert "batch_alter_table" in source
    assert "server_default" in source
    m2.upgrade()
    s = schema(fresh_url)
    assert s["tables"] == {"article", "author"}
    assert {"body", "views", "author_id", "created_at", "updated_at"} <= s["columns"]
    assert "ix_article_title" in s["indexes"]
    assert "fk_article_author_id_author" in s["fks"]
    assert m2.check() == [], m2.check()

    m3 = migrations_for(fresh_url, models_v3(), directory)
    kinds = [d[0] if isinstance(d, tuple) else d[0][0] for d in m3.check()]
    assert "remove_column" in kinds
    assert "add_constraint" in kinds or "add_index" in kinds  # MySQL reports uniques as indexes
    assert "modify_type" in kinds
    assert "modify_default" in kinds
    third = m3.make("drop body, unique author+title")
    assert third is not None
    m3.upgrade()
    s = schema(fresh_url)
    assert "body" not in s["columns"]
    assert "uq_article_author_id_title" in s["uniques"] | s["indexes"]
    assert m3.check() == [], m3.check()

    # Down one step, then to a given revision, then all the way; then back up.
    m3.downgrade()
    assert "body" in schema(fresh_url)["columns"]
    assert m3.current_revisions() == {second.revision}
    m3.downgrade(first.revision)
    assert schema(fresh_url)["tables"] == {"article"}
    m3.downgrade("base")
    assert schema(fresh_url)["tables"] == set()
    with pytest.raises(NotUpToDate):
        m3.check()
    m3.upgrade(second.revision)
    assert m3.current_revisions() == {second.revision}
    m3.upgrade()
    assert m3.check() == []
    # Deleting a model is detected (only `transom_*` tables are ignored).
    removed = migrations_for(fresh_url, models_v1(), directory).check()
    assert ("remove_table", "author") in [
        (d[0], d[1].name) for d in removed if d[0] == "remove_table"
    ]


def test_data_migration(fresh_url: str, tmp_path: Path) -> None:
    directory = tmp_path / "migrations"
    m = migrations_for(fresh_url, models_v1(), directory)
    assert m.make("create article") is not None
    data = m.make("backfill titles", empty=True)
    assert data is not None
    path = Path(data.path)
    source = path.read_text()
    source = source.replace(
        "def upgrade() -> None:\n    pass",
        "def upgrade() -> None:\n"
        "    article = sa.table('article', sa.column('slug', sa.String), "
        "sa.column('title', sa.String))\n"
        "    op.bulk_insert(article, [{'slug': 'a', 'title': 'draft'}, "
        "{'slug': 'b', 'title': 'draft'}])\n"
        "    op.execute(article.update().where(article.c.slug == 'b').values(title='final'))",
    ).replace(
        "def downgrade() -> None:\n    pass",
        "def downgrade() -> None:\n    op.execute(sa.text('DELETE FROM article'))",
    )
    path.write_text(source)
    m.upgrade()

    def titles(conn: Connection) -> list[tuple[str, str]]:
        rows = conn.execute(text("SELECT slug, title FROM article ORDER BY slug"))
        return [(r[0], r[1]) for r in rows]

    config = DatabaseConfig(url=fresh_url)
    assert run_on_connection(config, titles) == [("a", "draft"), ("b", "final")]
    m.downgrade()
    assert run_on_connection(config, titles) == []


def _battery_metadata() -> Any:
    # The batteries' tables, copied off the shared Model.metadata (other tests add theirs).
    import transom.admin.history
    import transom.auth.user
    import transom.tasks.outbox  # noqa: F401  (their tables register on Model.metadata)
    from transom.db import NAMING_CONVENTION, Model

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    for name, table in Model.metadata.tables.items():
        if name.startswith(("transom_auth_", "transom_admin_", "transom_tasks_")):
            table.to_metadata(metadata)
    return metadata


def _datetime_columns(url: str) -> dict[str, str]:
    def read(conn: Connection) -> dict[str, str]:
        insp = inspect(conn)
        found = {}
        for table in ("transom_auth_user", "transom_admin_log", "transom_tasks_outbox"):
            for column in insp.get_columns(table):
                kind = column["type"]
                if "TIME" in str(kind).upper():
                    # MySQL's DATETIME prints the same with or without its fraction digits
                    found[f"{table}.{column['name']}"] = f"{kind}/{getattr(kind, 'fsp', None)}"
        return found

    return run_on_connection(DatabaseConfig(url=url), read)


def test_battery_timestamps_move_to_microseconds(fresh_url: str, tmp_path: Path) -> None:
    # Tables made before Transom 0.2 have whole-second DATETIME on MariaDB: the batteries'
    # migrations (auth_0003, admin_0002, tasks_0002) widen them and step back on downgrade;
    # other engines keep microseconds already and the migrations leave them alone.
    migrations = migrations_for(fresh_url, _battery_metadata(), tmp_path / "migrations")
    migrations.upgrade()
    assert migrations.check() == []
    widened = _datetime_columns(fresh_url)
    assert widened["transom_auth_user.date_joined"]
    mariadb = fresh_url.startswith("mysql")
    if mariadb:
        assert set(widened.values()) == {"DATETIME/6"}, widened
    for target in ("auth@auth_0002", "admin@admin_0001", "tasks@tasks_0001"):
        migrations.downgrade(target)
    if mariadb:
        assert set(_datetime_columns(fresh_url).values()) == {"DATETIME/None"}
        # and autogenerate sees a whole-second column as a change (Alembic alone would not)
        only_log = MetaData()
        _battery_metadata().tables["transom_admin_log"].to_metadata(only_log)

        def compare(conn: Connection) -> list[Any]:
            options = migration_options(only_log)
            context = MigrationContext.configure(conn, opts=options)
            return list(compare_metadata(context, only_log))

        changes = [str(c) for c in run_on_connection(DatabaseConfig(url=fresh_url), compare)]
        assert any("modify_type" in c and "action_time" in c for c in changes), changes
    migrations.upgrade()
    assert _datetime_columns(fresh_url) == widened
    assert migrations.check() == []
