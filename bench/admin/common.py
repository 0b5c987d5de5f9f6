"""Shared settings of the admin benchmark: where the data lives and what is measured."""

from __future__ import annotations

import os

#: ``postgresql`` (default) or ``mariadb``.
ENGINE = os.environ.get("BENCH_ADMIN_ENGINE", "postgresql")
_DEFAULT_URLS = {
    "postgresql": "postgresql://postgres@127.0.0.1:5432/transom_admin_bench",
    "mariadb": "mysql://root@127.0.0.1:3306/transom_admin_bench",
}
#: The benchmark database (created by setup_data.py); only this machine is accepted.
DATABASE_URL = os.environ.get("BENCH_ADMIN_DATABASE_URL", _DEFAULT_URLS[ENGINE])
ROWS = int(os.environ.get("BENCH_ADMIN_ROWS", "1000000"))
AUTHORS = 1000
PER_PAGE = 100
USERNAME = "bench"
PASSWORD = "bench-password-123"
STATUSES = ("draft", "review", "published")
