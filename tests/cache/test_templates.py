"""The ``{% cache key, ttl %}`` template fragment tag."""

from __future__ import annotations

from pathlib import Path

import pytest

from transom import App, Settings
from transom.cache import Cache
from transom.templating import Templates, render

from .conftest import CacheFactory

pytestmark = pytest.mark.anyio


async def test_fragment_rendered_once_per_key(make_cache: CacheFactory, tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text(
        "<h1>{{ title }}</h1>"
        '{% cache "sidebar:" ~ lang, 60 %}'
        '<aside>{{ load() }} {{ "a&b" }} {{ lang }}</aside>'
        "{% endcache %}"
    )
    app = App(Settings(secret_key="fragments", templates_dir=str(tmp_path)))
    cache = make_cache()
    Cache(app, cache.config)  # before the templates: the tag is added whatever the order
    app.install(Templates()).folders[:] = [tmp_path]
    loads = 0

    def load() -> int:
        nonlocal loads
        loads += 1
        return loads

    @app.get("/{lang}")
    async def page(lang: str) -> object:
        return render("page.html", title=f"t-{lang}", lang=lang, load=load)

    async with app.async_test_client() as client:
        first = (await client.get("/en")).text
        second = (await client.get("/en")).text
        other = (await client.get("/fr")).text
    assert first == second == "<h1>t-en</h1><aside>1 a&amp;b en</aside>"  # escaped once, not twice
    assert other == "<h1>t-fr</h1><aside>2 a&amp;b fr</aside>"
    assert loads == 2
    await Cache.of(app).delete("fragment:sidebar:en")
    async with app.async_test_client() as client:
        assert (await client.get("/en")).text == "<h1>t-en</h1><aside>3 a&amp;b en</aside>"
