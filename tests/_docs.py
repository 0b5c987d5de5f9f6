"""Run a docs page's ``python`` blocks, so every example the documentation shows is executed.

A block right after an ``<!-- not run -->`` comment is shown but not run (it needs a real
server, a provider...). The blocks of one page run in order, as one script.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

__all__ = ["ROOT", "python_blocks", "run_page"]

ROOT = Path(__file__).resolve().parents[1]
_BLOCK = re.compile(r"(<!-- not run -->\s*)?^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks(page: Path) -> list[str]:
    """The runnable ``python`` blocks of ``page``, in order."""
    return [m.group(2) for m in _BLOCK.finditer(page.read_text()) if not m.group(1)]


def run_page(
    page: Path,
    folder: Path,
    *,
    database_url: str | None = None,
    min_blocks: int = 1,
    timeout: float = 180,
) -> None:
    """Run ``page``'s blocks as one script in a fresh interpreter in ``folder``; assert success.

    Args:
        page: The Markdown page.
        folder: Where the script is written and run (its current directory).
        database_url: ``DATABASE_URL`` for the script (pages about the database batteries).
        min_blocks: The page must have at least this many runnable blocks.
        timeout: Seconds the script may take.
    """
    blocks = python_blocks(page)
    assert len(blocks) >= min_blocks, f"{page.name} has {len(blocks)} runnable python blocks"
    script = folder / f"{page.stem.replace('-', '_')}_doc.py"
    script.write_text("\n\n".join(blocks))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(folder), str(ROOT / "src")]))
    if database_url is not None:
        env["DATABASE_URL"] = database_url
        env.pop("TRANSOM_DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"{page.name}:\n{result.stdout}\n{result.stderr}"
