"""Jinja2 templates: ``return render("page.html", title=...)`` from any handler.

Install the battery (``app.install(Templates())``; batteries that render pages require it);
with no configuration the ``templates/`` folder beside the app's module is used. HTML
templates are always autoescaped; rendering is async; compiled templates are cached in
memory and as bytecode on disk. In debug mode an undefined variable is an error (with the
template file and line on the debug page) instead of an empty string.
"""

from __future__ import annotations

from transom.templating.engine import TemplateResponse, Templates, TemplatesConfig, render

__all__ = ["TemplateResponse", "Templates", "TemplatesConfig", "render"]
