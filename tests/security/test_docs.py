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
