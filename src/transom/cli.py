"""The ``transom`` command: ``run``, ``routes``, and the commands batteries register.

Batteries add commands through the ``transom.commands`` entry-point group (a click command or
group per entry), so the core never imports them.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from .app import App

__all__ = ["AppLocation", "load_app", "locate_app", "main", "serve", "serve_app"]

_CANDIDATE_MODULES = ("app", "main")
_CANDIDATE_ATTRS = ("app", "application")
_FACTORIES = ("create_app", "make_app")


class AppLocation:
    """Where the app lives: an import string a server can load in its worker processes."""

    def __init__(self, module: str, attr: str, factory: bool) -> None:
        self.module = module
        self.attr = attr
        self.factory = factory

    @property
    def target(self) -> str:
        return f"{self.module}:{self.attr}"

    def load(self) -> App:
        from .app import App

        module = importlib.import_module(self.module)
        obj = getattr(module, self.attr)
        if self.factory:
            obj = obj()
        if not isinstance(obj, App):
            raise click.UsageError(f"{self.target} is a {type(obj).__name__}, not a transom.App")
        return obj


def locate_app(spec: str | None = None) -> AppLocation:
    """Find the app from ``module:attr``, ``$TRANSOM_APP``, or ``app.py``/``main.py`` in the cwd."""
    from .app import App

    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    spec = spec or os.environ.get("TRANSOM_APP")
    if spec:
        module_name, _, attr = spec.partition(":")
    else:
        module_name = next((m for m in _CANDIDATE_MODULES if Path(f"{m}.py").exists()), "")
        attr = ""
        if not module_name:
            raise click.UsageError(
                "Could not find an app: no app.py or main.py here. Pass one as "
                "'module:attribute' (transom --app pkg.module:app run) or set TRANSOM_APP."
            )
    if module_name.endswith(".py"):
        module_name = module_name[:-3].replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise click.UsageError(f"Could not import {module_name!r}: {exc}") from None
    if attr:
        name = attr.removesuffix("()")
        if not hasattr(module, name):
            raise click.UsageError(f"Module {module_name!r} has no attribute {name!r}")
        factory = attr.endswith("()") or not isinstance(getattr(module, name), App)
        return AppLocation(module_name, name, factory)
    for name in _CANDIDATE_ATTRS:
        if isinstance(getattr(module, name, None), App):
            return AppLocation(module_name, name, False)
    apps = [n for n, v in vars(module).items() if isinstance(v, App)]
    if len(apps) == 1:
        return AppLocation(module_name, apps[0], False)
    for name in _FACTORIES:
        if callable(getattr(module, name, None)):
            return AppLocation(module_name, name, True)
    raise click.UsageError(f"Found no transom.App in module {module_name!r}")


def load_app(ctx: click.Context) -> App:
    """The user's app, for commands (including batteries'): ``app = load_app(ctx)``."""
    root = ctx.find_root()
    cached: App | None = root.meta.get("transom.app")
    if cached is None:
        cached = root.meta["transom.app"] = locate_app(root.params.get("app")).load()
    return cached


def serve(
    location: AppLocation,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    reload: bool = False,
    workers: int = 1,
    server: str = "granian",
) -> None:
    """Run ``location`` with a production ASGI server."""
    if server == "granian":
        from granian import Granian
        from granian.constants import Interfaces
        from watchfiles import PythonFilter

        Granian(
            location.target,
            address=host,
            port=port,
            interface=Interfaces.ASGI,
            workers=workers,
            reload=reload,
            # Restart on Python changes only, as uvicorn does: templates and static files are
            # re-read on their own, and a SQLite file (with its -wal/-shm companions) written
            # by the app beside its code must not restart it in a loop.
            reload_filter=PythonFilter,
            factory=location.factory,
            log_access=reload,
        ).serve()
    elif server == "uvicorn":
        import uvicorn

        uvicorn.run(
            location.target,
            host=host,
            port=port,
            reload=reload,
            workers=None if reload else workers,
            factory=location.factory,
        )
    else:
        raise click.UsageError(f"unknown server {server!r} (granian or uvicorn)")


def serve_app(
    app: App,
    *,
    host: str,
    port: int,
    reload: bool | None,
    workers: int,
    server: str | None,
) -> None:
    """``app.run()``: find the app's import string in ``__main__`` so workers can import it."""
    main_module = sys.modules.get("__main__")
    main_file = getattr(main_module, "__file__", None)
    attr = (
        next((n for n, v in vars(main_module).items() if v is app), None) if main_module else None
    )
    if not main_file or attr is None:
        raise RuntimeError("app.run() must be called from the script that defines the app")
    directory = str(Path(main_file).resolve().parent)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    location = AppLocation(Path(main_file).stem, attr, False)
    serve(
        location,
        host=host,
        port=port,
        reload=app.settings.debug if reload is None else reload,
        workers=workers,
        server=server or app.settings.server,
    )


class _Group(click.Group):
    """Adds the commands registered by installed batteries (entry points) on demand."""

    def _battery_commands(self) -> dict[str, click.Command]:
        commands: dict[str, click.Command] = {}
        for entry in importlib.metadata.entry_points(group="transom.commands"):
            commands[entry.name] = entry  # type: ignore[assignment]
        return commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._battery_commands()})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        entry: Any = self._battery_commands().get(name)
        return entry.load() if entry is not None else None


@click.group(cls=_Group)
@click.option("--app", "app", envvar="TRANSOM_APP", help="The app as module:attribute.")
@click.version_option(package_name="transom")
def main(app: str | None) -> None:
    """Transom: run and manage your application."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to bind.")
@click.option("--reload/--no-reload", default=None, help="Restart on code changes [on in debug].")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1), help="Processes.")
@click.option("--debug/--no-debug", default=None, help="Debug mode (sets TRANSOM_DEBUG).")
@click.option(
    "--server", type=click.Choice(["granian", "uvicorn"]), default=None, help="ASGI server."
)
@click.argument("target", required=False)
@click.pass_context
def run(
    ctx: click.Context,
    host: str,
    port: int,
    reload: bool | None,
    workers: int,
    debug: bool | None,
    server: str | None,
    target: str | None,
) -> None:
    """Serve the app (TARGET like pkg.module:app; default app.py/main.py)."""
    if debug is not None:
        os.environ["TRANSOM_DEBUG"] = "1" if debug else "0"
    location = locate_app(target or ctx.find_root().params.get("app"))
    app = location.load()
    from .exceptions import ImproperlyConfigured

    try:
        app.build()  # fail fast on bad settings, with the message, before forking workers
    except ImproperlyConfigured as exc:
        raise click.ClickException(str(exc)) from None
    if reload is None:
        reload = app.settings.debug
    if reload and workers > 1:
        raise click.UsageError("--reload works with a single worker")
    click.echo(
        f"Serving {location.target} on http://{host}:{port} (server: "
        f"{server or app.settings.server}, debug: {app.settings.debug}, reload: {reload})"
    )
    serve(
        location,
        host=host,
        port=port,
        reload=reload,
        workers=workers,
        server=server or app.settings.server,
    )


@main.command()
@click.argument("target", required=False)
@click.pass_context
def routes(ctx: click.Context, target: str | None) -> None:
    """Print the route table."""
    from .routing import Mount

    app = locate_app(target or ctx.find_root().params.get("app")).load()
    app.route_table  # noqa: B018 (compiles the routes: a broken handler fails here)
    rows = []
    for item in app.iter_routes():
        if isinstance(item, Mount):
            rows.append(("*", item.prefix + "/…", item.name or "", _qualname(item.app)))
        else:
            rows.append((",".join(item.methods), item.path, item.name, _qualname(item.endpoint)))
    widths = [
        max(len(r[i]) for r in [("METHODS", "PATH", "NAME", "HANDLER"), *rows]) for i in range(4)
    ]
    for row in [("METHODS", "PATH", "NAME", "HANDLER"), *rows]:
        click.echo("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())


@main.command()
@click.option("--no-compress", is_flag=True, help="Do not write .gz copies of text assets.")
@click.pass_context
def collectstatic(ctx: click.Context, no_compress: bool) -> None:
    """Copy static files to static_root with fingerprinted names and a manifest."""
    from .staticfiles import collect_static

    app = load_app(ctx)
    settings = app.settings
    sources = [app.root_path / settings.static_dir]
    # Batteries (the admin...) register the folders of their own assets here.
    sources.extend(app.extensions.get("transom.static.sources", []))
    target = app.root_path / settings.static_root
    manifest = collect_static(sources, target, compress=not no_compress)
    click.echo(f"Collected {len(manifest)} files into {target}")


def _qualname(obj: Any) -> str:
    module = getattr(obj, "__module__", "")
    name = getattr(obj, "__qualname__", type(obj).__qualname__)
    return f"{module}.{name}" if module else name


if __name__ == "__main__":  # pragma: no cover
    main()
