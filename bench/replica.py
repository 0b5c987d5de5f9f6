#!/usr/bin/env python3
"""A PostgreSQL primary and its streaming replica, built on this machine and removed after.

``sudo python bench/replica.py`` (``make replica``) builds both, points the data battery's read
routing at the replica and shows where a request's reads and writes go, then stops the replica
and shows reads falling back to the primary. ``tests/production/test_replica.py`` uses
:func:`pair` the same way.

The shared PostgreSQL on 127.0.0.1:5432 is left alone (its ``pg_hba.conf`` allows no
replication, and other programs use it): the primary here is a cluster of its own
(``initdb``), on a free port, and the replica a ``pg_basebackup -R`` of it on another, both
in a temporary folder, run as the ``postgres`` user, listening on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BIN = next(
    (p for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)),
    Path("/usr/lib/postgresql/15/bin"),
)


def available() -> str | None:
    """Why a pair can't be built here (``None``: it can)."""
    if os.geteuid() != 0:
        return "needs root (to run the clusters as the postgres user)"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no postgres user"
    for tool in ("initdb", "pg_ctl", "pg_basebackup"):
        if not (BIN / tool).exists():
            return f"{BIN / tool} is missing"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(*command: str, timeout: float = 120) -> str:
    result = subprocess.run(
        ["runuser", "-u", "postgres", "--", *command],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


@dataclass
class Cluster:
    """One PostgreSQL cluster in ``folder`` on ``port``."""

    folder: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder.parent} -c listen_addresses=127.0.0.1"
        _as_postgres(
            str(BIN / "pg_ctl"), "-D", str(self.folder), "-l", f"{self.folder}.log",
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self) -> None:
        _as_postgres(str(BIN / "pg_ctl"), "-D", str(self.folder), "-m", "fast", "-w", "stop")

    def running(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 1):
            return True
        return False


@contextlib.contextmanager
def pair() -> Iterator[tuple[Cluster, Cluster]]:
    """A primary and its streaming replica, running; both stopped and removed after."""
    reason = available()
    if reason:
        raise RuntimeError(reason)
    root = Path(tempfile.mkdtemp(prefix="transom-replica-", dir="/tmp"))
    shutil.chown(root, "postgres", "postgres")
    primary = Cluster(root / "primary", _free_port())
    replica = Cluster(root / "replica", _free_port())
    started: list[Cluster] = []
    try:
        _as_postgres(
            str(BIN / "initdb"), "-D", str(primary.folder), "-U", "postgres",
            "--auth=trust", "--no-sync",
        )  # fmt: skip
        with (primary.folder / "postgresql.conf").open("a") as conf:
            conf.write("wal_level = replica\nmax_wal_senders = 4\nfsync = off\n")
        with (primary.folder / "pg_hba.conf").open("a") as hba:
            hba.write("host replication postgres 127.0.0.1/32 trust\n")
        primary.start()
        started.append(primary)
        # -R writes standby.signal and primary_conninfo: the copy starts as a streaming replica.
        _as_postgres(
            str(BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port),
            "-U", "postgres", "-D", str(replica.folder), "-X", "stream", "-R",
            "--checkpoint=fast",
        )  # fmt: skip
        replica.start()
        started.append(replica)
        yield primary, replica
    finally:
        for cluster in reversed(started):
            with contextlib.suppress(Exception):
                if cluster.running():
                    cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def wait_replicated(primary_url: str, replica_url: str, seconds: float = 30) -> None:
    """Block until the replica has replayed everything the primary has written so far."""
    from sqlalchemy import create_engine, text

    def engine(url: str):  # type: ignore[no-untyped-def]
        return create_engine(url.replace("postgresql://", "postgresql+psycopg://"))

    source, copy = engine(primary_url), engine(replica_url)
    try:
        with source.connect() as connection:
            target = connection.execute(text("SELECT pg_current_wal_lsn()")).scalar_one()
        deadline = time.monotonic() + seconds
        with copy.connect() as connection:
            while True:
                replayed = connection.execute(
                    text("SELECT pg_last_wal_replay_lsn() >= CAST(:lsn AS pg_lsn)"), {"lsn": target}
                ).scalar_one()
                if replayed:
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError("the replica did not catch up")
                time.sleep(0.05)
                connection.rollback()
    finally:
        source.dispose()
        copy.dispose()


def main() -> int:
    import asyncio

    from sqlalchemy import text

    from transom import App, Settings
    from transom.db import Database, DatabaseConfig, DbSessionDep

    reason = available()
    if reason:
        print(reason, file=sys.stderr)
        return 2
    with pair() as (primary, replica):
        print(f"primary on 127.0.0.1:{primary.port}, replica on 127.0.0.1:{replica.port}")
        app = App(Settings(secret_key="x" * 50))
        config = DatabaseConfig(url=primary.url, replica_urls=[replica.url], retry_after=2)
        app.install(Database(config))

        @app.get("/where")
        async def where(db: DbSessionDep) -> dict[str, bool]:
            return {"replica": bool(await db.scalar(text("SELECT pg_is_in_recovery()")))}

        async def demo() -> None:
            async with app.async_test_client() as client:
                print("a read goes to the replica:", (await client.get("/where")).json())
                replica.stop()
                print("replica stopped; the read falls back:", (await client.get("/where")).json())

        asyncio.run(demo())
    return 0


if __name__ == "__main__":
    sys.exit(main())
