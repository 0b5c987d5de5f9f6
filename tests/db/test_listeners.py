"""``transom.db._listeners``: Transom's own listeners, and the count of listener changes."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.event import registry

from transom.db import _listeners
from transom.db._listeners import changes, is_transom_listener, only_ours, transom_listener


def _noop(*_args: Any) -> None:
    return None


def test_every_listener_change_moves_the_count() -> None:
    engine = create_engine("sqlite://")
    try:
        steps = [changes()]
        event.listen(engine, "before_cursor_execute", _noop)  # on one engine
        steps.append(changes())
        event.remove(engine, "before_cursor_execute", _noop)
        steps.append(changes())
        event.listen(Engine, "before_execute", _noop)  # on the class: every engine
        steps.append(changes())
        event.remove(Engine, "before_execute", _noop)
        steps.append(changes())
        event.listen(engine.pool, "checkout", _noop)  # on a pool
        steps.append(changes())
        event.remove(engine.pool, "checkout", _noop)
        steps.append(changes())
        assert len(set(steps)) == len(steps), steps
        assert changes() == steps[-1]  # and it stays put while nothing changes
    finally:
        engine.dispose()


def test_an_unknown_sqlalchemy_means_no_caching(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(registry, "_clear")
    count = _listeners._install()
    assert count() != count()


def test_transom_listeners_are_recognised() -> None:
    @transom_listener
    def ours(*_args: Any) -> None:
        return None

    class Anything:
        def __getattr__(self, _name: str) -> Any:
            return "yes"

    assert is_transom_listener(ours)
    assert not is_transom_listener(_noop)
    assert not is_transom_listener(Anything())
    assert only_ours([ours])
    assert only_ours([])
    assert not only_ours([ours, _noop])
