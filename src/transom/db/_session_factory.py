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
        session = object.__new__(self._async_class)
        values = session.__dict__
        values.update(self._async)
        for name in self._async_empty:
            values[name] = {}
        # _assign_proxied registers the pair, so async_object_session() finds this session.
        values["sync_session"] = values["_proxied"] = session._assign_proxied(sync)
        return session
