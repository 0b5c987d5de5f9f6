"""Which SQLAlchemy event listeners are Transom's own, and a count of listener changes.

The fast paths (:mod:`transom.db._fastget`, :class:`transom.db._pool.TransomPool`) skip
SQLAlchemy machinery that fires events, so they step aside while anyone but Transom listens.
Asking every listener collection on every ``get`` costs about 6% of a one-query request
(``bench/micro.py --only transom --endpoints db --concurrency 64``: 99.4 vs 93.8 µs), yet
listeners are almost always set up once at start-up. So the fast
paths cache their answer together with :func:`changes`, a number that moves whenever any
listener is added or removed anywhere: every such change goes through four functions of
``sqlalchemy.event.registry``, which this module wraps to count the calls. Should a
SQLAlchemy release lack one of them, :func:`changes` returns a new number on every call and
the caches never answer: the checks then run each time, as before.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.event import registry

__all__ = ["changes", "is_transom_listener", "only_ours", "transom_listener"]

F = TypeVar("F", bound=Callable[..., Any])

# Marks the listeners Transom installs; the fast paths replicate what they do, so they stay on
# when only these listen. An attribute on the function itself: checked per listener.
_MARK = "__transom_listener__"

# Every addition, removal or clearing of a listener collection calls one of these.
_REGISTRY_HOOKS = (
    "_stored_in_collection",
    "_stored_in_collection_multi",
    "_removed_from_collection",
    "_clear",
)
_COUNTING = "__transom_counting__"


def transom_listener(fn: F) -> F:
    """Mark ``fn`` as one of Transom's own event hooks (see :func:`is_transom_listener`)."""
    setattr(fn, _MARK, True)
    return fn


def is_transom_listener(fn: Any) -> bool:
    """True for the hooks Transom installs."""
    return getattr(fn, _MARK, False) is True  # `is True`: not any object that answers yes


def only_ours(listeners: Any) -> bool:
    """True when every listener in the collection is one of Transom's own."""
    return all(getattr(fn, _MARK, False) is True for fn in listeners)


_count = [0]


def _counted() -> int:
    return _count[0]


def _counting(hook: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(hook)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _count[0] += 1  # before the change: a cached answer never outlives it
        return hook(*args, **kwargs)

    setattr(wrapper, _COUNTING, True)
    return wrapper


def _install() -> Callable[[], int]:
    hooks = [getattr(registry, name, None) for name in _REGISTRY_HOOKS]
    if not all(callable(hook) for hook in hooks):
        return itertools.count().__next__  # unknown SQLAlchemy: never the same number twice
    for name, hook in zip(_REGISTRY_HOOKS, hooks, strict=True):
        if not getattr(hook, _COUNTING, False):
            setattr(registry, name, _counting(hook))  # type: ignore[arg-type]
    return _counted


#: A number that changes whenever a SQLAlchemy event listener is added or removed.
changes: Callable[[], int] = _install()
