"""WebSockets with the security and auth batteries: Origin checks, session and token auth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from auth.conftest import CHEAP, add_test_routes, add_user, log_in, tables
from transom import App, Settings, WebSocket
from transom.auth import Auth, AuthConfig, CurrentUser, JWTConfig, MemoryBackend
from transom.db import Database, DatabaseConfig, Model, get_database
from transom.db.config import sync_url
from transom.security import CSRFConfig, Security, SecurityConfig, SessionDataDep
from transom.testing import AsyncTestClient, WebSocketDenied

pytestmark = pytest.mark.anyio


@pytest.fixture
def app(tmp_path: Path) -> App:
    url = f"sqlite+aiosqlite:///{tmp_path / 'realtime.sqlite3'}"
    engine = create_engine(sync_url(url))
    Model.metadata.create_all(engine, tables=tables())
    engine.dispose()
    app = App(Settings(secret_key="realtime-tests"))
    app.install(Database(DatabaseConfig(url=url)))
    app.install(
        Security(SecurityConfig(csrf=CSRFConfig(trusted_origins=["https://*.trusted.example"])))
    )
    app.install(
        Auth(
            AuthConfig(
                hashers=CHEAP,
                email_backend=MemoryBackend(),
                jwt=JWTConfig(),
                sync_permissions=False,
            )
        )
    )

    add_test_routes(app)

    @app.websocket("/me")
    async def me(ws: WebSocket, user: CurrentUser, session: SessionDataDep) -> None:
        await ws.accept()
        await ws.send_json({"username": user.username, "session": "_auth_user_id" in session})

    @app.websocket("/open")
    async def open_socket(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("hello")

    return app


async def denied(client: AsyncTestClient, path: str, **options: Any) -> WebSocketDenied:
    with pytest.raises(WebSocketDenied) as info:
        async with client.websocket_connect(path, **options):
            pass
    return info.value


async def test_session_cookie_authenticates_the_handshake(app: App) -> None:
    async with app.async_test_client() as client:
        await add_user(app)
        assert (await denied(client, "/me")).status == 401
        await log_in(client)
        async with client.websocket_connect("/me") as ws:
            data = await ws.receive_json()
        # The user, and the session itself (read through SessionDataDep), in the handler.
        assert data == {"username": "alice", "session": True}


async def test_bearer_token_authenticates_the_handshake(app: App) -> None:
    async with app.async_test_client() as client:
        user = await add_user(app)
        token = Auth.of(app).jwt.access_token(str(user.id))
        headers = {"Authorization": f"Bearer {token}"}
        async with client.websocket_connect("/me", headers=headers) as ws:
            assert (await ws.receive_json())["username"] == "alice"
        bad = await denied(client, "/me", headers={"Authorization": "Bearer nope"})
        assert bad.status == 401


async def test_foreign_origin_is_refused_same_and_trusted_origins_pass(app: App) -> None:
    async with app.async_test_client() as client:
        await add_user(app)
        await log_in(client)
        refused = await denied(client, "/me", headers={"Origin": "https://evil.example"})
        assert refused.status == 403
        assert refused.json() == {"detail": "Cross-origin WebSocket refused"}
        assert (await denied(client, "/open", headers={"Origin": "null"})).status == 403
        for origin in ("http://testserver", "https://app.trusted.example"):
            async with client.websocket_connect("/me", headers={"Origin": origin}) as ws:
                assert (await ws.receive_json())["username"] == "alice"
        # No Origin: not a browser page, nothing ambient chosen by a third party.
        async with client.websocket_connect("/open") as ws:
            assert await ws.receive_text() == "hello"


async def test_without_security_battery_origin_is_not_checked() -> None:
    app = App()

    @app.websocket("/open")
    async def open_socket(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("hello")

    async with (
        app.async_test_client() as client,
        client.websocket_connect("/open", headers={"Origin": "https://evil.example"}) as ws,
    ):
        assert await ws.receive_text() == "hello"


async def test_current_user_does_not_hold_a_pool_connection(app: App) -> None:
    engine = get_database(app).engine
    async with app.async_test_client() as client:
        await add_user(app)
        await log_in(client)
        async with client.websocket_connect("/me") as ws:
            assert (await ws.receive_json())["username"] == "alice"
            # The user was loaded to resolve CurrentUser; the handler still runs, and its
            # transaction was committed: no connection is checked out for the WebSocket.
            pool: Any = engine.pool  # a QueuePool (checkedout() is not on the Pool base)
            assert pool.checkedout() == 0
