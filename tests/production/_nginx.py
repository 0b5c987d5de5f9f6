"""The real nginx for tests: the site configuration of docs/deployment.md, its paths and ports
replaced, run as a process of the test (never the system's service), stopped afterwards."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"


def site_config() -> str:
    """The first ``nginx`` block of docs/deployment.md: the configuration the docs show."""
    found = re.search(r"^```nginx\n(.*?)^```", DOCS.read_text(), re.DOTALL | re.MULTILINE)
    assert found is not None, "docs/deployment.md has no nginx block"
    return found.group(1)


def self_signed(folder: Path, host: str) -> tuple[Path, Path]:
    """A certificate and key for ``host`` (openssl), valid for a day."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    command += ["-subj", f"/CN={host}", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(
        command,
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def wrap(site: str, folder: Path) -> str:
    """A whole nginx.conf around ``site``: everything nginx writes stays in ``folder``."""
    temp = (
        "\n".join(
            f"  {kind}_temp_path {folder / kind};" for kind in ("client_body", "proxy", "fastcgi")
        )
        + "\n"
        + "\n".join(f"  {kind}_temp_path {folder / kind};" for kind in ("uwsgi", "scgi"))
    )
    # As root, nginx's workers would switch to "nobody", who can't read a private tmp folder.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (
        f"{user}worker_processes 1;\npid {folder / 'nginx.pid'};\n"
        f"error_log {folder / 'error.log'} warn;\ndaemon off;\n"
        "events { worker_connections 512; }\n"
        "http {\n  include /etc/nginx/mime.types;\n  default_type application/octet-stream;\n"
        f"  access_log {folder / 'access.log'};\n{temp}\n{site}\n}}\n"
    )


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


@contextlib.contextmanager
def running(config: str, folder: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """Start nginx with ``config``, wait (bounded) until ``port`` accepts, stop it after."""
    if not Path(NGINX).exists():
        pytest.skip("nginx is not installed")
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "nginx.conf"
    conf.write_text(config)
    test = subprocess.run(
        [NGINX, "-t", "-p", str(folder), "-e", str(folder / "error.log"), "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert test.returncode == 0, test.stderr + "\n" + config
    process = subprocess.Popen(
        [NGINX, "-p", str(folder), "-e", str(folder / "error.log"), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not _listening(port):
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.1)
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGQUIT)  # graceful: finish, then exit
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(15)
