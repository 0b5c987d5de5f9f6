"""Per-request sessions built by copying a checked prototype instead of running the constructors.

``async_sessionmaker()`` merges its keyword arguments, runs ``AsyncSession.__init__`` and then
``Session.__init__``, which normalises a dozen options that are the same for every session of
a :class:`~transom.db.Database`. Copying instead saves about 6% of a single-query request's CPU
(``bench/micro.py --only transom --endpoints db --concurrency 64``: 99.6 vs 93.8 µs).
The result is always the same attributes with the same values, except for a handful that each
session must own (its identity map, its id, its ``info`` dict, empty bookkeeping dicts). So
:class:`SessionFactory` builds two sessions the ordinary way once, keeps the attributes the two
share, and makes each new session from those plus fresh copies of the rest, registered exactly
where ``Session.__init__`` registers it.

The check is structural, not a list of SQLAlchemy's attribute names: an attribute whose two
values differ and that is neither an empty dict nor one of the few known per-session values
means this SQLAlchemy keeps per-session state the copy would not reproduce, and the factory
then declines (:attr:`SessionFactory.ok` is false) and the caller uses the sessionmaker.

Each session also gets its event dispatcher ready-made. SQLAlchemy builds a session's
dispatcher on first access (``session.dispatch``) and fills it one event name at a time, on
each name's first access, from a table of empty listener collections it shares between all
sessions of the class; ``get`` and ``close`` touch half a dozen names, which came to about
4% of a single-query request in py-spy. The copy is that dispatcher with every name already
filled from the same shared table, checked the same structural way on the two prototypes:
if either holds anything but the shared entries, sessions keep SQLAlchemy's lazy dispatcher.
A listener added to one session later replaces the entry in that session's own dispatcher
only, as it does on a lazily filled one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import identity
from sqlalchemy.orm import session as orm_session

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from transom.db.sessions import DbSession

__all__ = ["SessionFactory"]

# Per-session values set below, whatever the prototype held.
_SYNC_OWN = frozenset({"identity_map", "hash_key", "info"})
_ASYNC_OWN = frozenset({"sync_session", "_proxied"})


_Parts = tuple[dict[str, Any], list[str]]
# The dispatcher's class, its slots (parent, instance class, shared empty listeners) and the
# filled-in entries every new session's dispatcher starts with.
_DispatchParts = tuple[type, dict[str, Any], dict[str, Any]]
_DISPATCH_SLOTS = ("_parent", "_instance_cls", "_empty_listeners")


def _shared(first: Any, second: Any, own: frozenset[str]) -> _Parts | None:
    """The attributes two fresh sessions share, and those that are per-session empty dicts."""
    a, b = vars(first), vars(second)
    if a.keys() != b.keys() or not own <= a.keys():
        return None
    shared: dict[str, Any] = {}
    empty: list[str] = []
    for name, value in a.items():
        if name in own:
            continue
        if value is b[name]:
            shared[name] = value
        elif type(value) is dict and not value and type(b[name]) is dict and not b[name]:
            empty.append(name)
        else:
            return None  # per-session state this copy does not know how to make
    return shared, empty


def _dispatch_parts(first: Any, second: Any) -> _DispatchParts | None:
    """How to make a filled-in dispatcher for a new session, or None to leave it lazy."""
    if "dispatch" in vars(first) or "dispatch" in vars(second):
        return None  # built by the constructor: already covered (or refused) by _shared
    a, b = first.dispatch, second.dispatch
    if type(a) is not type(b):
        return None
    try:
        slots = {name: getattr(a, name) for name in _DISPATCH_SLOTS}
        same = all(getattr(b, name) is value for name, value in slots.items())
    except AttributeError:
        return None  # not the dispatcher this was written against
    shared = slots["_empty_listeners"]
    if not same or type(shared) is not dict or vars(a) or vars(b):
        return None  # per-session entries already, or a different layout
    # Every entry as its first access would fill it in (entries are slots of the dispatcher).
    if (
        any(
            getattr(a, name) is not entry or getattr(b, name) is not entry
            for name, entry in shared.items()
        )
        or vars(a)
        or vars(b)
    ):
        return None
    return type(a), slots, dict(shared)


class SessionFactory:
    """Makes the sessions ``maker()`` would make, without running their constructors."""

    def __init__(self, maker: async_sessionmaker[DbSession]) -> None:
        first, second = maker(), maker()
        sync_first, sync_second = first.sync_session, second.sync_session
        self._async_class = type(first)
        self._sync_class = type(sync_first)
        self._info = dict(sync_first.info)
        sync_parts = _shared(sync_first, sync_second, _SYNC_OWN)
        async_parts = _shared(first, second, _ASYNC_OWN)
        self.ok = (
            sync_parts is not None
            and async_parts is not None
            and type(sync_first.identity_map) is identity._WeakInstanceDict
            and orm_session._sessions.get(sync_first.hash_key) is sync_first
        )
        self._sync, self._sync_empty = sync_parts or ({}, [])
        self._async, self._async_empty = async_parts or ({}, [])
        self._dispatch = _dispatch_parts(sync_first, sync_second) if self.ok else None
        sync_first.close()
        sync_second.close()

    def __call__(self, info: dict[str, Any]) -> DbSession:
        """A new session whose ``info`` is the maker's plus ``info``."""
        sync = object.__new__(self._sync_class)
        values = sync.__dict__
        values.update(self._sync)
        for name in self._sync_empty:
            values[name] = {}
        values["identity_map"] = identity._WeakInstanceDict()
        key = values["hash_key"] = orm_session._new_sessionid()
        values["info"] = {**self._info, **info}
        orm_session._sessions[key] = sync  # as Session.__init__ does: object_session() finds it
        if self._dispatch is not None:
            values["dispatch"] = self._new_dispatch(*self._dispatch)
        session = object.__new__(self._async_class)
        values = session.__dict__
        values.update(self._async)
        for name in self._async_empty:
            values[name] = {}
        # _assign_proxied registers the pair, so async_object_session() finds this session.
        values["sync_session"] = values["_proxied"] = session._assign_proxied(sync)
        return session

    @staticmethod
    def _new_dispatch(cls: type, slots: dict[str, Any], filled: dict[str, Any]) -> Any:
        dispatch: Any = object.__new__(cls)
        for name, value in slots.items():
            setattr(dispatch, name, value)
        for name, value in filled.items():
            setattr(dispatch, name, value)
        return dispatch
