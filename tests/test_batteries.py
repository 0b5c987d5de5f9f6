"""The battery protocol (transom.batteries): install once, requirements in any order, X.of."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import pytest

from transom import App, Depends, Request
from transom.batteries import Battery
from transom.exceptions import ImproperlyConfigured


@dataclasses.dataclass
class StoreConfig:
    size: int = 10


class Store(Battery):
    name = "test.store"

    def __init__(self, config: StoreConfig | None = None) -> None:
        super().__init__()
        self.config = config or StoreConfig()

    def setup(self, app: App) -> None:
        @app.get("/size")
        def size() -> dict[str, int]:
            return {"size": self.config.size}


class Cache(Battery):
    name = "test.cache"
    requires = (Store,)

    def setup(self, app: App) -> None:
        @app.get("/cached")
        def cached() -> dict[str, int]:
            return {"size": Store.of(app).config.size}


class Panel(Battery):
    requires = (Cache,)


def test_install_then_of() -> None:
    app = App()
    store = app.install(Store(StoreConfig(size=3)))
    assert Store.of(app) is store
    assert app.extensions["test.store"] is store
    assert store.app is app
    with app.test_client() as client:
        assert client.get("/size").json() == {"size": 3}


def test_of_an_uninstalled_battery_is_a_clear_error() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"Store is not installed on this app: call"):
        Store.of(App())
    with pytest.raises(ImproperlyConfigured, match="not installed on an app yet"):
        _ = Store().app


def test_installing_twice_is_refused() -> None:
    app = App()
    Store().install(app)
    with pytest.raises(ImproperlyConfigured, match="Store is already installed on this app"):
        app.install(Store())
    other = Store()
    other.install(App())
    with pytest.raises(ImproperlyConfigured, match="installed on an app already"):
        other.install(app)


@pytest.mark.parametrize("explicit_first", [True, False])
def test_requirements_come_with_their_defaults_or_the_explicit_one(explicit_first: bool) -> None:
    app = App()
    if explicit_first:
        app.install(Store(StoreConfig(size=7)))
        app.install(Panel())
    else:
        app.install(Panel())  # needs Cache, which needs Store: both come later
        app.install(Store(StoreConfig(size=7)))
    with app.test_client() as client:
        assert client.get("/cached").json() == {"size": 7}
    assert [type(b) for b in app.batteries] == (
        [Store, Panel, Cache] if explicit_first else [Panel, Store, Cache]
    )


def test_a_requirement_alone_gets_its_defaults_at_build() -> None:
    app = App()
    app.install(Panel())
    app.build()
    assert Store.of(app).config.size == 10
    assert app.batteries.was_required(Store.of(app))
    with pytest.raises(ImproperlyConfigured, match="as a requirement of another battery"):
        app.install(Store(StoreConfig(size=1)))


def test_of_installs_requirements_when_asked_before_the_build() -> None:
    app = App()
    app.install(Cache())
    assert Store.of(app).config.size == 10


def test_two_apps_have_their_own_batteries() -> None:
    first, second = App(), App()
    first.install(Store(StoreConfig(size=1)))
    second.install(Store(StoreConfig(size=2)))
    assert (Store.of(first).config.size, Store.of(second).config.size) == (1, 2)


def test_subclasses_count_as_their_base() -> None:
    class BigStore(Store):
        pass

    app = App()
    app.install(BigStore(StoreConfig(size=99)))
    app.install(Cache())
    app.build()
    assert isinstance(Store.of(app), BigStore)
    assert len(app.batteries) == 2


# -- batteries declared by dependencies (__transom_requires__) -------------------------------


def store_size(request: Request) -> int:
    assert request.app is not None
    return Store.of(request.app).config.size


store_size.__transom_requires__ = (Store,)  # type: ignore[attr-defined]


def doubled(size: Annotated[int, Depends(store_size)]) -> int:
    return 2 * size


class Pages(Battery):
    """Its route declares Store through a dependency: installing Pages (itself declared by
    a route) must bring Store too."""

    name = "test.pages"

    def setup(self, app: App) -> None:
        @app.get("/pages")
        def pages(size: Annotated[int, Depends(store_size)]) -> dict[str, int]:
            return {"size": size}


def pages_needed(request: Request) -> None:
    return None


pages_needed.__transom_requires__ = (Pages,)  # type: ignore[attr-defined]


def test_a_dependency_declares_the_battery_it_needs() -> None:
    app = App()

    @app.get("/double")
    def double(size: Annotated[int, Depends(doubled)]) -> dict[str, int]:  # nested dependency
        return {"double": size}

    assert app.batteries.find(Store) is None
    with app.test_client() as client:
        assert client.get("/double").json() == {"double": 20}
    store = Store.of(app)
    assert app.batteries.was_required(store)  # came with its defaults


def test_an_explicit_install_wins_over_the_declared_defaults() -> None:
    app = App()

    @app.get("/guarded", dependencies=[Depends(store_size)])  # declared by a route guard
    def guarded() -> dict[str, str]:
        return {"ok": "yes"}

    app.install(Store(StoreConfig(size=3)))
    app.build()
    assert Store.of(app).config.size == 3
    assert not app.batteries.was_required(Store.of(app))


def test_of_before_build_finds_what_routes_declare() -> None:
    app = App()

    @app.get("/double")
    def double(size: Annotated[int, Depends(doubled)]) -> dict[str, int]:
        return {"double": size}

    assert Store.of(app).config.size == 10  # before build: installed as declared
    assert not app.is_built


def test_batteries_declared_by_routes_a_battery_adds_are_installed_too() -> None:
    app = App()

    @app.get("/", dependencies=[Depends(pages_needed)])
    def home() -> dict[str, str]:
        return {"home": "yes"}

    with app.test_client() as client:
        assert client.get("/pages").json() == {"size": 10}
    assert [type(b).__name__ for b in app.batteries] == ["Pages", "Store"]


def test_an_app_whose_routes_declare_nothing_gets_nothing() -> None:
    app = App()

    @app.get("/")
    def home() -> dict[str, str]:
        return {"home": "yes"}

    app.build()
    assert len(app.batteries) == 0
    with pytest.raises(ImproperlyConfigured, match="Store is not installed on this app"):
        Store.of(app)
