"""The one shape every battery has: a typed config, installed on an app, found with ``X.of(app)``.

A battery (Transom's own ``Security``, ``Auth``, ``Admin``, ``Database``..., or a third party's)
subclasses :class:`Battery`::

    @dataclasses.dataclass
    class CacheConfig:
        url: str = "memory://"

    class Cache(Battery):
        name = "acme.cache"
        requires = (Security,)  # installed with their defaults if the app has none

        def __init__(self, config: CacheConfig | None = None) -> None:
            super().__init__()
            self.config = config or CacheConfig()

        def setup(self, app: App) -> None:
            app.on_shutdown(self.close)

    app.install(Cache(CacheConfig(url="redis://...")))   # or Cache(...).install(app)
    Cache.of(app)                                          # the installed one, or a clear error

The rules, the same for every battery:

- **Install once.** Installing a battery whose class (or a subclass of it) is already installed
  raises :class:`~transom.exceptions.ImproperlyConfigured`.
- **Requirements come by themselves, in any order.** What a battery ``requires`` (or its
  :meth:`Battery.requirements`, when they depend on its config) and the app lacks is
  installed with its defaults when the app is built (before it serves, or when ``X.of(app)``
  first asks for it), so ``Admin(app)`` alone works, and an explicit
  ``Security(app, config)`` before or after it is the one used.
- **Dependencies declare batteries too.** A dependency callable with an attribute
  ``__transom_requires__ = (Database,)`` (the database ``Session`` has one) makes every route
  that uses it, directly or through other dependencies, require those batteries: the app
  installs them with their defaults when it is built, so a handler taking ``Session`` is
  enough to get a database.
- **State lives on the app**, never in the process: two apps in one process each have their own.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar

from transom.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from transom.app import App

__all__ = ["Batteries", "Battery", "split_arguments"]

T = TypeVar("T", bound="Battery")
C = TypeVar("C")


class Battery:
    """Base class of batteries. Subclasses set :attr:`name`, maybe :attr:`requires`, and
    implement :meth:`setup`."""

    #: Where the battery is also reachable in ``app.extensions`` (``"transom.security"``).
    name: ClassVar[str] = ""
    #: Battery classes this one needs; the app installs missing ones with their defaults.
    requires: ClassVar[tuple[type[Battery], ...]] = ()

    def __init__(self) -> None:
        self._app: App | None = None

    @property
    def app(self) -> App:
        """The app this battery is installed on."""
        if self._app is None:
            raise ImproperlyConfigured(
                f"{type(self).__name__} is not installed on an app yet: "
                f"call app.install({type(self).__name__}(...))"
            )
        return self._app

    @property
    def installed(self) -> bool:
        """Whether the battery is installed on an app (``app`` then returns it)."""
        return self._app is not None

    def install(self, app: App) -> Self:
        """Install on ``app`` (once per app and battery class); returns the battery itself."""
        if self._app is not None:
            raise ImproperlyConfigured(f"this {type(self).__name__} is installed on an app already")
        existing = app.batteries.find(type(self))
        if existing is not None:
            raise ImproperlyConfigured(
                f"{type(self).__name__} is already installed on this app"
                + (
                    " (as a requirement of another battery, with its defaults)"
                    if app.batteries.was_required(existing)
                    else ""
                )
                + ": install each battery once, before anything asks for it with .of(app)"
            )
        self._app = app
        app.batteries.add(self)
        if self.name:
            app.extensions[self.name] = self
        self.setup(app)
        return self

    def setup(self, app: App) -> None:
        """Register what the battery adds to ``app`` (routes, middleware, hooks, checks)."""

    def requirements(self) -> tuple[type[Battery], ...]:
        """The battery classes this one needs: :attr:`requires` unless the battery's config
        changes them (``Auth`` needs ``Templates`` only when it serves pages)."""
        return type(self).requires

    @classmethod
    def of(cls, app: App) -> Self:
        """The battery of this class installed on ``app``.

        Raises:
            ImproperlyConfigured: it is not installed (nor required by an installed battery).
        """
        battery = app.batteries.find(cls)
        if battery is None:
            app.batteries.install_requirements()
            battery = app.batteries.find(cls)
        if battery is None:
            # Before the app is built, a route's dependencies may declare it (a handler
            # taking the database ``Session``): what build() would install, install now.
            app.batteries.install_requirements(app.route_requirements())
            battery = app.batteries.find(cls)
        if battery is None:
            raise ImproperlyConfigured(
                f"{cls.__name__} is not installed on this app: call "
                f"app.install({cls.__name__}(...)) (or {cls.__name__}(app)) before serving"
            )
        return battery


class Batteries:
    """The batteries installed on one app (``app.batteries``), in installation order."""

    __slots__ = ("_app", "_installed", "_required")

    def __init__(self, app: App) -> None:
        self._app = app
        self._installed: list[Battery] = []
        self._required: set[int] = set()

    def __iter__(self) -> Iterator[Battery]:
        return iter(list(self._installed))

    def __len__(self) -> int:
        return len(self._installed)

    def add(self, battery: Battery) -> None:
        self._installed.append(battery)

    def find(self, cls: type[T]) -> T | None:
        """The installed battery of class ``cls`` (or a subclass), or ``None``."""
        for battery in self._installed:
            if isinstance(battery, cls):
                return battery
        return None

    def was_required(self, battery: Battery) -> bool:
        """Whether ``battery`` was installed with its defaults because another required it."""
        return id(battery) in self._required

    def install_requirements(self, declared: Iterable[type[Battery]] = ()) -> None:
        """Install, with their defaults, the batteries that installed ones require and the app
        lacks (and theirs, in turn).

        Args:
            declared: More battery classes to install the same way when missing: the ones
                the app's routes declare (see :meth:`transom.App.route_requirements`).
        """
        for needed in declared:
            self._require(needed)
        changed = True
        while changed:
            changed = False
            for battery in list(self._installed):
                for needed in battery.requirements():
                    changed = self._require(needed) or changed

    def _require(self, needed: type[Battery]) -> bool:
        if self.find(needed) is not None:
            return False
        added = needed()
        self._required.add(id(added))
        added.install(self._app)
        return True


def split_arguments(
    battery: type[Battery], config_class: type[C], args: tuple[Any, ...], options: dict[str, Any]
) -> tuple[App | None, C]:
    """Sort out the spellings of a battery's constructor: ``X(config)``, the shorthand
    ``X(app)`` / ``X(app, config)`` (which install at once), and the deprecated keyword
    options ``X(app, option=...)`` (the fields of ``config_class``, a dataclass).

    Returns:
        The app to install on (``None``: not yet) and the config (its defaults when none).
        ``None`` arguments count as not given.

    Raises:
        TypeError: too many positional arguments, a config of the wrong class, options the
            config does not have, or a config and options together.
    """
    from transom.app import App  # the app module imports this one

    rest = [arg for arg in args if arg is not None]
    app = rest.pop(0) if rest and isinstance(rest[0], App) else None
    name = battery.__name__
    if len(rest) > 1:
        raise TypeError(f"{name}() takes an app and a {config_class.__name__}, no more")
    config = rest[0] if rest else None
    if config is not None and not isinstance(config, config_class):
        raise TypeError(f"{name}() takes a {config_class.__name__}, not {type(config).__name__}")
    if options:
        if config is not None:
            raise TypeError(f"{name}(): pass a {config_class.__name__} or options, not both")
        known = {f.name for f in dataclasses.fields(config_class)}  # type: ignore[arg-type]
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(f"{name}() got unexpected keyword arguments: {', '.join(unknown)}")
        given = ", ".join(f"{key}=..." for key in options)
        # stacklevel 3: the warning points at the line that called X(...), not X.__init__.
        warnings.warn(
            f"{name}({'app, ' if app is not None else ''}{given}) is deprecated: write "
            f"app.install({name}({config_class.__name__}({given})))",
            DeprecationWarning,
            stacklevel=3,
        )
        config = config_class(**options)
    return app, config if config is not None else config_class()
