"""The ``python`` blocks of docs/auth.md run as one script, on every engine.

As for the data battery's pages: the blocks are joined and run in a fresh interpreter with
``DATABASE_URL`` set to a fresh database; a block right after ``<!-- not run -->`` is skipped.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from db.conftest import ServerDatabases, require_backend

PAGE = Path(__file__).resolve().parents[2] / "docs" / "auth.md"
SRC = Path(__file__).resolve().parents[2] / "src"
BLOCK = re.compile(r"(<!-- not run -->\s*)?```python\n(.*?)```", re.DOTALL)


def script() -> str:
    return "\n\n".join(m.group(2) for m in BLOCK.finditer(PAGE.read_text()) if not m.group(1))


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
    (tmp_path / "doc_example.py").write_text(script())
    env = dict(os.environ, DATABASE_URL=url, PYTHONPATH=os.pathsep.join([str(tmp_path), str(SRC)]))
    env.pop("TRANSOM_DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "doc_example.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"


def test_page_covers_the_battery() -> None:
    text = PAGE.read_text()
    for heading in ("## Web login", "## Permissions", "## API tokens", "## Social login"):
        assert heading in text
