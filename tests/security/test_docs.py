"""The ``python`` blocks of docs/security.md run, in order, as one script in a fresh process.

A block right after an ``<!-- not run -->`` comment is skipped.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "security.md"
BLOCK = re.compile(r"(<!-- not run -->\s*)?```python\n(.*?)```", re.DOTALL)


def test_security_doc_examples_run(tmp_path: Path) -> None:
    blocks = [m.group(2) for m in BLOCK.finditer(PAGE.read_text()) if not m.group(1)]
    assert len(blocks) >= 8
    script = tmp_path / "security_doc.py"
    script.write_text("\n\n".join(blocks))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_default_is_documented() -> None:
    text = PAGE.read_text()
    for needle in (
        "allowed_hosts",
        "X-Content-Type-Options",
        "X-Frame-Options",
        "Referrer-Policy",
        "Cross-Origin-Opener-Policy",
        "Content-Security-Policy",
        "HSTS",
        "HttpOnly",
        "SameSite=Lax",
        "__Host-",
        "Idle timeout",
        "old_secret_keys",
        "BREACH",
        "trusted_origins",
        "trusted_proxies",
        "CORS",
        "Retry-After",
        "max_body_size",
    ):
        assert needle in text, needle
