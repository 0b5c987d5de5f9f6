"""The ``python`` blocks of docs/admin.md run, joined, in a fresh interpreter on each engine."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from db.conftest import ServerDatabases  # tests/db/conftest.py

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "admin.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


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
    blocks = BLOCK.findall(PAGE.read_text())
    assert len(blocks) >= 3
    script = tmp_path / "admin_docs.py"
    script.write_text("\n\n".join(blocks))
    env = dict(os.environ)
    env["DATABASE_URL"] = docs_url
    env.pop("TRANSOM_DATABASE_URL", None)
    env["PYTHONPATH"] = str(ROOT / "src")
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
