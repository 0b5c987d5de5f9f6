"""The ``python`` blocks of docs/auth.md run as one script, on every engine.

As for the data battery's pages: the blocks are joined and run in a fresh interpreter with
``DATABASE_URL`` set to a fresh database; a block right after ``<!-- not run -->`` is skipped.
"""

from __future__ import annotations

from pathlib import Path

from _docs import ROOT, run_page

from .conftest import AuthDatabases

PAGE = ROOT / "docs" / "auth.md"


def test_examples_run(auth_databases: AuthDatabases, backend: str, tmp_path: Path) -> None:
    url = auth_databases.servers.url(backend, fresh=True)
    run_page(PAGE, tmp_path, database_url=url, timeout=300)


def test_page_covers_the_battery() -> None:
    text = PAGE.read_text()
    for heading in ("## Web login", "## Permissions", "## API tokens", "## Social login"):
        assert heading in text


def test_own_user_model_section_runs(
    auth_databases: AuthDatabases, backend: str, tmp_path: Path
) -> None:
    """ "Your own user model" runs as a script of its own: a project that never imports the
    built-in user (the page's main script does), with a model named ``User``."""
    text = PAGE.read_text()
    section = text[text.index("## Your own user model") :]
    section = section[: section.index("\n## ")]
    page = tmp_path / "own-user-model.md"
    page.write_text(section.replace("<!-- not run -->\n", ""))
    url = auth_databases.servers.url(backend, fresh=True)
    run_page(page, tmp_path, database_url=url)
