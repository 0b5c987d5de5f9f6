"""Graceful shutdown of a real `transom run`: on SIGTERM a request in flight completes, new
connections are refused, the shutdown hooks run and the database pool is closed (its
connections gone from PostgreSQL's pg_stat_activity)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from test_cli import _free_port, serving

APP = textwrap.dedent(
    """
    import asyncio
    import os
    from pathlib import Path

    from sqlalchemy import MetaData, text

    from transom import App
    from transom.db import Database, DatabaseConfig, DbSessionDep

    app = App()
    connect_args = {"server_settings": {"application_name": os.environ["APP_NAME"]}}
    config = DatabaseConfig(url=os.environ["APP_DB"], engine_options={"connect_args": connect_args})
    app.install(Database(config, metadata=MetaData()))

    @app.get("/")
    def home():
        return "home"

    @app.get("/slow")
    async def slow(db: DbSessionDep):
        await db.execute(text("SELECT 1"))
        Path(os.environ["APP_MARK"]).write_text("in flight")  # the test waits for this
        await asyncio.sleep(float(os.environ["APP_SLOW"]))
        await db.execute(text("SELECT 2"))
        return {"done": True}

    @app.on_shutdown
    def goodbye():
        print("shutdown hooks ran", flush=True)

    if __name__ == "__main__":  # the app.run() variant: python app.py PORT SERVER
        import sys

        app.run(port=int(sys.argv[1]), server=sys.argv[2], workers=2, graceful_timeout=20)
    """
)


def _connections(url: str, name: str) -> int:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as connection:
            query = text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name")
            return int(connection.execute(query, {"name": name}).scalar_one())
    finally:
        engine.dispose()


def _wait_for(path: Path, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, "the server died"
        assert time.monotonic() < deadline, "the slow request never started"
        time.sleep(0.05)


@pytest.mark.parametrize("launch", ["transom run", "app.run"])
@pytest.mark.parametrize("server", ["granian", "uvicorn"])
def test_sigterm_lets_the_request_in_flight_finish(
    tmp_path: Path, pg_url: str, server: str, launch: str
) -> None:
    (tmp_path / "app.py").write_text(APP)
    name = f"transom-test-{uuid.uuid4().hex[:8]}"
    mark = tmp_path / "in-flight"
    port = _free_port()
    env = {
        **os.environ,
        "TRANSOM_SECRET_KEY": "x" * 50,
        "APP_DB": pg_url,
        "APP_NAME": name,
        "APP_MARK": str(mark),
        "APP_SLOW": "2",
    }
    if launch == "app.run":
        command = [sys.executable, "app.py", str(port), server]
    else:
        command = [sys.executable, "-m", "transom.cli", "run", "--port", str(port)]
        command += ["--server", server, "--workers", "2", "--graceful-timeout", "20"]
    url = f"http://127.0.0.1:{port}"
    answers: list[httpx.Response | BaseException] = []

    def slow_request() -> None:
        try:
            answers.append(httpx.get(f"{url}/slow", timeout=30))
        except BaseException as exc:  # reported by the assertion below
            answers.append(exc)

    with serving(command, tmp_path, port, env=env) as process:
        client = threading.Thread(target=slow_request)
        client.start()
        _wait_for(mark, process)
        assert _connections(pg_url, name) >= 1  # the request holds a pooled connection
        process.send_signal(signal.SIGTERM)  # the server's main process, as systemd does
        client.join(60)
        # Bounded by the graceful timeout (20 s) and start-up/shutdown slack on a loaded host.
        returncode = process.wait(20 + 30)
        with pytest.raises(httpx.TransportError):
            httpx.get(url, timeout=2)  # nothing listens any more
    assert process.stdout is not None
    output = process.stdout.read().decode()
    [answer] = answers
    assert isinstance(answer, httpx.Response), f"{answer!r}\n{output}"
    assert answer.status_code == 200, output
    assert answer.json() == {"done": True}
    assert returncode == 0, output
    assert "shutdown hooks ran" in output
    assert _connections(pg_url, name) == 0, "the pool was not closed"


@pytest.mark.parametrize("server", ["granian", "uvicorn"])
def test_the_graceful_timeout_bounds_the_wait(tmp_path: Path, pg_url: str, server: str) -> None:
    # A request slower than --graceful-timeout doesn't hold the shutdown up: the worker is
    # stopped and the client sees the connection end instead of an answer.
    (tmp_path / "app.py").write_text(APP)
    mark = tmp_path / "in-flight"
    port = _free_port()
    name = f"transom-test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "TRANSOM_SECRET_KEY": "x" * 50,
        "APP_DB": pg_url,
        "APP_NAME": name,
        "APP_MARK": str(mark),
        "APP_SLOW": "600",
    }
    command = [sys.executable, "-m", "transom.cli", "run", "--port", str(port)]
    command += ["--server", server, "--graceful-timeout", "1"]
    answers: list[httpx.Response | BaseException] = []

    def slow_request() -> None:
        try:
            answers.append(httpx.get(f"http://127.0.0.1:{port}/slow", timeout=120))
        except BaseException as exc:
            answers.append(exc)

    with serving(command, tmp_path, port, env=env) as process:
        client = threading.Thread(target=slow_request)
        client.start()
        _wait_for(mark, process)
        process.send_signal(signal.SIGTERM)
        # Bounded by the graceful timeout (1 s) and slack for a loaded host: far less than
        # the request's 600 s.
        returncode = process.wait(1 + 30)
        client.join(120)
    assert process.stdout is not None
    output = process.stdout.read().decode()
    print(f"exit status {returncode}\n{output}")
    # The cut request's worker is gone, and with it its pooled PostgreSQL connection.
    assert _connections(pg_url, name) == 0, output
    [answer] = answers
    assert isinstance(answer, httpx.TransportError) or (
        isinstance(answer, httpx.Response) and answer.status_code >= 500
    ), answer
