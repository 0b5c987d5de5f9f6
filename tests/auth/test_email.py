"""Email backends: console, memory outbox, and SMTP against a local server."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pytest

from transom.auth import ConsoleBackend, EmailMessage, MemoryBackend, SMTPBackend

pytestmark = pytest.mark.anyio
MESSAGE = EmailMessage(["to@example.com"], "Hello", "Plain body", html="<p>HTML</p>")


async def test_console() -> None:
    stream = io.StringIO()
    await ConsoleBackend(stream).send(MESSAGE)
    assert "Subject: Hello" in stream.getvalue()
    assert "Plain body" in stream.getvalue()


async def test_memory() -> None:
    backend = MemoryBackend()
    await backend.send(MESSAGE)
    assert backend.outbox == [MESSAGE]


async def test_smtp_against_a_local_server() -> None:
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A minimal SMTP server: enough of RFC 5321 for one message.
        writer.write(b"220 localhost ready\r\n")
        in_data = False
        while line := await reader.readline():
            if in_data:
                if line == b".\r\n":
                    in_data = False
                    writer.write(b"250 queued\r\n")
                else:
                    received.append(line)
            elif line.upper().startswith((b"EHLO", b"HELO")):
                writer.write(b"250 localhost\r\n")
            elif line.upper().startswith(b"DATA"):
                in_data = True
                writer.write(b"354 go ahead\r\n")
            elif line.upper().startswith(b"QUIT"):
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"250 ok\r\n")
            await writer.drain()
        writer.close()

    server: Any = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        await SMTPBackend("127.0.0.1", port, start_tls=False).send(MESSAGE)
    text = b"".join(received).decode()
    assert "Subject: Hello" in text
    assert "Plain body" in text
