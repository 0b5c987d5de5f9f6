"""``{% cache key, ttl %}...{% endcache %}``: a template fragment rendered once per key and TTL.

The key is yours to choose, and must name everything the fragment depends on
(``{% cache "sidebar:" ~ user.id, 300 %}``): the fragment is served as stored to whoever
renders the same key. The TTL defaults to the cache's ``default_ttl``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.parser import Parser
from markupsafe import Markup

if TYPE_CHECKING:
    from transom.cache.core import Cache
    from transom.templating import Templates

__all__ = ["CacheFragmentExtension", "register_fragment_tag"]


class CacheFragmentExtension(Extension):
    """The ``{% cache %}`` tag; the environment's ``transom_cache`` is the cache it uses."""

    tags = {"cache"}

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        environment.extend(transom_cache=None)

    def parse(self, parser: Parser) -> nodes.Node:
        lineno = next(parser.stream).lineno
        key = parser.parse_expression()
        ttl: nodes.Expr = nodes.Const(None)
        if parser.stream.skip_if("comma"):
            ttl = parser.parse_expression()
        body = parser.parse_statements(("name:endcache",), drop_needle=True)
        call = self.call_method("_render", [key, ttl])
        return nodes.CallBlock(call, [], [], body).set_lineno(lineno)

    async def _render(self, key: Any, ttl: float | None, caller: Any) -> Markup:
        cache: Cache | None = self.environment.transom_cache  # type: ignore[attr-defined]
        if cache is None:  # the tag without a cache battery: render every time
            return Markup(await caller())
        full = f"fragment:{key}"
        stored = await cache.get(full)
        if isinstance(stored, str):
            return Markup(stored)  # our own rendered, already escaped, output
        html = str(await caller())
        await cache.set(full, html, ttl)
        return Markup(html)


def register_fragment_tag(cache: Cache, templates: Templates) -> None:
    """Add ``{% cache %}`` to the app's Jinja environment, using ``cache``.

    Called by the templates battery (``Cache.configure_templates``) when it gathers what the
    installed batteries add, so installing ``Cache`` never creates a template environment.
    """
    env = templates.env
    env.add_extension(CacheFragmentExtension)
    env.transom_cache = cache  # type: ignore[attr-defined]
