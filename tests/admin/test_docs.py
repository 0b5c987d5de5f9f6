"""The ``python`` blocks of docs/admin.md run, joined, in a fresh interpreter on each engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from _docs import ROOT, run_page
from db.conftest import ServerDatabases  # tests/db/conftest.py

PAGE = ROOT / "docs" / "admin.md"


@pytest.fixture
def docs_url(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'docs.sqlite3'}"
        return
    server = ServerDatabases(backend)
    try:
        yield server.create("_admindocs").render_as_string(hide_password=False)
    finally:
        server.drop_all()


def test_admin_docs_run(docs_url: str, tmp_path: Path) -> None:
    run_page(PAGE, tmp_path, database_url=docs_url, min_blocks=3)
