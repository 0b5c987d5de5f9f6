"""Sessions copied from a prototype (``transom.db._session_factory``) are the maker's sessions.

``Database.session()`` builds each session by copying what two sessions made by the
``async_sessionmaker`` share, instead of running the constructors. These tests pin down that
the copy is in use on this SQLAlchemy, that it holds the same attributes as a session the maker
builds, with its own per-session state, that it is registered where SQLAlchemy looks sessions
up, and that the factory declines (and the maker is used) whenever that cannot be guaranteed.
"""

from __future__ import annotations

from typing import Any, cast

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_object_session, async_sessionmaker
from sqlalchemy.orm import object_session

from transom.db import Database, DatabaseConfig
from transom.db._session_factory import SessionFactory
from transom.db.sessions import DbSession, RoutingSession

from .models import Author

pytestmark = pytest.mark.anyio


def _maker(database: Database) -> async_sessionmaker[DbSession]:
    return database._sessionmaker


def _compare(copied: Any, made: Any, own: set[str]) -> None:
    """Same attributes; shared values identical, per-session ones distinct objects."""
    a, b = vars(copied), vars(made)
    assert a.keys() == b.keys()
    for name, value in a.items():
        if name in own or (type(value) is dict and not value):
            assert value is not b[name], name
        else:
            assert value is b[name], name


async def test_sessions_are_copies_with_what_the_maker_would_build(database: Database) -> None:
    copied = database.session(marker=1)
    assert isinstance(database._session_factory, SessionFactory)  # in use on this SQLAlchemy
    made = _maker(database)()
    made.info["marker"] = 1
    try:
        assert type(copied) is DbSession
        assert type(copied.sync_session) is RoutingSession
        _compare(copied, made, {"sync_session", "_proxied"})
        _compare(copied.sync_session, made.sync_session, {"identity_map", "hash_key", "info"})
        assert copied.sync_session.info == made.sync_session.info
        assert copied.sync_session.info["transom.db"] is database
        assert copied.sync_session.hash_key != made.sync_session.hash_key
    finally:
        await copied.close()
        await made.close()


async def test_each_copy_owns_its_state(database: Database) -> None:
    first, second = database.session(), database.session()
    try:
        for name in ("identity_map", "_new", "_deleted", "info"):
            assert getattr(first.sync_session, name) is not getattr(second.sync_session, name)
        first.info["only"] = "first"
        assert "only" not in second.info
        first.add(Author(email="a@example.com", name="A"))
        assert len(first.new) == 1
        assert len(second.new) == 0
    finally:
        await first.close()
        await second.close()


async def test_a_copy_is_found_from_its_objects_and_works_end_to_end(database: Database) -> None:
    async with database.session() as session:
        author = Author(email="b@example.com", name="B")
        session.add(author)
        await session.flush()
        assert object_session(author) is session.sync_session
        assert async_object_session(author) is session
        assert AsyncSession._retrieve_proxy_for_target(session.sync_session) is session
        await session.commit()
    async with database.session() as session:
        loaded = await session.get(Author, author.id)
        assert loaded is not None
        assert loaded.name == "B"
    assert object_session(loaded) is None  # closed: its objects are detached


async def test_reading_the_sessionmaker_switches_to_it(database: Database) -> None:
    database.session().sync_session.close()
    database.sessionmaker.configure(autoflush=False)
    assert database._session_factory is False
    session = database.session(marker=2)
    try:
        assert session.sync_session.autoflush is False
        assert session.info["marker"] == 2
        assert session.info["transom.db"] is database
    finally:
        await session.close()


class _Tagged(DbSession):
    """A session class that keeps per-session state the factory does not know."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[str] = []


async def test_unknown_per_session_state_makes_the_factory_decline() -> None:
    database = Database(DatabaseConfig(url="sqlite+aiosqlite://"))
    try:
        maker = async_sessionmaker(
            database.engine, class_=_Tagged, sync_session_class=RoutingSession
        )
        assert SessionFactory(cast("async_sessionmaker[DbSession]", maker)).ok is False
        assert SessionFactory(_maker(database)).ok is True
    finally:
        await database.dispose()
