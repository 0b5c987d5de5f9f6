"""Core WebSocket support: routes, the WebSocket object, limits, refusals, the test client."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import pytest
from pydantic import BaseModel

from transom import App, Depends, Header, HTTPException, Router, Settings, WebSocket
from transom._types import Message
from transom.testing import WebSocketDenied
from transom.websockets import WebSocketDisconnect


class Move(BaseModel):
    x: int
    y: int


def refused(client: Any, path: str, **options: Any) -> WebSocketDenied:
    """The refusal a handshake to ``path`` gets (fails the test if it is accepted)."""
    with pytest.raises(WebSocketDenied) as info, client.websocket_connect(path, **options):
        pass
    return info.value


def make_app(**settings: Any) -> App:
    app = App(Settings(**settings))

    @app.websocket("/echo")
    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        async for message in ws:
            if isinstance(message, str):
                await ws.send_text(message)
            else:
                await ws.send_bytes(message)

    @app.websocket("/json")
    async def json_echo(ws: WebSocket) -> None:
        await ws.accept()
        async for data in ws.iter_json():
            await ws.send_json({"got": data})

    @app.websocket("/moves")
    async def moves(ws: WebSocket) -> None:
        await ws.accept()
        while True:
            move = await ws.receive_model(Move)
            await ws.send_json(move)

    return app


def test_echo_text_and_bytes() -> None:
    with make_app().test_client() as client, client.websocket_connect("/echo") as ws:
        ws.send_text("hello")
        assert ws.receive_text() == "hello"
        ws.send_bytes(b"\x00\x01")
        assert ws.receive_bytes() == b"\x00\x01"


def test_json_round_trip_and_bad_json_closes_1007() -> None:
    with make_app().test_client() as client, client.websocket_connect("/json") as ws:
        ws.send_json({"a": [1, 2]})
        assert ws.receive_json() == {"got": {"a": [1, 2]}}
        ws.send_text("{not json")
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_text()
        assert info.value.code == 1007
        assert "malformed JSON" in info.value.reason


def test_receive_model_validates_and_closes_1007_with_reason() -> None:
    with make_app().test_client() as client, client.websocket_connect("/moves") as ws:
        ws.send_json({"x": 1, "y": 2})
        assert ws.receive_json() == {"x": 1, "y": 2}
        ws.send_json({"x": "left", "y": 2})
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_json()
        assert info.value.code == 1007
        assert info.value.reason.startswith("x: Input should be a valid integer")


def test_oversize_message_closes_1009() -> None:
    app = make_app(websocket_max_message_size=10)
    with app.test_client() as client, client.websocket_connect("/echo") as ws:
        ws.send_text("0123456789")
        assert ws.receive_text() == "0123456789"
        ws.send_text("é" * 6)  # 6 characters, 12 bytes
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_text()
        assert info.value.code == 1009


def test_message_rate_limit_closes_1008() -> None:
    app = make_app(websocket_rate_limit=3)
    with app.test_client() as client, client.websocket_connect("/echo") as ws:
        for n in range(10):  # queued at once: far more than 3 a second
            ws.send_text(str(n))
        received: list[str] = []

        def drain() -> None:
            while True:
                received.append(ws.receive_text())

        with pytest.raises(WebSocketDisconnect) as info:
            drain()
        assert info.value.code == 1008
        assert info.value.reason == "message rate limit exceeded"
        assert received[:3] == ["0", "1", "2"]
        assert len(received) < 10


def test_idle_timeout_closes_1001() -> None:
    app = make_app(websocket_idle_timeout=0.05)
    with app.test_client() as client, client.websocket_connect("/echo") as ws:
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_text()  # the client says nothing
        assert info.value.code == 1001
        assert info.value.reason == "idle timeout"


def test_idle_timeout_counts_from_the_last_message() -> None:
    # The idle timer is one per connection, moved on by activity: a conversation longer than
    # the timeout is not cut, silence after it is (2 s; messages 0.25 s apart for 2.5 s).
    app = make_app(websocket_idle_timeout=2)
    with app.test_client() as client, client.websocket_connect("/echo") as ws:
        for n in range(10):
            ws.send_text(str(n))
            assert ws.receive_text() == str(n)
            time.sleep(0.25)
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_text()
        assert (info.value.code, info.value.reason) == (1001, "idle timeout")


def test_a_finished_connection_is_not_kept_alive_by_its_idle_timer() -> None:
    # The timer is armed for the default 300 s: it must go with the connection, or every
    # closed connection would stay in memory that long.
    app = App()
    served: list[str] = []

    @app.websocket("/once")
    async def once(ws: WebSocket) -> None:
        await ws.accept()
        served.append(await ws.receive_text())
        await ws.send_text(served[-1])

    def alive() -> int:
        gc.collect()
        return sum(1 for o in gc.get_objects() if type(o) is WebSocket)

    with app.test_client() as client:
        before = alive()
        with client.websocket_connect("/once") as ws:  # the handler returns: closed 1000
            ws.send_text("hi")
            assert ws.receive_text() == "hi"
        with client.websocket_connect("/once") as ws:  # the client closes
            ws.send_text("bye")
            assert ws.receive_text() == "bye"
            ws.close()
        assert served == ["hi", "bye"]
        assert alive() == before


def test_subprotocol_and_accept_headers() -> None:
    app = App()

    @app.websocket("/proto")
    async def proto(ws: WebSocket) -> None:
        chosen = "v2.chat" if "v2.chat" in ws.subprotocols else None
        await ws.accept(subprotocol=chosen, headers={"X-Room": "lobby"})
        await ws.send_text(str(ws.subprotocol))

    offered = ["v1.chat", "v2.chat"]
    with (
        app.test_client() as client,
        client.websocket_connect("/proto", subprotocols=offered) as ws,
    ):
        assert ws.subprotocol == "v2.chat"
        assert ws.headers["x-room"] == "lobby"
        assert ws.receive_text() == "v2.chat"
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_text()  # the handler returned: closed normally
        assert info.value.code == 1000


def test_parameters_dependencies_and_cleanup_on_router() -> None:
    events: list[str] = []

    async def token(
        authorization: Annotated[str | None, Header()] = None,
    ) -> AsyncIterator[str]:
        if authorization != "Bearer good":
            raise HTTPException(401, "bad token", headers={"WWW-Authenticate": "Bearer"})
        events.append("open")
        yield "alice"
        events.append("cleanup")

    router = Router("/rooms", name="rooms")

    @router.websocket("/{room}", name="room")
    async def room(
        ws: WebSocket, room: str, user: Annotated[str, Depends(token)], limit: int = 5
    ) -> None:
        await ws.accept()
        await ws.send_json({"room": room, "user": user, "limit": limit, "path": ws.path_params})
        await ws.receive_text()

    app = App()
    app.include_router(router)
    with app.test_client() as client:
        auth = {"Authorization": "Bearer good"}
        with client.websocket_connect("/rooms/lobby?limit=7", headers=auth) as ws:
            assert ws.receive_json() == {
                "room": "lobby",
                "user": "alice",
                "limit": 7,
                "path": {"room": "lobby"},
            }
            assert events == ["open"]
        assert events == ["open", "cleanup"]
        assert app.url_path_for("rooms.room", room="x") == "/rooms/x"
        # A dependency raising 401 before accept refuses the handshake with that status.
        denied = refused(client, "/rooms/lobby")
        assert denied.status == 401
        assert denied.json() == {"detail": "bad token"}
        # Invalid parameters refuse it with 422 and say which.
        invalid = refused(client, "/rooms/lobby?limit=many", headers=auth)
        assert invalid.status == 422
        assert "query.limit" in invalid.json()["detail"]


def test_refusal_without_denial_extension_closes_1008() -> None:
    app = App()

    @app.websocket("/private")
    async def private(ws: WebSocket) -> None:
        raise HTTPException(403, "no")

    messages: list[dict[str, Any]] = []
    incoming = [{"type": "websocket.connect"}]

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    scope = {
        "type": "websocket",
        "path": "/private",
        "headers": [(b"host", b"localhost")],
        "query_string": b"",
    }

    import asyncio

    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    assert messages == [{"type": "websocket.close", "code": 1008, "reason": "no"}]


def test_unknown_path_is_refused_404_and_http_get_is_404() -> None:
    with make_app().test_client() as client:
        assert refused(client, "/nowhere").status == 404
        assert client.get("/echo").status_code == 404


def test_disallowed_host_refused() -> None:
    with make_app().test_client() as client:
        assert refused(client, "/echo", headers={"Host": "evil.example"}).status == 400


def test_client_disconnect_ends_handler_without_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App()
    ended: list[str] = []

    @app.websocket("/wait")
    async def wait(ws: WebSocket) -> None:
        await ws.accept()
        try:
            await ws.receive_text()
        finally:
            ended.append("ended")

    with (
        caplog.at_level(logging.DEBUG),
        app.test_client() as client,
        client.websocket_connect("/wait"),
    ):
        pass
    assert ended == ["ended"]
    assert not [r for r in caplog.records if r.exc_info and r.levelno >= logging.ERROR]


def test_handler_error_closes_1011_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    app = App()

    @app.websocket("/boom")
    async def boom(ws: WebSocket) -> None:
        await ws.accept()
        raise ValueError("kaboom")

    with app.test_client() as client, client.websocket_connect("/boom") as ws:
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_text()
        assert info.value.code == 1011
    assert any("kaboom" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


def test_shutdown_closes_open_connections_with_1001() -> None:
    app = make_app()
    client = app.test_client()
    with client.websocket_connect("/echo") as ws:
        client._loop.run(app.shutdown())
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_text()
        assert info.value.code == 1001
    client.close()


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["send", "send_text", "send_bytes", "send_json"])
async def test_every_send_refuses_before_accept_after_close_and_on_a_gone_transport(
    method: str,
) -> None:
    # send_text and send_bytes repeat send()'s checks rather than call it (one coroutine less
    # per message): each must still refuse before accept(), raise WebSocketDisconnect once
    # closed, and turn the server's OSError for a gone connection into a 1001 end.
    argument: Any = {
        "send": {"type": "websocket.send", "text": "hi"},
        "send_text": "hi",
        "send_bytes": b"hi",
        "send_json": {"hi": 1},
    }[method]
    sent: list[Message] = []
    broken = False

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        if broken and message["type"] == "websocket.send":
            raise OSError("connection reset")
        sent.append(message)

    scope = {"type": "websocket", "path": "/", "headers": []}
    ws = WebSocket(scope, receive, send)
    with pytest.raises(RuntimeError, match="accept"):
        await getattr(ws, method)(argument)
    await ws.accept()
    await getattr(ws, method)(argument)
    assert sent[-1]["type"] == "websocket.send"
    broken = True
    with pytest.raises(WebSocketDisconnect) as info:
        await getattr(ws, method)(argument)
    assert info.value.code == 1001
    assert ws.close_code == 1001
    with pytest.raises(WebSocketDisconnect):
        await getattr(ws, method)(argument)


def test_handler_must_take_a_websocket() -> None:
    app = App()

    @app.websocket("/bad")
    async def bad() -> None:
        pass

    with pytest.raises(TypeError, match="takes no WebSocket"):
        app.build()


@pytest.mark.anyio
async def test_async_client() -> None:
    async with (
        make_app().async_test_client() as client,
        client.websocket_connect("/echo") as ws,
    ):
        await ws.send_text("hi")
        assert await ws.receive_text() == "hi"
