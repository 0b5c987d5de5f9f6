"""The app the real-server tests run under granian and uvicorn (copied as ``app.py``).

Configured by environment: ``RT_DB_URL`` (SQLite with the auth tables), ``RT_CHANNELS_URL``
and ``RT_PREFIX`` (the channels backend and this test's Redis key prefix).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select

from transom import App, EventSourceResponse, Request, Settings, WebSocket
from transom.auth import Argon2Hasher, Auth, AuthConfig, CurrentUser, JWTConfig, PasswordHashers
from transom.auth import login as log_user_in
from transom.db import Database, DatabaseConfig, DbSessionDep
from transom.realtime import Channels, ChannelsConfig
from transom.security import Security
from transom.sse import Event, LastEventId

app = App(Settings(secret_key="realtime-server-tests", websocket_max_message_size=1024))
Database(app, DatabaseConfig(url=os.environ["RT_DB_URL"]))
Security(app)
cheap = PasswordHashers(Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1))
Auth(app, AuthConfig(jwt=JWTConfig(), hashers=cheap, sync_permissions=False))
channels = Channels(
    app, ChannelsConfig(url=os.environ["RT_CHANNELS_URL"], key_prefix=os.environ["RT_PREFIX"])
)


class Move(BaseModel):
    x: int
    y: int


@app.get("/")
async def index() -> str:
    return "ok"


@app.get("/test-login")
async def test_login(request: Request, db: DbSessionDep) -> dict[str, Any]:
    """Log in as alice (created on first use): the session cookie, and a bearer token."""
    auth = Auth.of(app)
    user = (
        await db.execute(select(auth.user_model).where(auth.user_model.username == "alice"))
    ).scalar_one_or_none()
    if user is None:
        user = auth.user_model(username="alice", email="alice@example.com")
        with auth.activate():
            user.set_password("correct horse battery staple")
        db.add(user)
        await db.flush()
    await log_user_in(request, user)
    return {"token": auth.jwt.access_token(str(user.id))}


@app.websocket("/me")
async def me(ws: WebSocket, user: CurrentUser) -> None:
    await ws.accept()
    await ws.send_json({"username": user.username})
    await ws.receive_text()


@app.websocket("/moves")
async def moves(ws: WebSocket) -> None:
    await ws.accept()
    while True:
        move = await ws.receive_model(Move)
        await ws.send_json(move)


@app.websocket("/echo")
async def echo(ws: WebSocket) -> None:
    await ws.accept()
    async for message in ws:
        await ws.send_text(message if isinstance(message, str) else message.decode())


@app.websocket("/rooms/{room}")
async def room(ws: WebSocket, room: str) -> None:
    await ws.accept()

    async def say(text: str | bytes) -> None:
        await channels.publish(f"room:{room}", {"said": text, "via": os.getpid()})

    async def ready() -> None:
        await ws.send_json({"ready": os.getpid()})

    await channels.forward(ws, f"room:{room}", on_message=say, on_subscribed=ready)


class Note(BaseModel):
    n: int


@app.post("/rooms/{room}/messages")
async def post_message(room: str, note: Note) -> dict[str, str | None]:
    # ChannelsUnavailable (Redis down) propagates: the client gets 503 with Retry-After.
    return {"id": await channels.publish(f"room:{room}", note)}


@app.get("/rooms/{room}/events")
async def room_events(room: str) -> EventSourceResponse:
    return channels.sse(f"room:{room}")


@app.get("/ticks")
async def ticks(last_event_id: LastEventId = None) -> EventSourceResponse:
    async def numbers() -> AsyncIterator[Event]:
        start = int(last_event_id or 0)
        for n in range(start + 1, start + 4):
            yield Event({"n": n}, id=n)

    return EventSourceResponse(numbers())
