"""The per-app Jinja2 environment and the deferred template response."""

from __future__ import annotations

import dataclasses
import logging
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import jinja2

from transom.batteries import Battery, split_arguments
from transom.requests import Request
from transom.responses import HTMLResponse, Response

if TYPE_CHECKING:
    from transom.app import App

__all__ = ["TemplateResponse", "Templates", "TemplatesConfig", "render"]

ContextProcessor = Callable[[Request], Mapping[str, Any]]
_EXTENSION_KEY = "transom.templating"
#: ``app.extensions[PROCESSORS_KEY]``: context processors that batteries add (current_user...).
PROCESSORS_KEY = "transom.templating.processors"
# Plain-text templates (emails, robots.txt) are not HTML: escaping would corrupt them.
_UNESCAPED_SUFFIXES = (".txt", ".text")


def _autoescape(name: str | None) -> bool:
    return not (name or "").endswith(_UNESCAPED_SUFFIXES)


logger = logging.getLogger("transom.templating")


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Jinja's compiled templates on disk, in this user's cache folder, or none at all.

    Never in a shared temporary folder: bytecode read from disk is executed, so a folder that
    another account could create first (``/tmp/...`` is predictable) would let it plant code.
    The folder is ``$XDG_CACHE_HOME/transom/jinja`` (``~/.cache/...``), made private to the
    user; when it can't be made, or is not private (owned by someone else, writable by
    others), templates are compiled in memory only.
    """
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    folder = Path(base) / "transom" / "jinja"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.stat()
    except OSError:
        return None
    if info.st_uid != os.getuid() or info.st_mode & 0o022:
        logger.warning(
            "Not caching compiled templates in %s: it is not private to this user", folder
        )
        return None
    return jinja2.FileSystemBytecodeCache(str(folder))


@dataclasses.dataclass
class TemplatesConfig:
    """The settings of :class:`Templates`.

    Attributes:
        folders: Where the project's templates live, searched first (default: the
            ``templates_dir`` setting, ``templates/``, beside the app's module).
        context_processors: ``func(request) -> dict`` whose result every template sees.
    """

    folders: Sequence[str | os.PathLike[str]] = ()
    context_processors: Sequence[ContextProcessor] = ()


class Templates(Battery):
    """The template environment of one app: ``app.install(Templates(TemplatesConfig(...)))``.

    Search order: the project's folders, then folders added with :meth:`add_folder` (a
    router's own templates), then the templates shipped by installed batteries (their
    ``template_packages``), so a project can override any template it inherits. Context
    processors add variables to every render.

    Batteries that render pages (``Auth`` with its pages, ``Admin``) require it, so it comes
    with its defaults when they are installed. ``Templates(app)`` installs at once.
    """

    name = _EXTENSION_KEY

    @overload
    def __init__(self, config: TemplatesConfig | None = None, /) -> None: ...

    @overload
    def __init__(self, app: App, config: TemplatesConfig | None = None, /) -> None: ...

    @overload
    def __init__(self, app: App, folders: list[Path], /) -> None: ...

    def __init__(self, first: Any = None, second: Any = None, /, **options: Any) -> None:
        super().__init__()
        if isinstance(second, list):
            # The old Templates(app, [folders]) spelling.
            second, options = None, {"folders": second, **options}
        app, config = split_arguments(Templates, TemplatesConfig, (first, second), options)
        self.config = config
        self.folders: list[Path] = [Path(f) for f in config.folders]
        self.context_processors: list[ContextProcessor] = list(config.context_processors)
        self._packages: list[jinja2.BaseLoader] = []
        self._loader = jinja2.ChoiceLoader([jinja2.FileSystemLoader(self.folders)])
        self._env: jinja2.Environment | None = None
        self._gathered: set[int] = set()
        self._default_folder = not self.folders
        if app is not None:
            self.install(app)

    def setup(self, app: App) -> None:
        if self._default_folder:
            self.folders.insert(0, app.root_path / app.settings.templates_dir)
            self._reload()
        # Batteries installed after this one (requirements come at build) bring their
        # templates then; rendering before the build gathers them too.
        app.add_check(self._gather)

    @property
    def env(self) -> jinja2.Environment:
        """The Jinja2 environment (made when first used: it reads the app's settings)."""
        if self._env is None:
            app = self.app
            debug = app.settings.debug
            env = jinja2.Environment(
                loader=self._loader,
                autoescape=_autoescape,
                enable_async=True,
                auto_reload=debug,
                undefined=jinja2.StrictUndefined if debug else jinja2.Undefined,
                bytecode_cache=None if debug else _bytecode_cache(),
                trim_blocks=True,
                lstrip_blocks=True,
            )
            env.globals.update(url_for=app.url_path_for, static=app.static_url)
            self._env = env
        return self._env

    @classmethod
    def for_app(cls, app: App) -> Templates:
        """The app's environment: :meth:`of`, kept for existing code.

        On an app where nothing installed it (neither ``app.install(Templates())`` nor a
        battery that requires it), it installs one with its defaults, with a
        ``DeprecationWarning``: that implicit attaching ends in the next release.
        """
        app.batteries.install_requirements()
        found = app.batteries.find(cls)
        if found is not None:
            return found
        warnings.warn(
            "Templates were attached to the app implicitly (by rendering, or by "
            "Templates.for_app); this is deprecated: call app.install(Templates())",
            DeprecationWarning,
            stacklevel=3,
        )
        return app.install(cls())

    def _gather(self) -> None:
        for battery in self.app.batteries:
            if id(battery) in self._gathered:
                continue
            self._gathered.add(id(battery))
            for package in getattr(battery, "template_packages", ()):
                self.add_package(package)
            processor = getattr(battery, "template_context", None)
            if callable(processor):
                self.context_processors.append(processor)
            # Jinja extensions, globals, filters: a battery adds them to the environment here,
            # whatever order the batteries were installed in.
            configure = getattr(battery, "configure_templates", None)
            if callable(configure):
                configure(self)

    def _reload(self) -> None:
        self._loader.loaders = [jinja2.FileSystemLoader(self.folders), *self._packages]
        if self._env is not None and self._env.cache is not None:
            self._env.cache.clear()

    def add_folder(self, folder: str | os.PathLike[str]) -> None:
        """Search ``folder`` after the project's templates (for routers and batteries)."""
        path = Path(folder)
        if path not in self.folders:
            self.folders.append(path)
            self._reload()

    def add_package(self, package: str, folder: str = "templates") -> None:
        """Search the templates shipped inside an installed package."""
        self._packages.append(jinja2.PackageLoader(package, folder))
        self._reload()

    def context_processor(self, func: ContextProcessor) -> ContextProcessor:
        """Register ``func(request) -> dict`` whose result every template sees."""
        self.context_processors.append(func)
        return func

    def get_template(self, name: str) -> jinja2.Template:
        self._gather()
        try:
            return self.env.get_template(name)
        except jinja2.TemplateNotFound as exc:
            searched = ", ".join(str(f) for f in self.folders)
            raise jinja2.TemplateNotFound(
                name, f"template {name!r} not found (searched: {searched})"
            ) from exc

    def error_page(
        self, request: Request, status: int, context: Mapping[str, Any]
    ) -> TemplateResponse | None:
        """The app's ``<status>.html`` (``404.html``, ``500.html``) as the error page, if any.

        The app asks for it when a browser gets an error outside debug mode. The template sees
        ``status_code``, ``title``, ``detail``, ``home_url`` (and ``request_id`` for 500); when
        it fails to render, the built-in page is sent.
        """
        name = f"{status}.html"
        try:
            self.get_template(name)
        except jinja2.TemplateNotFound:
            return None
        return TemplateResponse(name, context, status)

    async def render_string(
        self, name: str, context: Mapping[str, Any], request: Request | None
    ) -> str:
        full: dict[str, Any] = {}
        if request is not None:
            full["request"] = request
            full.update(_battery_context(request))
            self._gather()
            # PROCESSORS_KEY: the older way for a battery to add processors, still honoured.
            extra = self.app.extensions.get(PROCESSORS_KEY, ())
            for processor in (*self.context_processors, *extra):
                full.update(processor(request))
        full.update(context)
        return await self.get_template(name).render_async(full)


def _battery_context(request: Request) -> dict[str, Any]:
    """CSRF, CSP nonce and flash messages when the security battery protects the app.

    Async callables are awaited by Jinja's async mode: ``{{ csrf_input() }}``.
    """
    from transom.security.extension import Security

    app = request.app
    if app is None or app.batteries.find(Security) is None:
        return {}
    from markupsafe import Markup

    from transom.forms.messages import get_flashed_messages
    from transom.security.csrf import csrf_input, csrf_token
    from transom.security.headers import csp_nonce

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
