"""The ``python`` blocks of docs/auth.md run as one script, on every engine.

As for the data battery's pages: the blocks are joined and run in a fresh interpreter with
``DATABASE_URL`` set to a fresh database; a block right after ``<!-- not run -->`` is skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from _docs import ROOT, run_page
from db.conftest import ServerDatabases, require_backend

PAGE = ROOT / "docs" / "auth.md"


@pytest.fixture
def url(tmp_path: Path, backend: str) -> Iterator[str]:
    require_backend(backend)
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'docs.sqlite3'}"
        return
    server = ServerDatabases(backend)
    yield server.create("_authdocs").render_as_string(hide_password=False)
    server.drop_all()


def test_examples_run(url: str, tmp_path: Path) -> None:
    run_page(PAGE, tmp_path, database_url=url, timeout=300)


def test_page_covers_the_battery() -> None:
    text = PAGE.read_text()
    for heading in ("## Web login", "## Permissions", "## API tokens", "## Social login"):
        assert heading in text
