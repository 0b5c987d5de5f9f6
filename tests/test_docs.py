"""Every ```python block of the core docs pages runs, in order, one namespace per page."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from _docs import python_blocks

DOCS = Path(__file__).resolve().parent.parent / "docs"
CORE_PAGES = [
    "quickstart.md",
    "routing.md",
    "requests-responses.md",
    "parameters.md",
    "openapi.md",
    "application.md",
    "templates.md",
    "static-files.md",
    "forms.md",
    "batteries.md",
    "cache.md",
    "tasks.md",
    "realtime.md",
    "deprecations.md",
    "deployment.md",
    "performance.md",
]


@pytest.mark.parametrize("page", CORE_PAGES)
def test_page_examples_run(page: str) -> None:
    blocks = python_blocks(DOCS / page)
    assert blocks, f"{page} has no python examples"
    # A real module object, so dataclasses and Pydantic can find the page's namespace.
    module = types.ModuleType(f"docs_{page.replace('.', '_').replace('-', '_')}")
    sys.modules[module.__name__] = module
    try:
        for number, block in enumerate(blocks, 1):
            code = compile(block, f"{page}#block{number}", "exec")
            exec(code, module.__dict__)
    finally:
        del sys.modules[module.__name__]


def test_every_page_is_in_the_nav() -> None:
    nav = (DOCS.parent / "mkdocs.yml").read_text()
    for page in DOCS.glob("*.md"):
        assert page.name in nav, f"{page.name} is missing from mkdocs.yml"


def test_the_index_links_every_page() -> None:
    index = (DOCS / "index.md").read_text()
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    missing = [p for p in pages if p != "index.md" and f"({p})" not in index]
    assert missing == []
