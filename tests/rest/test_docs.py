"""The ``python`` blocks of docs/rest.md run as one script, on every engine."""

from __future__ import annotations

from pathlib import Path

from _docs import ROOT, run_page

from .conftest import RestDatabases

PAGE = ROOT / "docs" / "rest.md"


def test_examples_run(rest_databases: RestDatabases, backend: str, tmp_path: Path) -> None:
    url = rest_databases.servers.url(backend, fresh=True)
    run_page(PAGE, tmp_path, database_url=url, min_blocks=10, timeout=300)


def test_page_maps_the_drf_concepts() -> None:
    text = PAGE.read_text()
    for concept in (
        "ModelSerializer",
        "ModelViewSet",
        "DefaultRouter",
        "permission classes",
        "LimitOffsetPagination",
        "DjangoFilterBackend",
        "throttle classes",
    ):
        assert concept in text, concept
