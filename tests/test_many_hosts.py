"""The example blog on two network-namespace "hosts" behind a real nginx (``bench/hosts.py``).

The script builds everything itself (namespaces, veth pairs, relays to the local PostgreSQL
and Redis, nginx on 127.0.0.1) and removes it; its checks are the assertions: a session and a
CSRF token from one host accepted by another, the login rate limit counted across hosts, a
multipart POST and static files through nginx, and each host restarted with SIGTERM under
load without a failed request. ``make bench-hosts`` runs the same with 3 hosts and the
throughput table.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from _services import is_ci, require_service

ROOT = Path(__file__).resolve().parents[1]


def test_two_hosts_behind_nginx_share_sessions_limits_and_restart_cleanly() -> None:
    missing = [tool for tool in ("ip", "nginx") if shutil.which(tool) is None]
    if os.geteuid() != 0 or missing:
        message = f"needs root and {', '.join(missing) or 'ip, nginx'} for network namespaces"
        if is_ci():
            pytest.fail(message)
        pytest.skip(message)
    require_service("PostgreSQL", "127.0.0.1", 5432)
    require_service("Redis", "127.0.0.1", 6379)
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "hosts.py"), "--hosts", "2", "--workers", "1",
         "--check-only"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    for check in (
        "check_pages_from_every_host",
        "check_login_is_a_session_everywhere",
        "check_csrf_token_crosses_hosts",
        "check_upload_and_static",
        "check_rate_limit_is_shared",
        "check_rolling_restart",
    ):
        assert f"ok    {check}" in done.stderr, done.stderr[-3000:]
    # nothing left behind: no namespace of this run remains
    assert "tsm" not in subprocess.run(["ip", "netns"], capture_output=True, text=True).stdout
