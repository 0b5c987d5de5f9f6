"""The ``transom`` command: ``run``, ``routes``, and the commands batteries register.

Batteries add commands through the ``transom.commands`` entry-point group (a click command or
group per entry), so the core never imports them.
"""

from __future__ import annotations

import importlib.metadata
import os
import traceback
from typing import TYPE_CHECKING, Any

import click

from transom import serving
from transom.serving import AppLocation, AppNotFound, serve

if TYPE_CHECKING:
    from transom.app import App

__all__ = ["AppLocation", "load_app", "locate_app", "main", "serve"]


def locate_app(spec: str | None = None) -> AppLocation:
    """:func:`transom.serving.locate_app`, with its errors as click usage errors."""
    try:
        return serving.locate_app(spec)
    except AppNotFound as exc:
        raise click.UsageError(str(exc)) from None


def load_app(ctx: click.Context) -> App:
    """The user's app, for commands (including batteries'): ``app = load_app(ctx)``."""
    root = ctx.find_root()
    cached: App | None = root.meta.get("transom.app")
    if cached is None:
        location = locate_app(root.params.get("app"))
        try:
            cached = root.meta["transom.app"] = location.load()
        except AppNotFound as exc:
            raise click.UsageError(str(exc)) from None
    return cached


class _Group(click.Group):
    """Adds the commands registered by installed batteries (entry points) on demand, and turns
    what goes wrong in any command into one paragraph instead of a traceback."""

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

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            if not exc.message.startswith("No such command"):
                raise
            # Name what exists: a battery's command is missing when its package isn't installed.
            names = ", ".join(self.list_commands(ctx))
            raise click.UsageError(f"{exc.message} The commands are: {names}.", ctx) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            message, expected = _explain(exc, ctx)
            if _wants_traceback(ctx):
                traceback.print_exc()
            elif not expected:
                message += " (run with --traceback to see where it happened)"
            raise click.ClickException(message) from None


def explain_error(exc: BaseException, ctx: click.Context | None = None) -> str:
    """One paragraph saying what went wrong, for an exception a command didn't handle.

    Batteries explain their own errors through the ``transom.cli_errors`` entry-point group:
    each entry is a callable ``(exc, ctx) -> str | None`` (the database battery names
    ``DATABASE_URL`` for a bad URL, a server that is down, a missing database).
    """
    return _explain(exc, ctx)[0]


def _explain(exc: BaseException, ctx: click.Context | None) -> tuple[str, bool]:
    """The paragraph, and whether it explains the error (False: a bare unexpected exception)."""
    from transom.exceptions import ImproperlyConfigured

    for entry in importlib.metadata.entry_points(group="transom.cli_errors"):
        try:
            message: str | None = entry.load()(exc, ctx)
        except Exception:  # a broken explainer must not hide the error it was asked about
            continue
        if message:
            return message, True
    if isinstance(exc, ImproperlyConfigured | AppNotFound):
        return str(exc), True
    text = " ".join(str(exc).split())
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__), False


def _wants_traceback(ctx: click.Context) -> bool:
    root = ctx.find_root()
    if root.params.get("show_traceback"):
        return True
    if os.environ.get("TRANSOM_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}:
        return True
    app = root.meta.get("transom.app")
    return bool(app is not None and app.settings.debug)


@click.group(cls=_Group)
@click.option("--app", "app", envvar="TRANSOM_APP", help="The app as module:attribute.")
@click.option(
    "--traceback",
    "show_traceback",
    is_flag=True,
    help="Show the traceback of an error (debug mode shows it too).",
)
@click.version_option(package_name="transom")
def main(app: str | None, show_traceback: bool) -> None:
    """Transom: run and manage your application."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to bind.")
@click.option("--reload/--no-reload", default=None, help="Restart on code changes [on in debug].")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    envvar="TRANSOM_WORKERS",
    type=click.IntRange(1),
    help="Worker processes ($TRANSOM_WORKERS; about one per CPU core in production).",
)
@click.option(
    "--backlog",
    default=serving.DEFAULT_BACKLOG,
    show_default=True,
    envvar="TRANSOM_BACKLOG",
    type=click.IntRange(1),
    help="Connections queued while every worker is busy ($TRANSOM_BACKLOG).",
)
@click.option(
    "--graceful-timeout",
    default=serving.DEFAULT_GRACEFUL_TIMEOUT,
    show_default=True,
    envvar="TRANSOM_GRACEFUL_TIMEOUT",
    type=click.IntRange(1),
    help="Seconds requests in flight get to finish on SIGTERM, before the workers are "
    "stopped and the database pools closed ($TRANSOM_GRACEFUL_TIMEOUT).",
)
@click.option(
    "--keep-alive-timeout",
    default=serving.DEFAULT_KEEP_ALIVE_TIMEOUT,
    show_default=True,
    envvar="TRANSOM_KEEP_ALIVE_TIMEOUT",
    type=click.IntRange(1, serving.MAX_KEEP_ALIVE_TIMEOUT),
    help="Seconds an idle keep-alive connection stays open ($TRANSOM_KEEP_ALIVE_TIMEOUT).",
)
@click.option("--debug/--no-debug", default=None, help="Debug mode (sets TRANSOM_DEBUG).")
@click.option("--server", type=click.Choice(serving.SERVERS), default=None, help="ASGI server.")
@click.argument("target", required=False)
@click.pass_context
def run(
    ctx: click.Context,
    host: str,
    port: int,
    reload: bool | None,
    workers: int,
    backlog: int,
    graceful_timeout: int,
    keep_alive_timeout: int,
    debug: bool | None,
    server: str | None,
    target: str | None,
) -> None:
    """Serve the app (TARGET like pkg.module:app; default app.py/main.py)."""
    if debug is not None:
        os.environ["TRANSOM_DEBUG"] = "1" if debug else "0"
    location = locate_app(target or ctx.find_root().params.get("app"))
    app = ctx.find_root().meta["transom.app"] = location.load()
    app.build()  # fail fast on bad settings, with the message, before forking workers
    if reload is None:
        reload = app.settings.debug
    if reload and workers > 1:
        raise click.UsageError("--reload works with a single worker")
    server = server or app.settings.server
    click.echo(
        f"Serving {location.target} on {serving.address(host, port)} (server: "
        f"{server}, workers: {workers}, debug: {app.settings.debug}, reload: {reload})"
    )
    serve(
        location,
        host=host,
        port=port,
        reload=reload,
        workers=workers,
        server=server,
        backlog=backlog,
        graceful_timeout=graceful_timeout,
        keep_alive_timeout=keep_alive_timeout,
    )


@main.command()
@click.argument("target", required=False)
@click.pass_context
def routes(ctx: click.Context, target: str | None) -> None:
    """Print the route table."""
    from transom.routing import Mount

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
    from transom.staticfiles import collect_static

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
