"""The Conduit example's own suite (tests/conduit), run in an interpreter of its own.

The example declares its own ``User`` model; this process has the auth battery's built-in
one (other tests import it), and the framework refuses two models with one name in one
registry. A project never has both, so its tests get a process without the other.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_conduit_suite_passes() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/conduit"],
        cwd=ROOT,
        env={**os.environ, "TRANSOM_CONDUIT_ISOLATED": "1"},
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert " passed" in summary, summary
    assert "skipped" not in summary or os.environ.get("CI") != "true", summary
