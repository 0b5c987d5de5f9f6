"""The Redis group commit (transom.tasks.pipelining) on the live Redis: concurrent commands
share pipelines, each caller gets its own reply or error, and a cancelled caller's command is
not sent."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from _services import remove_redis_keys
from transom.tasks.pipelining import Pipeliner

from .conftest import REDIS_URL

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("redis_required")]


@pytest.fixture
async def client(prefix: str) -> AsyncIterator[Any]:
    redis = Redis.from_url(REDIS_URL)
    yield redis
    await redis.aclose()
    await remove_redis_keys(prefix)


async def test_concurrent_commands_share_pipelines_and_each_gets_its_reply(
    client: Any, prefix: str
) -> None:
    pipelines = 0
    make = client.pipeline

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal pipelines
        pipelines += 1
        return make(*args, **kwargs)

    client.pipeline = counting
    pipeliner = Pipeliner(client)
    stream = f"{prefix}:stream"
    await client.set(f"{prefix}:string", "not a stream")
    replies = await asyncio.gather(
        *(pipeliner.execute("XADD", stream, "*", "n", str(i)) for i in range(100)),
        pipeliner.execute("XADD", f"{prefix}:string", "*", "n", "x"),
        return_exceptions=True,
    )
    # The command that failed fails alone, for its caller only.
    assert isinstance(replies[-1], ResponseError)
    assert all(isinstance(r, bytes) for r in replies[:-1])
    assert len(set(replies[:-1])) == 100
    entries = await client.xrange(stream)
    assert [e[1][b"n"] for e in entries] == [str(i).encode() for i in range(100)]
    assert pipelines < 10  # 101 commands in a handful of round trips, not 101
    # A command alone goes out at once, as a plain call: no pipeline of one.
    before = pipelines
    assert isinstance(await pipeliner.execute("XADD", stream, "*", "n", "last"), bytes)
    assert pipelines == before
    await pipeliner.close()


async def test_a_cancelled_caller_is_not_sent(client: Any, prefix: str) -> None:
    pipeliner = Pipeliner(client)
    stream = f"{prefix}:stream"
    alone = asyncio.ensure_future(pipeliner.execute("XADD", stream, "*", "n", "alone"))
    first = asyncio.ensure_future(pipeliner.execute("XADD", stream, "*", "n", "cancelled"))
    kept = asyncio.ensure_future(pipeliner.execute("XADD", stream, "*", "n", "kept"))
    await asyncio.sleep(0)  # the first on the wire alone, the other two queued behind it
    first.cancel()
    await kept
    await alone
    with pytest.raises(asyncio.CancelledError):
        await first
    assert [e[1][b"n"] for e in await client.xrange(stream)] == [b"alone", b"kept"]
    await pipeliner.close()


async def test_an_unreachable_server_fails_every_caller() -> None:
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    redis = Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)
    pipeliner = Pipeliner(redis)
    replies = await asyncio.gather(
        *(pipeliner.execute("XADD", "s", "*", "n", "1") for _ in range(3)),
        return_exceptions=True,
    )
    assert all(isinstance(r, RedisConnectionError | OSError) for r in replies), replies
    await pipeliner.close()
    await redis.aclose()
