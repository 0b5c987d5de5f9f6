"""The ``python`` blocks of docs/security.md run, in order, as one script in a fresh process.

A block right after an ``<!-- not run -->`` comment is skipped.
"""

from __future__ import annotations

from pathlib import Path

from _docs import ROOT, run_page

PAGE = ROOT / "docs" / "security.md"


def test_security_doc_examples_run(tmp_path: Path) -> None:
    run_page(PAGE, tmp_path, min_blocks=8)


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


def test_the_threat_table_names_tests_that_exist() -> None:
    # Each row of "Threats covered" names the tests that prove it: a renamed or deleted test
    # must not leave the table claiming a defence nothing checks any more.
    import re

    section = PAGE.read_text().split("## Threats covered", 1)[1].split("\n## ", 1)[0]
    named = 0
    for cell in re.findall(r"^\|[^|]*\|[^|]*\|(.*)\|$", section, flags=re.M):
        current: Path | None = None
        for ref in re.findall(r"`([^`]+)`", cell):
            path, _, test = ref.partition("::")
            if path.startswith("tests/"):
                current = ROOT / path
                assert current.exists(), ref
            name = test or (path if path.startswith("test_") else "")
            if name and current is not None:
                assert re.search(rf"def {re.escape(name)}\b", current.read_text()), ref
                named += 1
    assert named >= 30
