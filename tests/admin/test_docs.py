"""The ``python`` blocks of docs/admin.md run, joined, in a fresh interpreter on each engine."""

from __future__ import annotations

from pathlib import Path

from _docs import ROOT, run_page
from db.conftest import Servers  # tests/db/conftest.py

PAGE = ROOT / "docs" / "admin.md"


def test_admin_docs_run(admin_databases: Servers, backend: str, tmp_path: Path) -> None:
    url = admin_databases.url(backend, fresh=True)
    run_page(PAGE, tmp_path, database_url=url, min_blocks=3)
