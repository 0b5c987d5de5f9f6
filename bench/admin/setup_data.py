"""Create the benchmark database: ``bench_author`` (1,000 rows) and ``bench_item`` (1,000,000).

Both admins map these same tables. Run by run.py when the data is missing; ``--force``
rebuilds it. ``BENCH_ADMIN_ENGINE=mariadb`` builds it on MariaDB instead of PostgreSQL.
"""

from __future__ import annotations

import argparse
import time

from common import AUTHORS, DATABASE_URL, ENGINE, ROWS
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

POSTGRES_SCHEMA = [
    "DROP TABLE IF EXISTS bench_item",
    "DROP TABLE IF EXISTS bench_author",
    """CREATE TABLE bench_author (
        id serial PRIMARY KEY, name varchar(100) NOT NULL, email varchar(200) NOT NULL)""",
    """CREATE TABLE bench_item (
        id bigserial PRIMARY KEY,
        name varchar(200) NOT NULL,
        email varchar(200) NOT NULL,
        active boolean NOT NULL,
        status varchar(20) NOT NULL,
        score integer NOT NULL,
        created_at timestamptz NOT NULL,
        author_id integer NOT NULL REFERENCES bench_author (id))""",
    "CREATE INDEX bench_item_author_id ON bench_item (author_id)",
]
POSTGRES_DATA = [
    "INSERT INTO bench_author (name, email) SELECT 'Author ' || g, "
    "'author' || g || '@example.com' FROM generate_series(1, :a) g",
    "INSERT INTO bench_item (name, email, active, status, score, created_at, author_id) "
    "SELECT 'Item ' || g, 'user' || g || '@example.com', g % 3 <> 0, "
    "(ARRAY['draft', 'review', 'published'])[1 + g % 3], g % 1000, "
    "now() - make_interval(secs => g), 1 + g % :a FROM generate_series(1, :n) g",
    "VACUUM ANALYZE bench_author",
    "VACUUM ANALYZE bench_item",
]
MARIADB_SCHEMA = [
    "DROP TABLE IF EXISTS bench_item",
    "DROP TABLE IF EXISTS bench_author",
    """CREATE TABLE bench_author (
        id integer AUTO_INCREMENT PRIMARY KEY, name varchar(100) NOT NULL,
        email varchar(200) NOT NULL) ENGINE=InnoDB""",
    """CREATE TABLE bench_item (
        id bigint AUTO_INCREMENT PRIMARY KEY,
        name varchar(200) NOT NULL,
        email varchar(200) NOT NULL,
        active boolean NOT NULL,
        status varchar(20) NOT NULL,
        score integer NOT NULL,
        created_at datetime(6) NOT NULL,
        author_id integer NOT NULL,
        CONSTRAINT bench_item_author FOREIGN KEY (author_id) REFERENCES bench_author (id))
        ENGINE=InnoDB""",
]
MARIADB_DATA = [
    "INSERT INTO bench_author (name, email) SELECT CONCAT('Author ', seq), "
    "CONCAT('author', seq, '@example.com') FROM seq_1_to_{authors}",
    "INSERT INTO bench_item (name, email, active, status, score, created_at, author_id) "
    "SELECT CONCAT('Item ', seq), CONCAT('user', seq, '@example.com'), seq % 3 <> 0, "
    "ELT(1 + seq % 3, 'draft', 'review', 'published'), seq % 1000, "
    "UTC_TIMESTAMP(6) - INTERVAL seq SECOND, 1 + seq % {authors} FROM seq_1_to_{rows}",
    "ANALYZE TABLE bench_author, bench_item",
]


def sync_url(url: str) -> str:
    """The blocking-driver URL of ``url`` (this machine only)."""
    parsed = make_url(url)
    if parsed.host not in ("127.0.0.1", "localhost", None):
        raise SystemExit("the admin benchmark only runs against this machine's database")
    driver = "mysql+pymysql" if ENGINE == "mariadb" else "postgresql+psycopg"
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def ensure_database(url: str) -> None:
    target = make_url(url)
    server_db = "mysql" if ENGINE == "mariadb" else "postgres"
    server = create_engine(
        target.set(database=server_db).render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
    )
    with server.connect() as conn:
        if ENGINE == "mariadb":
            name = target.database
            conn.execute(text(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4"))
        else:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}
            ).scalar()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    server.dispose()


def has_data(url: str) -> bool:
    query = (
        "SELECT table_rows FROM information_schema.tables "
        "WHERE table_schema = DATABASE() AND table_name = 'bench_item'"
        if ENGINE == "mariadb"
        else "SELECT reltuples::bigint FROM pg_class WHERE relname = 'bench_item'"
    )
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            count = conn.execute(text(query)).scalar()
            return count is not None and count >= ROWS * 0.8
    except Exception:
        return False
    finally:
        engine.dispose()


def build(url: str) -> None:
    started = time.perf_counter()
    schema, data = (
        (MARIADB_SCHEMA, [s.format(authors=AUTHORS, rows=ROWS) for s in MARIADB_DATA])
        if ENGINE == "mariadb"
        else (POSTGRES_SCHEMA, POSTGRES_DATA)
    )
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for statement in schema:
            conn.execute(text(statement))
        for statement in data:
            conn.execute(text(statement), {"a": AUTHORS, "n": ROWS})
    engine.dispose()
    print(f"built {ROWS:,} rows on {ENGINE} in {time.perf_counter() - started:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--force", action="store_true", help="rebuild even if the data exists")
    args = parser.parse_args()
    url = sync_url(DATABASE_URL)
    ensure_database(url)
    if args.force or not has_data(url):
        build(url)
    else:
        print("benchmark data present")


if __name__ == "__main__":
    main()
