"""Serving with the real servers: reload on code changes, the access log, the server's address."""

from __future__ import annotations

import json
import os
import socket
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from test_cli import HELLO, _free_port, serving
from transom import serving as serving_module

NEW_ROUTE = textwrap.dedent(
    """

    @app.get("/new")
    def new():
        return "new route"
    """
)


@pytest.mark.parametrize("server", ["granian", "uvicorn"])
def test_reload_serves_the_changed_code(tmp_path: Path, server: str) -> None:
    # granian forked its workers from the process that had imported the app to check it, so a
    # reloaded worker inherited the old module: the new route stayed 404 until a restart.
    (tmp_path / "app.py").write_text(HELLO)
    port = _free_port()
    command = [sys.executable, "-m", "transom.cli", "run", "--debug", "--port", str(port)]
    command += ["--server", server]
    env = {k: v for k, v in os.environ.items() if k != "TRANSOM_SECRET_KEY"}
    with serving(command, tmp_path, port, env=env):
        url = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{url}/new", timeout=2).status_code == 404
        (tmp_path / "app.py").write_text(HELLO + NEW_ROUTE)
        deadline = time.monotonic() + 45
        status = None
        while time.monotonic() < deadline:
            try:
                status = httpx.get(f"{url}/new", timeout=2).status_code
            except httpx.TransportError:  # the worker is restarting
                status = None
            if status == 200:
                break
            time.sleep(0.3)
        assert status == 200, f"the new route still answers {status} after the reload"
        assert httpx.get(f"{url}/new", timeout=2).text == "new route"


@pytest.mark.parametrize("server", ["granian", "uvicorn"])
def test_the_access_log_is_the_apps_on_both_servers(tmp_path: Path, server: str) -> None:
    app = HELLO + textwrap.dedent(
        """
        from transom import serving

        @app.on_startup
        def banner():
            print("address:", serving.server_url(), flush=True)
        """
    )
    (tmp_path / "app.py").write_text(app)
    port = _free_port()
    command = [sys.executable, "-m", "transom.cli", "run", "--no-debug", "--port", str(port)]
    command += ["--server", server]
    with serving(command, tmp_path, port) as process:
        ids = [
            httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).headers["x-request-id"]
            for path in ("/items/1", "/items/2?secret=1", "/missing")
        ]
    assert process.stdout is not None
    output = process.stdout.read().decode()
    # Production: one JSON object a line (transom.logs), the access lines among them.
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    access = [r for r in records if r["logger"] == "transom.access"]
    # Ours, once per request (the server's own access log is off), the same on both servers;
    # the readiness probes of `serving` are the first lines.
    assert [(r["path"], r["status"], r["request_id"]) for r in access[-3:]] == [
        ("/items/1", 200, ids[0]),
        ("/items/2", 200, ids[1]),
        ("/missing", 404, ids[2]),
    ], output
    assert access[-3]["message"].startswith('127.0.0.1 - "GET /items/1 HTTP/1.1" 200 8 ')
    assert all(r["client"] == "127.0.0.1" and r["level"] == "INFO" for r in access), output
    assert f"address: http://127.0.0.1:{port}" in output


def test_debug_mode_logs_text_lines(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(HELLO)
    port = _free_port()
    command = [sys.executable, "-m", "transom.cli", "run", "--debug", "--no-reload"]
    command += ["--port", str(port)]
    with serving(command, tmp_path, port) as process:
        rid = httpx.get(f"http://127.0.0.1:{port}/items/7", timeout=2).headers["x-request-id"]
    assert process.stdout is not None
    output = process.stdout.read().decode()
    [line] = [line for line in output.splitlines() if "/items/7" in line]
    assert ' INFO transom.access: 127.0.0.1 - "GET /items/7 HTTP/1.1" 200 ' in line, output
    assert line.endswith(f"[{rid}]"), output


RUN_SCRIPT = textwrap.dedent(
    """
    import sys

    from sqlalchemy.orm import Mapped, mapped_column

    from transom import App
    from transom.db import Model


    class Note(Model):  # a model: defining it twice in one process is an error
        __tablename__ = "serving_note"
        id: Mapped[int] = mapped_column(primary_key=True)


    app = App()


    @app.get("/")
    def hello():
        return "Hello, World!"
    """
)
RUN_MAIN = textwrap.dedent(
    """

    if __name__ == "__main__":
        app.run(port=int(sys.argv[1]), reload=sys.argv[2] == "reload", server=sys.argv[3])
    """
)


@pytest.mark.parametrize("reload", ["reload", "no-reload"])
@pytest.mark.parametrize("server", ["granian", "uvicorn"])
def test_app_run_from_a_script_with_models(tmp_path: Path, server: str, reload: str) -> None:
    # The server's workers imported the script again under its module name beside the
    # running `__main__`, so every model was defined twice and no worker started.
    script = tmp_path / "server.py"
    script.write_text(RUN_SCRIPT + RUN_MAIN)
    port = _free_port()
    command = [sys.executable, str(script), str(port), reload, server]
    with serving(command, tmp_path, port):
        url = f"http://127.0.0.1:{port}"
        assert httpx.get(url, timeout=2).text == "Hello, World!"
        if reload == "no-reload":
            return
        script.write_text(RUN_SCRIPT + NEW_ROUTE + RUN_MAIN)
        deadline = time.monotonic() + 45
        status = None
        while time.monotonic() < deadline and status != 200:
            time.sleep(0.3)
            try:
                status = httpx.get(f"{url}/new", timeout=2).status_code
            except httpx.TransportError:
                status = None
        assert status == 200


def _idle_connection_closed(port: int) -> None:
    """Two requests on one connection (keep-alive is on), then wait (bounded: 20 s) for the
    server to close it while it is idle."""
    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        for _ in range(2):
            sock.sendall(request)
            answer = b""
            while b"Hello, World!" not in answer:
                chunk = sock.recv(4096)
                assert chunk, f"the connection was closed before the answer: {answer!r}"
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200"), answer
        try:
            assert sock.recv(4096) == b"", "the server sent something on an idle connection"
        except TimeoutError:
            pytest.fail("an idle keep-alive connection was still open after 20 s")


@pytest.mark.parametrize("server", ["granian", "uvicorn"])
def test_transom_run_keep_alive_timeout(tmp_path: Path, server: str) -> None:
    # 1 s, far below both servers' own defaults (granian: 30 s): the idle connection is
    # closed by the option, not by the server's default.
    (tmp_path / "app.py").write_text(HELLO)
    port = _free_port()
    command = [sys.executable, "-m", "transom.cli", "run", "--no-debug", "--port", str(port)]
    command += ["--server", server, "--keep-alive-timeout", "1", "--backlog", "64"]
    with serving(command, tmp_path, port):
        _idle_connection_closed(port)


@pytest.mark.parametrize("server", ["granian", "uvicorn"])
def test_app_run_takes_the_production_options(tmp_path: Path, server: str) -> None:
    script = tmp_path / "server.py"
    script.write_text(
        HELLO
        + textwrap.dedent(
            """
            import sys

            if __name__ == "__main__":
                app.run(
                    port=int(sys.argv[1]),
                    server=sys.argv[2],
                    reload=False,
                    backlog=64,
                    graceful_timeout=5,
                    keep_alive_timeout=1,
                )
            """
        )
    )
    port = _free_port()
    with serving([sys.executable, str(script), str(port), server], tmp_path, port):
        _idle_connection_closed(port)


def test_app_run_options_default_to_transom_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRANSOM_KEEP_ALIVE_TIMEOUT", raising=False)
    assert serving_module.option_from_env("TRANSOM_KEEP_ALIVE_TIMEOUT", None, 5) == 5
    monkeypatch.setenv("TRANSOM_KEEP_ALIVE_TIMEOUT", "12")
    assert serving_module.option_from_env("TRANSOM_KEEP_ALIVE_TIMEOUT", None, 5) == 12
    assert serving_module.option_from_env("TRANSOM_KEEP_ALIVE_TIMEOUT", 3, 5) == 3
    monkeypatch.setenv("TRANSOM_KEEP_ALIVE_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="TRANSOM_KEEP_ALIVE_TIMEOUT='soon'"):
        serving_module.option_from_env("TRANSOM_KEEP_ALIVE_TIMEOUT", None, 5)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("keep_alive_timeout", 0),
        ("keep_alive_timeout", 61),
        ("backlog", 0),
        ("graceful_timeout", 0),
    ],
)
def test_serve_refuses_out_of_range_options(option: str, value: int) -> None:
    location = serving_module.AppLocation("app", "app", False)
    with pytest.raises(ValueError, match=option):
        serving_module.serve(location, **{option: value})  # type: ignore[arg-type]
