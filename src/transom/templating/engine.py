"""The per-app Jinja2 environment and the deferred template response."""

from __future__ import annotations

import getpass
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from ..requests import Request
from ..responses import HTMLResponse, Response

if TYPE_CHECKING:
    from ..app import App

__all__ = ["TemplateResponse", "Templates", "render"]

ContextProcessor = Callable[[Request], Mapping[str, Any]]
_EXTENSION_KEY = "transom.templating"
#: ``app.extensions[PROCESSORS_KEY]``: context processors that batteries add (current_user...).
PROCESSORS_KEY = "transom.templating.processors"
# Plain-text templates (emails, robots.txt) are not HTML: escaping would corrupt them.
_UNESCAPED_SUFFIXES = (".txt", ".text")


def _autoescape(name: str | None) -> bool:
    return not (name or "").endswith(_UNESCAPED_SUFFIXES)


def _bytecode_cache() -> jinja2.BytecodeCache:
    # One folder per user: a shared /tmp must not let another account plant bytecode.
    folder = Path(tempfile.gettempdir()) / f"transom-jinja-{getpass.getuser()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return jinja2.FileSystemBytecodeCache(str(folder))


class Templates:
    """The template environment of one app.

    Search order: the project's ``templates/`` folder, then folders added with
    :meth:`add_folder` (a router's or a battery's own templates), so a project can override
    any template it inherits. Context processors add variables to every render.
    """

    def __init__(self, app: App, folders: list[Path] | None = None) -> None:
        self.app = app
        debug = app.settings.debug
        self.folders: list[Path] = folders or [app.root_path / app.settings.templates_dir]
        self._packages: list[jinja2.BaseLoader] = []
        self._loader = jinja2.ChoiceLoader([jinja2.FileSystemLoader(self.folders)])
        self.env = jinja2.Environment(
            loader=self._loader,
            autoescape=_autoescape,
            enable_async=True,
            auto_reload=debug,
            undefined=jinja2.StrictUndefined if debug else jinja2.Undefined,
            bytecode_cache=None if debug else _bytecode_cache(),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals.update(url_for=app.url_path_for, static=app.static_url)
        self.context_processors: list[ContextProcessor] = []

    @classmethod
    def for_app(cls, app: App) -> Templates:
        """The app's environment, created on first use."""
        templates: Templates | None = app.extensions.get(_EXTENSION_KEY)
        if templates is None:
            templates = app.extensions[_EXTENSION_KEY] = cls(app)
        return templates

    def add_folder(self, folder: str | os.PathLike[str]) -> None:
        """Search ``folder`` after the project's templates (for routers and batteries)."""
        path = Path(folder)
        if path not in self.folders:
            self.folders.append(path)
            self._loader.loaders = [jinja2.FileSystemLoader(self.folders), *self._packages]
            if self.env.cache is not None:
                self.env.cache.clear()

    def add_package(self, package: str, folder: str = "templates") -> None:
        """Search the templates shipped inside an installed package."""
        self._packages.append(jinja2.PackageLoader(package, folder))
        self._loader.loaders = [jinja2.FileSystemLoader(self.folders), *self._packages]

    def context_processor(self, func: ContextProcessor) -> ContextProcessor:
        """Register ``func(request) -> dict`` whose result every template sees."""
        self.context_processors.append(func)
        return func

    def get_template(self, name: str) -> jinja2.Template:
        try:
            return self.env.get_template(name)
        except jinja2.TemplateNotFound as exc:
            searched = ", ".join(str(f) for f in self.folders)
            raise jinja2.TemplateNotFound(
                name, f"template {name!r} not found (searched: {searched})"
            ) from exc

    async def render_string(
        self, name: str, context: Mapping[str, Any], request: Request | None
    ) -> str:
        full: dict[str, Any] = {}
        if request is not None:
            full["request"] = request
            full.update(_battery_context(request))
            # Batteries register processors on the app without importing this module.
            extra = self.app.extensions.get(PROCESSORS_KEY, ())
            for processor in (*self.context_processors, *extra):
                full.update(processor(request))
        full.update(context)
        return await self.get_template(name).render_async(full)


def _battery_context(request: Request) -> dict[str, Any]:
    """CSRF, CSP nonce and flash messages when the security battery protects the app.

    Async callables are awaited by Jinja's async mode: ``{{ csrf_input() }}``.
    """
    app = request.app
    if app is None or "transom.security" not in app.extensions:
        return {}
    from markupsafe import Markup

    from ..forms.messages import get_flashed_messages
    from ..security.csrf import csrf_input, csrf_token
    from ..security.headers import csp_nonce

    async def token() -> str:
        return await csrf_token(request)

    async def hidden_input() -> Markup:
        return Markup(csrf_input(await csrf_token(request)))

    async def flashed(with_categories: bool = False) -> list[Any]:
        return await get_flashed_messages(request, with_categories=with_categories)

    return {
        "csrf_token": token,
        "csrf_input": hidden_input,
        "csp_nonce": lambda: csp_nonce(request),
        "get_flashed_messages": flashed,
    }


class TemplateResponse(HTMLResponse):
    """A response rendered from a template once the app hands it the request."""

    deferred = True
    __slots__ = ("context", "template")

    def __init__(
        self,
        template: str,
        context: Mapping[str, Any] | None = None,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
    ) -> None:
        super().__init__(b"", status_code, headers, media_type)
        self.template = template
        self.context = dict(context or {})

    async def resolve(self, request: Request) -> Response:
        if request.app is None:
            raise RuntimeError("a TemplateResponse needs a request that belongs to an App")
        templates = Templates.for_app(request.app)
        html = await templates.render_string(self.template, self.context, request)
        self.body = html.encode(self.charset)
        return self


def render(
    template: str,
    /,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    media_type: str | None = None,
    **context: Any,
) -> TemplateResponse:
    """Render ``template`` with ``context`` (plus ``request``, ``url_for``, ``static`` and
    what context processors add) as the handler's response."""
    return TemplateResponse(template, context, status_code, headers, media_type)
