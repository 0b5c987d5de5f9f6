"""The transom command: app discovery, routes, and serving with real servers."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from transom.cli import locate_app, main

HELLO = textwrap.dedent(
    """
    from transom import App

    app = App()

    @app.get("/")
    def hello():
        return "Hello, World!"

    @app.get("/items/{item_id:int}", name="item")
    def item(item_id: int):
        return {"id": item_id}
    """
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (tmp_path / "app.py").write_text(HELLO)
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "factory.py").write_text(
        "from transom import App\n\n"
        "def create_app():\n    app = App()\n    app.get('/')(lambda: 'f')\n    return app\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("app", "pkg", "pkg.factory"):  # another test's app.py must not answer
        sys.modules.pop(name, None)
    yield tmp_path
    for name in ("app", "pkg", "pkg.factory"):
        sys.modules.pop(name, None)


def test_locate_app_finds_app_py(project: Path) -> None:
    location = locate_app()
    assert location.target == "app:app"
    assert location.factory is False
    app = location.load()
    assert app.url_path_for("item", item_id=3) == "/items/3"


def test_locate_app_with_module_and_factory(project: Path) -> None:
    location = locate_app("pkg.factory")
    assert (location.target, location.factory) == ("pkg.factory:create_app", True)
    explicit = locate_app("pkg.factory:create_app()")
    assert explicit.factory is True
    assert explicit.load().url_path_for("<lambda>") == "/"


def test_locate_app_errors_are_clear(project: Path, tmp_path: Path) -> None:
    import click

    with pytest.raises(click.UsageError, match="has no attribute 'nope'"):
        locate_app("app:nope")
    with pytest.raises(click.UsageError, match="Could not import 'missing_module'"):
        locate_app("missing_module:app")
    (project / "app.py").unlink()
    with pytest.raises(click.UsageError, match=r"no app\.py or main\.py"):
        locate_app()


def test_routes_command_prints_the_table(project: Path) -> None:
    result = CliRunner().invoke(main, ["routes"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["METHODS", "PATH", "NAME", "HANDLER"]
    assert any(line.split()[:3] == ["GET", "/items/{item_id:int}", "item"] for line in lines)
    assert any(line.split()[:3] == ["GET", "/openapi.json", "openapi"] for line in lines)


def test_help_lists_commands() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "run" in result.output
    assert "routes" in result.output
    run_help = CliRunner().invoke(main, ["run", "--help"])
    for option in ("--host", "--port", "--reload", "--workers", "--debug", "--server"):
        assert option in run_help.output
    # The production options, with their defaults and environment variables.
    help_text = " ".join(run_help.output.split())
    assert "--backlog INTEGER RANGE Connections queued" in help_text
    assert "($TRANSOM_BACKLOG). [default: 1024; x>=1]" in help_text
    assert "--graceful-timeout" in help_text
    assert "($TRANSOM_GRACEFUL_TIMEOUT). [default: 30; x>=1]" in help_text
    assert "--keep-alive-timeout" in help_text
    assert "($TRANSOM_KEEP_ALIVE_TIMEOUT). [default: 5; 1<=x<=60]" in help_text


def test_run_refuses_to_start_without_a_secret_key_when_something_signs(project: Path) -> None:
    (project / "app.py").write_text(
        HELLO + "\nfrom transom.security import Security\nSecurity(app)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TRANSOM_SECRET_KEY"}
    result = subprocess.run(
        [sys.executable, "-m", "transom.cli", "run", "--no-debug"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stderr.startswith("Error: TRANSOM_SECRET_KEY is not set, and transom.security")
    assert "Traceback" not in result.stderr


def _transom(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "TRANSOM_DEBUG"}
    return subprocess.run(
        [sys.executable, "-m", "transom.cli", *args],
        cwd=cwd,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_an_unknown_command_is_one_paragraph_naming_the_commands(project: Path) -> None:
    result = _transom(["nope"], project)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 4
    assert "No such command 'nope'. The commands are: " in result.stderr
    listed = result.stderr.split("The commands are: ", 1)[1].strip().rstrip(".").split(", ")
    assert listed == sorted(listed)  # every command, the batteries' included, in order
    assert {"collectstatic", "createsuperuser", "db", "routes", "run"} <= set(listed)


def test_an_unexpected_error_is_one_line_and_traceback_shows_where(project: Path) -> None:
    (project / "app.py").write_text("raise RuntimeError('the config file is\\n  missing')\n")
    result = _transom(["routes"], project)
    assert result.returncode == 1
    assert result.stderr == (
        "Error: RuntimeError: the config file is missing "
        "(run with --traceback to see where it happened)\n"
    )
    for shown in (
        _transom(["--traceback", "routes"], project),
        _transom(["routes"], project, TRANSOM_DEBUG="1"),
    ):
        assert shown.returncode == 1
        assert "Traceback (most recent call last)" in shown.stderr
        assert 'app.py", line 1' in shown.stderr
        assert shown.stderr.strip().splitlines()[-1].startswith("Error: RuntimeError:")


def test_improperly_configured_is_its_message_alone(project: Path) -> None:
    (project / "app.py").write_text(
        HELLO + "\nfrom transom.security import Security\nSecurity(app)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TRANSOM_SECRET_KEY"}
    env.pop("TRANSOM_DEBUG", None)
    result = subprocess.run(
        [sys.executable, "-m", "transom.cli", "run", "--no-debug"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "--traceback" not in result.stderr  # the message says what to do


def test_run_serves_a_hello_world_without_a_secret_key(project: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "TRANSOM_SECRET_KEY"}
    command = [sys.executable, "-m", "transom.cli", "run", "--no-debug", "--port", str(port)]
    with serving(command, project, port, env=env):
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=2).text == "Hello, World!"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serving(
    command: list[str], cwd: Path, port: int, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server process, wait (bounded) until it answers on 127.0.0.1, stop it after.

    Yields the process: its ``stdout`` (with stderr) can be read once the block has ended.
    """
    process = subprocess.Popen(
        command,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env if env is not None else {**os.environ, "TRANSOM_SECRET_KEY": "cli-test"},
        # Its own process group: the server's workers are stopped with it, and its output
        # ends (no worker keeps the pipe open) once the group is gone.
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    _stop(process)
                    output = process.stdout.read().decode() if process.stdout else ""
                    pytest.fail(f"server did not start within 30 s:\n{output}")
                time.sleep(0.2)
        yield process
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server and its workers: SIGTERM to its group, SIGKILL after 15 s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            continue
        # The workers may outlive the server by a moment: they are in the group too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        return


@pytest.mark.parametrize("server", ["granian", "uvicorn"])
def test_run_serves_the_app_with_a_real_server(project: Path, server: str) -> None:
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "transom.cli",
        "run",
        "--port",
        str(port),
        "--server",
        server,
        "--no-reload",
    ]
    with serving(command, project, port):
        assert httpx.get(f"http://127.0.0.1:{port}/items/7", timeout=2).json() == {"id": 7}
        hello = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
        assert hello.text == "Hello, World!"
        assert hello.headers["x-content-type-options"] == "nosniff"
        evil = httpx.get(f"http://127.0.0.1:{port}/", headers={"Host": "evil.example"}, timeout=2)
        assert evil.status_code == 400


def _raw_exchange(port: int, payload: bytes) -> bytes:
    """Send raw bytes, read until the server closes the connection (bounded to 10 s)."""
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(payload)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            received += chunk
    return received


@pytest.mark.parametrize("server", ["granian", "uvicorn"])
def test_content_length_with_transfer_encoding_is_refused(project: Path, server: str) -> None:
    # A request smuggling primitive: a proxy framing by Content-Length would forward the
    # "GET /items/99" below as part of the body, the server framing by chunks serves it as a
    # second request. Whatever the server accepts, nothing after such a request is served.
    port = _free_port()
    command = [sys.executable, "-m", "transom.cli", "run", "--port", str(port)]
    command += ["--server", server, "--no-reload"]
    payload = (
        b"POST /items/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        b"GET /items/99 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    )
    with serving(command, project, port):
        received = _raw_exchange(port, payload)
        # The connection still works for honest clients afterwards.
        assert httpx.get(f"http://127.0.0.1:{port}/items/7", timeout=2).json() == {"id": 7}
    assert b'{"id":99}' not in received
    assert received.count(b"HTTP/1.1 ") == 1
    assert b"connection: close" in received.lower()
    if server == "uvicorn":  # passes both headers on: Transom refuses
        assert received.startswith(b"HTTP/1.1 400 "), received
    # granian's parser drops Content-Length itself and closes the connection after answering.


def test_python_app_py_with_app_run(tmp_path: Path) -> None:
    port = _free_port()
    script = tmp_path / "server.py"
    script.write_text(
        HELLO + f"\n\nif __name__ == '__main__':\n    app.run(port={port}, reload=False)\n"
    )
    with serving([sys.executable, str(script)], tmp_path, port):
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=2).text == "Hello, World!"
