"""The many-hosts script for real: network namespaces, nginx balancing them, the blog on each,
the cross-host checks and a host restarted under load (short and small: 2 hosts, 1 s loads)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from _services import require_service

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "hosts.py"


def test_two_hosts_behind_nginx() -> None:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    for tool in ("ip", "nginx", "wrk", "socat"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    require_service("PostgreSQL", "127.0.0.1", 5432)
    require_service("Redis", "127.0.0.1", 6379)
    command = [sys.executable, str(SCRIPT), "--hosts", "2", "--duration", "1"]
    command += ["--connections", "8", "--skip-direct"]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for check in (
        "| login holds on every host | ok |",
        "| a CSRF token from one host is accepted by another | ok |",
        "| the login rate limit is shared by every host | ok |",
        "| nginx serves the collected static files | ok |",
        "| no failed request while a host restarts | ok |",
    ):
        assert check in output, output
    # The script removed what it made.
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "h1" not in " ".join(n for n in namespaces.split() if n.startswith("tp")), namespaces
