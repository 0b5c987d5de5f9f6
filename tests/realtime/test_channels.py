"""The channels battery on both backends: publish/subscribe, slow consumers, SSE, WebSockets,
Redis outages and shutdown."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pydantic import BaseModel
from redis.asyncio import Redis

from _services import TcpProxy, require_service
from _services import remove_redis_keys as _remove_keys
from transom import App, EventSourceResponse, WebSocket
from transom.realtime import Channels, ChannelsConfig, ChannelsUnavailable, SlowConsumer
from transom.testing import WebSocketDenied
from transom.websockets import WebSocketDisconnect

pytestmark = pytest.mark.anyio
REDIS = "redis://127.0.0.1:6379/0"


class Note(BaseModel):
    text: str


@pytest.fixture(params=["memory", "redis", "redis-pubsub"])
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name.startswith("redis"):
        require_service("Redis", "127.0.0.1", 6379)
    return name


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    name = f"transom-test-rt-{uuid.uuid4().hex[:10]}"
    yield name
    client = Redis.from_url(REDIS)
    try:
        keys = [k async for k in client.scan_iter(match=name + "*")]
        if keys:
            await client.delete(*keys)
    except OSError:
        pass
    finally:
        await client.aclose()


Factory = Callable[..., ChannelsConfig]


@pytest.fixture
def config(backend: str, prefix: str) -> Factory:
    def make(**options: Any) -> ChannelsConfig:
        if backend == "memory":
            return ChannelsConfig(url="memory://", **options)
        options.setdefault("history", 0 if backend == "redis-pubsub" else 100)
        options.setdefault("url", REDIS)
        return ChannelsConfig(key_prefix=prefix, **options)

    return make


async def wait_until(predicate: Callable[[], bool]) -> None:
    """Wait (at most 10 s) for a condition another task brings about."""
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met within 10 s")


async def test_publish_reaches_subscribers_in_order(config: Factory) -> None:
    channels = Channels(config())
    try:
        async with (
            channels.subscribe("room:1") as first,
            channels.subscribe("room:1", "room:2") as both,
        ):
            assert channels.subscribers("room:1") == 2
            for n in range(20):
                await channels.publish("room:1", {"n": n})
            await channels.publish("room:2", Note(text="hi"), event="note")
            assert [(await asyncio.wait_for(first.get(), 20)).data["n"] for _ in range(20)] == list(
                range(20)
            )
            got = [await asyncio.wait_for(both.get(), 20) for _ in range(21)]
            assert [m.data for m in got[:20]] == [{"n": n} for n in range(20)]
            last = got[20]
            assert (last.channel, last.event, last.text) == ("room:2", "note", '{"text":"hi"}')
            assert len(first) == 0  # room:2 is not its channel
        assert channels.subscribers("room:1") == 0
    finally:
        await channels.close()


async def test_slow_consumer_drops_oldest(config: Factory) -> None:
    channels = Channels(config(queue_size=3))
    try:
        async with channels.subscribe("feed") as slow, channels.subscribe("feed") as fast:
            seen = []
            for n in range(10):
                await channels.publish("feed", n)
                seen.append((await asyncio.wait_for(fast.get(), 20)).data)
            assert seen == list(range(10))
            await wait_until(lambda: slow.dropped == 7)
            assert [(await slow.get()).data for _ in range(3)] == [7, 8, 9]
            assert len(slow) == 0  # memory stayed bounded: 3 waiting at most
    finally:
        await channels.close()


async def test_slow_consumer_closed_with_overflow_close(config: Factory) -> None:
    channels = Channels(config(queue_size=2, overflow="close"))
    try:
        async with channels.subscribe("feed") as slow:
            for n in range(3):
                await channels.publish("feed", n)
            await wait_until(lambda: slow.ended)  # the third message did not fit
            with pytest.raises(SlowConsumer):
                await asyncio.wait_for(slow.get(), 10)
    finally:
        await channels.close()


def make_app(channels_config: ChannelsConfig) -> tuple[App, Channels]:
    app = App()
    channels = Channels(app, channels_config)

    @app.websocket("/rooms/{room}")
    async def room(ws: WebSocket, room: str) -> None:
        await ws.accept()

        async def echo_to_room(text: str | bytes) -> None:
            await channels.publish(f"room:{room}", {"said": text})

        await channels.forward(ws, f"room:{room}", on_message=echo_to_room)

    @app.post("/rooms/{room}/messages")
    async def post(room: str, note: Note) -> dict[str, str | None]:
        return {"id": await channels.publish(f"room:{room}", note, event="note")}

    @app.get("/rooms/{room}/events")
    async def events(room: str) -> EventSourceResponse:
        return channels.sse(f"room:{room}")

    return app, channels


async def test_websocket_forward_and_http_publish(config: Factory) -> None:
    app, channels = make_app(config())
    async with app.async_test_client() as client:
        async with client.websocket_connect("/rooms/a") as ws:
            await wait_until(lambda: channels.subscribers("room:a") == 1)
            assert (await client.post("/rooms/a/messages", json={"text": "one"})).status_code == 200
            assert await asyncio.wait_for(ws.receive_json(), 20) == {"text": "one"}
            await ws.send_text("two")  # the handler publishes what the client says
            assert await asyncio.wait_for(ws.receive_json(), 20) == {"said": "two"}
        await wait_until(lambda: channels.subscribers("room:a") == 0)


async def test_websocket_slow_consumer_closed_1013(config: Factory) -> None:
    app, channels = make_app(config(queue_size=2, overflow="close"))
    async with app.async_test_client() as client, client.websocket_connect("/rooms/b") as ws:
        await wait_until(lambda: channels.subscribers("room:b") == 1)
        # Publish from inside the app's loop without yielding: the relay can't drain meanwhile.
        for n in range(5):
            channels._deliver("room:b", str(n), None, b"%d" % n)
        assert await close_code(ws) == 1013


async def close_code(ws: Any) -> int:
    """Read until the server closes the WebSocket; its close code."""
    try:
        while True:
            await asyncio.wait_for(ws.receive_text(), 20)
    except WebSocketDisconnect as exc:
        return exc.code


async def test_sse_stream_and_last_event_id_replay(config: Factory, backend: str) -> None:
    app, channels = make_app(config())
    async with app.async_test_client() as client:
        async with client.events("/rooms/c/events") as stream:
            for text in ("one", "two", "three"):
                await client.post("/rooms/c/messages", json={"text": text})
            events = [await asyncio.wait_for(stream.__anext__(), 20) for _ in range(3)]
        assert [(e.event, e.json()) for e in events] == [
            ("note", {"text": "one"}),
            ("note", {"text": "two"}),
            ("note", {"text": "three"}),
        ]
        await wait_until(lambda: channels.subscribers("room:c") == 0)
        if backend == "redis-pubsub":
            assert events[0].id is None  # plain pub/sub keeps nothing to replay
            return
        # Reconnecting after the first event replays the two that followed it.
        headers = {"Last-Event-ID": str(events[0].id)}
        async with client.events("/rooms/c/events", headers=headers) as stream:
            replayed = [await asyncio.wait_for(stream.__anext__(), 20) for _ in range(2)]
            await client.post("/rooms/c/messages", json={"text": "four"})
            live = await asyncio.wait_for(stream.__anext__(), 20)
        assert [e.json()["text"] for e in [*replayed, live]] == ["two", "three", "four"]
        assert [e.id for e in replayed] == [events[1].id, events[2].id]


async def test_shutdown_closes_websockets_1001_and_ends_subscriptions(config: Factory) -> None:
    app, channels = make_app(config())
    client = app.async_test_client()
    await client.__aenter__()
    async with client.websocket_connect("/rooms/d") as ws:
        await wait_until(lambda: channels.subscribers("room:d") == 1)
        async with channels.subscribe("other") as other:
            await app.shutdown()
            with pytest.raises(WebSocketDisconnect) as info:
                await asyncio.wait_for(ws.receive_text(), 20)
            assert info.value.code == 1001
            with pytest.raises(StopAsyncIteration):
                await other.get()
    await client.__aexit__(None, None, None)


async def test_unknown_backend_is_refused() -> None:
    from transom.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="unknown channels backend"):
        Channels(ChannelsConfig(url="kafka://x"))


async def test_denied_websocket_does_not_subscribe(config: Factory) -> None:
    app, channels = make_app(config())
    async with app.async_test_client() as client:
        with pytest.raises(WebSocketDenied):
            async with client.websocket_connect("/nowhere"):
                pass
        assert channels.subscribers("room:a") == 0


# -- Redis outages ------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["redis"])
async def test_redis_outage_publish_fails_clearly_and_subscribers_resume(
    backend: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = TcpProxy("127.0.0.1", 6379)
    await proxy.start()
    through_proxy = ChannelsConfig(
        url=f"redis://127.0.0.1:{proxy.port}/0",
        key_prefix=prefix,
        socket_timeout=2.0,
        reconnect_delay=0.05,
    )
    subscriber_side = Channels(through_proxy)
    direct = Channels(ChannelsConfig(url=REDIS, key_prefix=prefix))
    try:
        async with subscriber_side.subscribe("news") as news:
            await direct.publish("news", 1)
            assert (await asyncio.wait_for(news.get(), 10)).data == 1
            await proxy.cut()
            # A publisher that can't reach Redis gets a clear error (an HTTP 503).
            with pytest.raises(ChannelsUnavailable) as failed:
                await subscriber_side.publish("news", "lost")
            assert failed.value.status_code == 503
            assert failed.value.headers == {"Retry-After": "5"}
            assert "Redis unavailable" in str(failed.value)
            # Published elsewhere while this process is cut off: kept in the stream.
            await direct.publish("news", 2)
            await direct.publish("news", 3)
            await proxy.restore()
            # The subscriber reconnects by itself and catches up, in order, then goes on live.
            got = [(await asyncio.wait_for(news.get(), 20)).data for _ in range(2)]
            await direct.publish("news", 4)
            got.append((await asyncio.wait_for(news.get(), 20)).data)
            assert got == [2, 3, 4]
        assert any("subscription lost" in r.getMessage() for r in caplog.records)
    finally:
        await subscriber_side.close()
        await direct.close()
        await proxy.cut()


@pytest.mark.parametrize("backend", ["redis"])
async def test_redis_outage_answers_503_from_a_handler(backend: str, prefix: str) -> None:
    proxy = TcpProxy("127.0.0.1", 6379)
    await proxy.start()
    app, _ = make_app(ChannelsConfig(url=f"redis://127.0.0.1:{proxy.port}/0", key_prefix=prefix))
    try:
        async with app.async_test_client() as client:
            await proxy.cut()
            response = await client.post("/rooms/x/messages", json={"text": "hi"})
            assert response.status_code == 503
            assert response.headers["retry-after"] == "5"
    finally:
        await proxy.cut()


def test_an_app_served_again_after_shutdown_still_delivers(backend: str) -> None:
    """One app, two test clients in a row (each runs start-up and shutdown, on its own event
    loop): the channels the first shutdown closed work again for the second."""
    prefix = f"transom-test-rt-{uuid.uuid4().hex[:10]}"
    url = "memory://" if backend == "memory" else REDIS
    history = 0 if backend == "redis-pubsub" else 100
    app, _ = make_app(ChannelsConfig(url=url, key_prefix=prefix, history=history))

    async def serve(turn: int) -> None:
        async with app.async_test_client() as client, client.events("/rooms/again/events") as s:
            published = await client.post("/rooms/again/messages", json={"text": f"turn {turn}"})
            assert published.status_code == 200, published.text
            event = await asyncio.wait_for(s.__anext__(), 20)
            assert (event.event, event.json()) == ("note", {"text": f"turn {turn}"})

    try:
        for turn in range(2):
            asyncio.run(serve(turn))
    finally:
        if backend != "memory":
            asyncio.run(_remove_keys(prefix))
