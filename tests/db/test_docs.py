"""The ``python`` blocks of docs/db/*.md run, page by page, on every engine.

Each page's blocks are joined into one script and run in a fresh interpreter (a page defines
its own models on ``transom.db.Model``) with ``DATABASE_URL`` set to a fresh database. A block
right after an ``<!-- not run -->`` comment is skipped (configuration for servers the suite
doesn't have, say).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from _docs import ROOT, run_page

DOCS = ROOT / "docs" / "db"
PAGES = sorted(p.name for p in DOCS.glob("*.md"))


def test_docs_pages_exist() -> None:
    assert set(PAGES) >= {"models.md", "sessions.md", "migrations.md", "databases.md"}


@pytest.mark.parametrize("page", PAGES)
def test_doc_examples_run(page: str, servers: Any, backend: str, tmp_path: Path) -> None:
    run_page(DOCS / page, tmp_path, database_url=servers.url(backend, fresh=True))
