"""Read routing against a real PostgreSQL streaming replica, built here.

A primary cluster (``initdb``) and its hot standby (``pg_basebackup -R``) run on their own
ports in a temporary folder, so the machine's PostgreSQL at 5432 is untouched. Reads go to the
standby (``pg_is_in_recovery()`` says which server answered), a request that writes reads its
own write from the primary, and a stopped standby sends reads to the primary without a failed
request, then gets them back once it is up again.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from _services import is_ci
from transom import App, Settings
from transom.db import Database, DatabaseConfig, DbSessionDep

_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))


def _pg(tool: str) -> str:
    return str(_BIN[-1] / tool)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(*command: str) -> list[str]:
    # initdb refuses to run as root: run the server tools as the postgres user then.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return list(command)


def _run(*command: str) -> None:
    subprocess.run(_as_postgres(*command), check=True, capture_output=True, timeout=120)


@dataclass
class Pair:
    folder: Path
    primary_port: int
    replica_port: int

    def url(self, port: int, driver: str = "asyncpg") -> str:
        return f"postgresql+{driver}://postgres@127.0.0.1:{port}/postgres"

    def pg_ctl(self, name: str, action: str, port: int) -> None:
        _run(
            _pg("pg_ctl"),
            "-D",
            str(self.folder / name),
            "-l",
            str(self.folder / f"{name}.log"),
            "-w",
            "-t",
            "60",
            "-m",
            "fast",
            "-o",
            f"-p {port} -k {self.folder} -c listen_addresses=127.0.0.1",
            action,
        )


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    if not _BIN or not Path(_pg("pg_basebackup")).exists():
        message = "PostgreSQL's server binaries (initdb, pg_basebackup) are not installed"
        if is_ci():
            pytest.fail(message)
        pytest.skip(message)
    folder = Path(tempfile.mkdtemp(prefix="transom-replica-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    made = Pair(folder, _free_port(), _free_port())
    try:
        _run(
            _pg("initdb"),
            "-D",
            str(folder / "primary"),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        )
        with (folder / "primary" / "postgresql.conf").open("a") as conf:
            conf.write("fsync = off\nwal_level = replica\nmax_wal_senders = 4\n")
        made.pg_ctl("primary", "start", made.primary_port)
        _run(
            _pg("pg_basebackup"),
            "-h",
            "127.0.0.1",
            "-p",
            str(made.primary_port),
            "-U",
            "postgres",
            "-D",
            str(folder / "replica"),
            "-R",
            "-X",
            "stream",
        )
        made.pg_ctl("replica", "start", made.replica_port)
        yield made
    finally:
        for name in ("replica", "primary"):
            if (folder / name / "postmaster.pid").exists():
                subprocess.run(
                    _as_postgres(
                        _pg("pg_ctl"), "-D", str(folder / name), "-m", "immediate", "stop"
                    ),
                    capture_output=True,
                    timeout=60,
                    check=False,
                )
        shutil.rmtree(folder, ignore_errors=True)


def _wait_for(check: object, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if callable(check) and check():
                return
        except Exception:  # the server is still starting
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_reads_follow_the_replica_and_fall_back_when_it_stops(
    pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    primary = create_engine(pair.url(pair.primary_port, "psycopg"))
    replica = create_engine(pair.url(pair.replica_port, "psycopg"))
    with primary.begin() as conn:
        conn.execute(text("CREATE TABLE note (id serial PRIMARY KEY, body text NOT NULL)"))
        conn.execute(text("INSERT INTO note (body) VALUES ('replicated')"))

    def replicated() -> bool:
        with replica.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM note")).scalar() == 1

    _wait_for(replicated, "the standby to replay the first row")

    config = DatabaseConfig(
        url=pair.url(pair.primary_port),
        replica_urls=[pair.url(pair.replica_port)],
        pool_ping_idle=0.2,  # probe a replica that sat unused for 0.2 s
        replica_retry=1.0,
        connect_timeout=2,
    )
    app = App(Settings(secret_key="test-secret"))
    app.install(Database(config))

    @app.get("/where")
    async def where(db: DbSessionDep) -> dict[str, object]:
        standby = await db.scalar(text("SELECT pg_is_in_recovery()"))
        count = await db.scalar(text("SELECT count(*) FROM note"))
        return {"standby": standby, "notes": count}

    @app.post("/notes")
    async def add(db: DbSessionDep) -> dict[str, object]:
        await db.execute(text("INSERT INTO note (body) VALUES ('new')"))
        # read-your-writes: after a write, the session reads from the primary
        standby = await db.scalar(text("SELECT pg_is_in_recovery()"))
        count = await db.scalar(text("SELECT count(*) FROM note"))
        return {"standby": standby, "notes": count}

    with app.test_client() as client:
        assert client.get("/where").json() == {"standby": True, "notes": 1}

        written = client.post("/notes")
        assert written.status_code == 200
        assert written.json() == {"standby": False, "notes": 2}

        pair.pg_ctl("replica", "stop", pair.replica_port)
        time.sleep(0.3)  # longer than pool_ping_idle: the next read probes the replica
        with caplog.at_level(logging.WARNING, logger="transom.db"):
            answers = [client.get("/where") for _ in range(5)]
        assert [a.status_code for a in answers] == [200] * 5
        assert {a.json()["standby"] for a in answers} == {False}  # the primary answered
        assert any("Read replica" in r.getMessage() for r in caplog.records)

        pair.pg_ctl("replica", "start", pair.replica_port)
        _wait_for(lambda: _count(replica) == 2, "the restarted standby to catch up")
        time.sleep(1.1)  # replica_retry: the replica is tried again

        def back_on_replica() -> bool:
            return bool(client.get("/where").json()["standby"])

        _wait_for(back_on_replica, "reads to return to the standby", timeout=10)
    primary.dispose()
    replica.dispose()


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM note")).scalar_one())
