"""Battery tables made before AUTOINCREMENT get it on SQLite (auth_0004, admin_0003).

On every engine: the old-shape tables, made by the earlier battery migrations and filled with
rows, are upgraded; rows, ids, indexes, unique constraints and foreign keys come through; a
deleted newest row's id is not handed out again; the downgrade gives the old shape back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Connection

from transom.db import DatabaseConfig
from transom.db.migrations import run_on_connection, sqlite_autoincrement

from .test_migrations import _battery_metadata, migrations_for

OLD = ("auth@auth_0003", "admin@admin_0002")

# Columns for one more row of each rebuilt table (the id left to the database).
NEW_ROW: dict[str, dict[str, Any]] = {
    "transom_auth_user": {
        "username": "new",
        "email": "new@example.com",
        "password": "x",
        "first_name": "",
        "last_name": "",
        "is_active": True,
        "is_staff": False,
        "is_superuser": False,
        "email_verified": False,
    },
    "transom_auth_group": {"name": "new group"},
    "transom_auth_permission": {"codename": "new_perm", "name": "New permission"},
    "transom_auth_api_token": {"user_id": "1", "name": "new", "prefix": "pnew", "digest": "d"},
    "transom_auth_social_account": {
        "provider": "github",
        "subject": "new",
        "user_id": "1",
        "email": "n@example.com",
    },
    "transom_admin_log": {
        "action_time": datetime(2026, 1, 1, tzinfo=UTC),
        "user_id": "1",
        "user_repr": "admin",
        "model_key": "auth.user",
        "object_id": "1",
        "object_repr": "admin",
        "action": "change",
        "changes": {},
        "message": "",
    },
}
# The unique column of each table, given a distinct value per row.
UNIQUE = {
    "transom_auth_user": "username",
    "transom_auth_group": "name",
    "transom_auth_permission": "codename",
    "transom_auth_api_token": "prefix",
    "transom_auth_social_account": "subject",
}
LINKS = [
    "transom_auth_user_groups",
    "transom_auth_user_permissions",
    "transom_auth_group_permissions",
]


@pytest.fixture
def fresh_url(servers: Any, backend: str) -> str:
    url: str = servers.url(backend, fresh=True)
    return url


TABLES = _battery_metadata().tables


def _insert(conn: Connection, table: str, rows: list[dict[str, Any]]) -> None:
    conn.execute(TABLES[table].insert(), rows)  # typed: each engine gets its own values


def _seed(conn: Connection) -> None:
    for table, row in NEW_ROW.items():
        rows = []
        for i in (1, 2, 3):
            values = dict(row)  # ids 1, 2, 3 from the engine (a sequence on PostgreSQL)
            if table in UNIQUE:
                values[UNIQUE[table]] += str(i)
            rows.append(values)
        _insert(conn, table, rows)
    _insert(
        conn,
        "transom_auth_user_groups",
        [{"user_id": 1, "group_id": 1}, {"user_id": 3, "group_id": 3}],
    )
    _insert(conn, "transom_auth_user_permissions", [{"user_id": 3, "permission_id": 3}])
    _insert(
        conn,
        "transom_auth_group_permissions",
        [{"group_id": 3, "permission_id": 3}, {"group_id": 1, "permission_id": 2}],
    )


def _rows(conn: Connection) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    for table in [*NEW_ROW, *LINKS]:
        result = conn.execute(text(f"SELECT * FROM {table}"))
        out[table] = sorted(tuple(str(v) for v in row) for row in result)
    return out


def _shape(conn: Connection) -> dict[str, Any]:
    insp = inspect(conn)
    out: dict[str, Any] = {}
    for table in [*NEW_ROW, *LINKS]:
        out[table] = {
            "columns": [
                (c["name"], c["nullable"], str(c["type"])) for c in insp.get_columns(table)
            ],
            "pk": insp.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in insp.get_indexes(table)
            ),
            "uniques": sorted(
                (u["name"], tuple(u["column_names"])) for u in insp.get_unique_constraints(table)
            ),
            "fks": sorted(
                (f["name"], tuple(f["constrained_columns"]), f["referred_table"], str(f["options"]))
                for f in insp.get_foreign_keys(table)
            ),
        }
    return out


def _sqlite_sql(conn: Connection, table: str) -> str:
    sql = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = :n"), {"n": table})
    return str(sql.scalar_one())


def _delete_newest_then_insert(conn: Connection, table: str) -> tuple[int, int]:
    newest = conn.execute(text(f"SELECT max(id) FROM {table}")).scalar_one()
    conn.execute(text(f"DELETE FROM {table} WHERE id = :id"), {"id": newest})
    row = dict(NEW_ROW[table])
    if table in UNIQUE:
        row[UNIQUE[table]] += "-again"
    _insert(conn, table, [row])
    new_id = conn.execute(text(f"SELECT max(id) FROM {table}")).scalar_one()
    return int(newest), int(new_id)


def test_battery_tables_stop_reusing_ids(fresh_url: str, tmp_path: Path) -> None:
    config = DatabaseConfig(url=fresh_url)
    sqlite = fresh_url.startswith("sqlite")
    migrations = migrations_for(fresh_url, _battery_metadata(), tmp_path / "migrations")
    for target in (*OLD, "tasks@head"):
        migrations.upgrade(target)
    run_on_connection(config, _seed)
    old_shape = run_on_connection(config, _shape)
    seeded = run_on_connection(config, _rows)
    if sqlite:
        # the old shape: a deleted newest id comes back (what this migration is for)
        assert "AUTOINCREMENT" not in run_on_connection(
            config, lambda c: _sqlite_sql(c, "transom_auth_user")
        )

    migrations.upgrade()
    assert migrations.check() == []
    assert run_on_connection(config, _rows) == seeded  # every row and link row, same ids
    assert run_on_connection(config, _shape) == old_shape  # indexes, uniques, FKs kept
    for table in NEW_ROW:
        if sqlite:
            assert "AUTOINCREMENT" in run_on_connection(config, partial(_sqlite_sql, table=table))
        deleted, new = run_on_connection(config, partial(_delete_newest_then_insert, table=table))
        assert (deleted, new) == (3, 4), table  # 3 is not handed out again

    after = run_on_connection(config, _rows)
    for target in OLD:
        migrations.downgrade(target)
    assert run_on_connection(config, _rows) == after
    assert run_on_connection(config, _shape) == old_shape
    if sqlite:
        for table in NEW_ROW:
            assert "AUTOINCREMENT" not in run_on_connection(
                config, partial(_sqlite_sql, table=table)
            )
        # without AUTOINCREMENT, SQLite hands out max(id) + 1 again (ids 1, 2, 4: deleting 4
        # gives 3): the checks above can fail
        assert run_on_connection(
            config, lambda c: _delete_newest_then_insert(c, "transom_admin_log")
        ) == (4, 3)
    migrations.upgrade()
    assert migrations.check() == []


def test_refuses_to_rebuild_with_foreign_keys_enforced(tmp_path: Path) -> None:
    # With enforcement on, dropping the old copy of the group table would delete its links.
    engine = create_engine(f"sqlite:///{tmp_path / 'fk.sqlite3'}")

    @event.listens_for(engine, "connect")
    def _fk_on(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA foreign_keys=ON")

    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE grp (id INTEGER PRIMARY KEY, name TEXT)"))
        conn.execute(
            text("CREATE TABLE link (grp_id INTEGER REFERENCES grp(id) ON DELETE CASCADE)")
        )
        conn.execute(text("INSERT INTO grp VALUES (1, 'a')"))
        conn.execute(text("INSERT INTO link VALUES (1)"))
        with (
            Operations.context(MigrationContext.configure(conn)),
            pytest.raises(RuntimeError, match="foreign keys enforced"),
        ):
            sqlite_autoincrement("grp")
        assert conn.execute(text("SELECT count(*) FROM link")).scalar_one() == 1
        assert "AUTOINCREMENT" not in _sqlite_sql(conn, "grp")
    engine.dispose()
