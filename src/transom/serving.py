"""Serving an app with a production ASGI server (granian or uvicorn), without the CLI.

``transom run`` and :meth:`App.run <transom.App.run>` both come here: find the app as an import
string the server's worker processes can load (:func:`locate_app`, :func:`location_of`), then
:func:`serve` it. Nothing here imports click, so the core works without the command line.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from transom.app import App

__all__ = [
    "MULTIPROC_ENV",
    "SERVER_URL_ENV",
    "AppLocation",
    "AppNotFound",
    "address",
    "clear_multiproc_dir",
    "locate_app",
    "location_of",
    "main_app",
    "option_from_env",
    "serve",
    "server_url",
]

Server = Literal["granian", "uvicorn"]
SERVERS: tuple[Server, ...] = ("granian", "uvicorn")
#: Set by :func:`serve` for the server's processes: the address it listens on.
SERVER_URL_ENV = "TRANSOM_SERVER_URL"
#: Set by :func:`location_of`: the name of the app in the script that called ``app.run()``.
MAIN_APP_ENV = "TRANSOM_MAIN_APP"

#: prometheus-client's switch to multiprocess mode: a folder shared by the worker processes.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

#: ``transom run``'s production defaults (see :func:`serve`).
DEFAULT_BACKLOG = 1024
DEFAULT_GRACEFUL_TIMEOUT = 30
DEFAULT_KEEP_ALIVE_TIMEOUT = 5
#: granian's limit on its HTTP/1 header read timeout, which is its keep-alive timeout.
MAX_KEEP_ALIVE_TIMEOUT = 60

_CANDIDATE_MODULES = ("app", "main")
_CANDIDATE_ATTRS = ("app", "application")
_FACTORIES = ("create_app", "make_app")


class AppNotFound(LookupError):
    """The app could not be found or imported where it was looked for (the message says where)."""


class AppLocation:
    """Where the app lives: an import string a server can load in its worker processes."""

    def __init__(self, module: str, attr: str, factory: bool) -> None:
        self.module = module
        self.attr = attr
        self.factory = factory

    @property
    def target(self) -> str:
        """``module:attribute``, the form servers take."""
        return f"{self.module}:{self.attr}"

    def load(self) -> App:
        """Import the module and return the app (calling the factory if it is one)."""
        from transom.app import App

        module = importlib.import_module(self.module)
        obj = getattr(module, self.attr)
        if self.factory:
            obj = obj()
        if not isinstance(obj, App):
            raise AppNotFound(f"{self.target} is a {type(obj).__name__}, not a transom.App")
        return obj


def locate_app(spec: str | None = None) -> AppLocation:
    """Find the app from ``module:attr``, ``$TRANSOM_APP``, or ``app.py``/``main.py`` in the cwd.

    Raises:
        AppNotFound: with a message that says what was looked for.
    """
    from transom.app import App

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
            raise AppNotFound(
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
        raise AppNotFound(f"Could not import {module_name!r}: {exc}") from None
    if attr:
        name = attr.removesuffix("()")
        if not hasattr(module, name):
            raise AppNotFound(f"Module {module_name!r} has no attribute {name!r}")
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
    raise AppNotFound(f"Found no transom.App in module {module_name!r}")


def location_of(app: App) -> AppLocation:
    """Where ``app`` lives when the running script (``__main__``) defines it: for ``app.run()``.

    The location is :func:`main_app`, which finds the app in the ``__main__`` of the process
    that serves: the script itself when the server runs in this process or forks it, the
    script run afresh (as multiprocessing does) in a spawned worker. Importing the script a
    second time under its file name would run it twice in one process, and define its
    models twice (an error).
    """
    main_module = sys.modules.get("__main__")
    attr = (
        next((n for n, v in vars(main_module).items() if v is app), None) if main_module else None
    )
    if main_module is None or attr is None or not getattr(main_module, "__file__", None):
        raise AppNotFound("app.run() must be called from the script that defines the app")
    os.environ[MAIN_APP_ENV] = attr  # read by main_app() in the server's processes
    return AppLocation(__name__, "main_app", True)


def main_app() -> App:
    """The app named by ``$TRANSOM_MAIN_APP`` in this process's ``__main__`` (see
    :func:`location_of`); servers call it in their worker processes."""
    from transom.app import App

    attr = os.environ.get(MAIN_APP_ENV, "")
    app = getattr(sys.modules.get("__main__"), attr, None) if attr else None
    if not isinstance(app, App):
        raise AppNotFound(f"no transom.App named {attr!r} in the __main__ module")
    return app


def address(host: str, port: int) -> str:
    """``http://host:port``, with an IPv6 host in brackets."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def server_url() -> str | None:
    """The address the server started by :func:`serve` listens on (``http://127.0.0.1:8000``),
    in that server's processes; ``None`` elsewhere (the test client, another server)."""
    return os.environ.get(SERVER_URL_ENV) or None


def clear_multiproc_dir() -> None:
    """Empty ``$PROMETHEUS_MULTIPROC_DIR`` of a previous run's files (creating the folder):
    prometheus-client requires an empty folder when the server starts, or the counters of
    processes long gone are added to the new ones. :func:`serve` does it before the workers
    start; nothing happens when the variable is not set."""
    folder = os.environ.get(MULTIPROC_ENV)
    if not folder:
        return
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)


def option_from_env(name: str, given: int | None, default: int) -> int:
    """A serving option for :meth:`App.run <transom.App.run>`: the value given in code, else
    the environment variable ``transom run`` reads for it, else the default.

    Raises:
        ValueError: when the variable is not a whole number (its name is in the message).
    """
    if given is not None:
        return given
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a whole number") from None


def serve(
    location: AppLocation,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    reload: bool = False,
    workers: int = 1,
    server: str = "granian",
    backlog: int = DEFAULT_BACKLOG,
    graceful_timeout: int = DEFAULT_GRACEFUL_TIMEOUT,
    keep_alive_timeout: int = DEFAULT_KEEP_ALIVE_TIMEOUT,
) -> None:
    """Run the app at ``location`` with a production ASGI server until it is stopped.

    Args:
        location: The app, as found by :func:`locate_app` or :func:`location_of`.
        host: Address to bind.
        port: Port to bind.
        reload: Restart the workers when a Python file under the current folder changes.
        workers: Worker processes (1 with ``reload``).
        server: ``"granian"`` or ``"uvicorn"``.
        backlog: Connections the kernel queues while every worker is busy.
        graceful_timeout: On SIGTERM (or Ctrl-C) the server stops accepting connections and
            gives the requests in flight this many seconds to finish before the workers are
            stopped; then the app's shutdown hooks run (the database pools close).
        keep_alive_timeout: Seconds an idle HTTP/1.1 keep-alive connection stays open waiting
            for the next request (1 to 60). Behind a proxy that reuses connections (nginx's
            upstream ``keepalive``), make the proxy give up on idle ones first. On granian it
            is also the time a client has to send a request's headers (a slow-header client
            can't hold a connection longer than that).

    The servers' own access logs stay off: the app writes one line per request, the same on
    both servers, to the ``transom.access`` logger (``Settings.access_log``). Without
    ``reload``, granian starts a new worker in place of one that crashed.
    """
    if server not in SERVERS:
        raise ValueError(f"unknown server {server!r} (granian or uvicorn)")
    if reload and workers > 1:
        raise ValueError("reload works with a single worker")
    if not 1 <= keep_alive_timeout <= MAX_KEEP_ALIVE_TIMEOUT:
        raise ValueError(f"keep_alive_timeout must be 1 to {MAX_KEEP_ALIVE_TIMEOUT} seconds")
    if backlog < 1 or graceful_timeout < 1:
        raise ValueError("backlog and graceful_timeout must be at least 1")
    os.environ[SERVER_URL_ENV] = address(host, port)
    clear_multiproc_dir()
    if server == "granian":
        from granian import Granian
        from granian.constants import Interfaces
        from granian.http import HTTP1Settings
        from watchfiles import PythonFilter

        if reload:
            # granian starts its workers with multiprocessing's default method, fork on Linux:
            # a worker forked after a change would inherit this process's modules, the app
            # among them (`transom run` imports it to check it), and serve the old code.
            # Spawned workers import the app afresh, as uvicorn's reloader does.
            multiprocessing.set_start_method("spawn", force=True)
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
            log_access=False,
            backlog=backlog,
            respawn_failed_workers=not reload,
            workers_kill_timeout=graceful_timeout,
            # granian has no separate idle timeout: an idle keep-alive connection is one
            # waiting for the next request's headers, closed when this runs out.
            http1_settings=HTTP1Settings(header_read_timeout=keep_alive_timeout * 1000),
        ).serve()
    else:
        import uvicorn

        uvicorn.run(
            location.target,
            host=host,
            port=port,
            reload=reload,
            workers=None if reload else workers,
            factory=location.factory,
            access_log=False,
            backlog=backlog,
            timeout_graceful_shutdown=graceful_timeout,
            timeout_keep_alive=keep_alive_timeout,
        )
