"""Server-sent events: the response type, heartbeats, Last-Event-ID, disconnects, shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from transom import App, EventSourceResponse
from transom.sse import Event, LastEventId, encode_event
from transom.testing import ServerSentEvent, parse_events_from_text


def test_encode_event_fields_and_multiline_data() -> None:
    assert encode_event(Event({"a": 1}, event="tick", id=3, retry=500)) == (
        b'event: tick\nid: 3\nretry: 500\ndata: {"a":1}\n\n'
    )
    assert encode_event("two\nlines") == b"data: two\ndata: lines\n\n"
    assert encode_event(Event(comment="hi")) == b": hi\n\n"
    with pytest.raises(ValueError, match="line break"):
        encode_event(Event("x", event="a\nb"))


def make_app(state: dict[str, Any]) -> App:
    app = App()

    @app.get("/count")
    async def count(last_event_id: LastEventId = None) -> EventSourceResponse:
        start = int(last_event_id or 0)

        async def numbers() -> AsyncIterator[Event]:
            for n in range(start + 1, start + 4):
                yield Event({"n": n}, event="number", id=n)

        return EventSourceResponse(numbers(), retry=2000)

    @app.get("/forever")
    async def forever() -> EventSourceResponse:
        async def quiet() -> AsyncIterator[str]:
            try:
                yield "first"
                await asyncio.Event().wait()  # nothing more, ever
                yield "never"
            finally:
                state["closed"] = True

        return EventSourceResponse(quiet(), ping=0.01)

    @app.get("/broken")
    async def broken() -> EventSourceResponse:
        async def fails() -> AsyncIterator[str]:
            yield "ok"
            raise RuntimeError("generator bug")

        return EventSourceResponse(fails())

    return app


def test_finite_stream_headers_and_events_over_plain_get() -> None:
    with make_app({}).test_client() as client:
        response = client.get("/count")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    events = list(parse_events_from_text(response.text))
    assert [(e.event, e.id, e.json()) for e in events] == [
        ("number", "1", {"n": 1}),
        ("number", "2", {"n": 2}),
        ("number", "3", {"n": 3}),
    ]
    assert events[0].retry == 2000


def test_last_event_id_reaches_the_handler() -> None:
    with (
        make_app({}).test_client() as client,
        client.events("/count", headers={"Last-Event-ID": "10"}) as stream,
    ):
        assert [e.json()["n"] for e in stream] == [11, 12, 13]


def test_heartbeats_and_disconnect_close_the_generator() -> None:
    state: dict[str, Any] = {}
    with make_app(state).test_client() as client:
        with client.events("/forever", comments=True) as stream:
            assert next(stream).data == "first"
            assert next(stream) == ServerSentEvent(comment="ping", event="")
            assert next(stream).comment == "ping"
            assert "closed" not in state
        # Leaving the block disconnected the client: the generator's finally ran.
        assert state == {"closed": True}


def test_shutdown_ends_open_streams() -> None:
    state: dict[str, Any] = {}
    app = make_app(state)
    client = app.test_client()
    with client.events("/forever") as stream:
        assert next(stream).data == "first"
        client._loop.run(app.shutdown())
        assert list(stream) == []  # the stream ended
    assert state == {"closed": True}
    client.close()


def test_generator_error_ends_the_stream_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with make_app({}).test_client() as client, client.events("/broken") as stream:
        assert [e.data for e in stream] == ["ok"]
    assert any(r.exc_info and "generator bug" in str(r.exc_info[1]) for r in caplog.records)


@pytest.mark.anyio
async def test_async_client_reads_events() -> None:
    async with make_app({}).async_test_client() as client, client.events("/count") as stream:
        assert [e.id async for e in stream] == ["1", "2", "3"]
