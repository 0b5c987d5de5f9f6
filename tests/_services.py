"""Live servers for tests: reachability checks, and a TCP proxy that simulates an outage.

``require_service("PostgreSQL", "127.0.0.1", 5432)`` skips the calling test with one clear line
when the server can't be reached, except under ``CI=true``, where a missing server is a broken
environment and fails the run instead of quietly skipping half the suite.

:class:`TcpProxy` stands between the code under test and a shared server (PostgreSQL, MariaDB,
Redis): a test cuts the proxy, never the server, which other test runs are using.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable

import pytest

__all__ = [
    "REDIS_URL",
    "TcpProxy",
    "is_ci",
    "remove_redis_keys",
    "require_service",
    "service_fixture",
    "service_reachable",
]

#: The shared Redis every Redis-backed test uses, each under a key prefix of its own.
REDIS_URL = "redis://127.0.0.1:6379/0"

_probed: dict[tuple[str, int], bool] = {}


def is_ci() -> bool:
    """True when the ``CI`` environment variable says we run in continuous integration."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def service_reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether a TCP connection to ``host:port`` succeeds (cached for the test session)."""
    key = (host, port)
    if key not in _probed:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                _probed[key] = True
        except OSError:
            _probed[key] = False
    return _probed[key]


def require_service(name: str, host: str, port: int) -> None:
    """Skip the current test (fail it under ``CI=true``) unless ``name`` answers on host:port.

    Args:
        name: Human name of the server, used in the message ("PostgreSQL").
        host: Host to connect to.
        port: TCP port.
    """
    if service_reachable(host, port):
        return
    message = f"{name} at {host}:{port} unreachable"
    if is_ci():
        pytest.fail(f"{message} (CI=true: required services must be running)", pytrace=False)
    pytest.skip(message)


def service_fixture(name: str, host: str, port: int) -> Callable[[], None]:
    """Make a fixture that requires the service, for ``conftest.py`` files.

    Example:
        >>> redis = service_fixture("Redis", "127.0.0.1", 6379)  # doctest: +SKIP
    """

    @pytest.fixture
    def _require() -> None:
        require_service(name, host, port)

    return _require


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; ``cut()`` simulates the server going down.

    ``freeze()`` simulates a server that hangs instead: connections stay open (and new ones
    are accepted) but nothing is forwarded any more, in either direction. It runs on the
    test's event loop: start it inside the (async) test that uses it.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.frozen = asyncio.Event()
        self.stopped = asyncio.Event()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if self.frozen.is_set():
                    await self.stopped.wait()  # swallow it, and everything after, until cut
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.frozen.is_set():
            self.writers.add(writer)
            return  # accepted, never answered
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.writers.update({writer, up_writer})
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def cut(self) -> None:
        assert self.server is not None
        self.stopped.set()
        self.server.close()
        for w in self.writers:
            w.transport.abort()  # RST, like a crashed server
        self.writers.clear()
        await self.server.wait_closed()

    async def restore(self) -> None:
        self.stopped.clear()
        await self.start()  # same port

    def freeze(self) -> None:
        self.frozen.set()


async def remove_redis_keys(prefix: str, url: str = REDIS_URL) -> None:
    """Delete every key under ``prefix`` on the Redis at ``url``: a test's own leftovers.

    Tests share one Redis and keep apart by prefix, so a test removes exactly its own keys
    (never ``FLUSHDB``, which would pull keys from under a test running beside it).
    """
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
