"""The lifespan protocol (``transom._lifespan``): start-up and shutdown hooks in order, a
failed start-up reported to the server, and the one-time ``gc.freeze`` after start-up."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from transom import App, Request
from transom._types import ASGIApp, Message
from transom.settings import Settings


def make_app(**settings: Any) -> App:
    return App(Settings(**settings))


def test_lifespan_context_and_hooks_run_in_order() -> None:
    events: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        events.append("enter")
        app.state.pool = "pool"
        yield
        events.append("exit")

    app = App(Settings(), lifespan=lifespan)

    @app.on_startup
    async def start() -> None:
        events.append("startup")

    @app.on_shutdown
    def stop() -> None:
        events.append("shutdown")

    @app.get("/")
    def index(request: Request) -> str:
        assert request.app is not None
        return str(request.app.state.pool)

    with app.test_client() as client:
        assert client.get("/").text == "pool"
        assert events == ["enter", "startup"]
    assert events == ["enter", "startup", "shutdown", "exit"]


async def _lifespan_messages(app: ASGIApp) -> list[Message]:
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    return sent


def test_lifespan_protocol_reports_startup_failure() -> None:
    import asyncio

    app = make_app()

    @app.on_startup
    def fail() -> None:
        raise RuntimeError("cannot reach the cache")

    sent = asyncio.run(_lifespan_messages(app))
    assert sent == [{"type": "lifespan.startup.failed", "message": "cannot reach the cache"}]

    ok = make_app()
    assert asyncio.run(_lifespan_messages(ok)) == [
        {"type": "lifespan.startup.complete"},
        {"type": "lifespan.shutdown.complete"},
    ]

    from transom.security import Security

    misconfigured = App(Settings(secret_key=None))
    Security(misconfigured)
    failed = asyncio.run(_lifespan_messages(misconfigured))
    assert failed[0]["type"] == "lifespan.startup.failed"
    assert "TRANSOM_SECRET_KEY" in failed[0]["message"]


def test_a_server_started_app_freezes_startup_objects_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio
    import gc

    import transom._lifespan

    calls: list[str] = []
    monkeypatch.setattr(transom._lifespan, "_frozen", False)

    def collect(*_args: Any) -> int:
        calls.append("collect")
        return 0

    monkeypatch.setattr(gc, "collect", collect)
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))

    with make_app(gc_freeze=True).test_client() as client:  # the test client: no freeze
        assert client.get("/nowhere").status_code == 404
    assert calls == []
    assert asyncio.run(_lifespan_messages(make_app(gc_freeze=False)))[0] == {
        "type": "lifespan.startup.complete"
    }
    assert calls == []
    asyncio.run(_lifespan_messages(make_app(gc_freeze=True)))
    assert calls == ["collect", "freeze"]  # garbage is collected first, then the rest frozen
    asyncio.run(_lifespan_messages(make_app(gc_freeze=True)))  # a second app in one process
    assert calls == ["collect", "freeze"]
