"""The ``python`` blocks of docs/db/*.md run, page by page, on every engine.

Each page's blocks are joined into one script and run in a fresh interpreter (a page defines
its own models on ``transom.db.Model``) with ``DATABASE_URL`` set to a fresh database. A block
right after an ``<!-- not run -->`` comment is skipped (configuration for servers the suite
doesn't have, say).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs" / "db"
SRC = Path(__file__).resolve().parents[2] / "src"
PAGES = sorted(p.name for p in DOCS.glob("*.md"))
BLOCK = re.compile(r"(<!-- not run -->\s*)?```python\n(.*?)```", re.DOTALL)


def script_of(page: Path) -> str:
    blocks = [m.group(2) for m in BLOCK.finditer(page.read_text()) if not m.group(1)]
    return "\n\n".join(blocks)


def test_docs_pages_exist() -> None:
    assert set(PAGES) >= {"models.md", "sessions.md", "migrations.md", "databases.md"}


@pytest.mark.parametrize("page", PAGES)
def test_doc_examples_run(page: str, servers: Any, backend: str, tmp_path: Path) -> None:
    script = script_of(DOCS / page)
    assert script.strip(), f"{page} has no python examples"
    (tmp_path / "doc_example.py").write_text(script)
    env = dict(os.environ)
    env["DATABASE_URL"] = servers.url(backend, fresh=True)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(SRC)])
    env.pop("TRANSOM_DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "doc_example.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, f"{page} on {backend}:\n{result.stdout}\n{result.stderr}"
