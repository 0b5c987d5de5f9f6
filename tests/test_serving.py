"""Serving with the real servers: reload on code changes, the access log, the server's address."""

from __future__ import annotations

import os
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from test_cli import HELLO, _free_port, serving

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
