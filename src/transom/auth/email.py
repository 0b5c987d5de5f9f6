"""Sending email: a console backend by default, async SMTP in production, a memory outbox in tests.

Example:
    >>> import asyncio
    >>> outbox = MemoryBackend()
    >>> asyncio.run(outbox.send(EmailMessage(to=["a@example.com"], subject="Hi", body="Hello")))
    >>> outbox.outbox[0].subject
    'Hi'
"""

from __future__ import annotations

import abc
import dataclasses
import email.message
import email.utils
import sys
import time
from collections.abc import Sequence
from typing import TextIO

__all__ = ["ConsoleBackend", "EmailBackend", "EmailMessage", "MemoryBackend", "SMTPBackend"]


@dataclasses.dataclass
class EmailMessage:
    """One email: plain text, optionally with an HTML alternative."""

    to: Sequence[str]
    subject: str
    body: str
    html: str | None = None
    from_email: str = "webmaster@localhost"

    def to_mime(self) -> email.message.EmailMessage:
        """The message as the standard library's ``EmailMessage`` (headers and parts)."""
        message = email.message.EmailMessage()
        message["From"] = self.from_email
        message["To"] = ", ".join(self.to)
        message["Subject"] = self.subject
        message["Date"] = email.utils.formatdate(localtime=False)
        message["Message-ID"] = email.utils.make_msgid()
        message.set_content(self.body)
        if self.html is not None:
            message.add_alternative(self.html, subtype="html")
        return message


class EmailBackend(abc.ABC):
    """Delivers messages."""

    @abc.abstractmethod
    async def send(self, message: EmailMessage) -> None:
        """Deliver ``message`` (raise on failure)."""


class ConsoleBackend(EmailBackend):
    """Prints messages (development default): nothing leaves the machine.

    Args:
        stream: Where to write (default ``sys.stdout``).
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    async def send(self, message: EmailMessage) -> None:
        stream = self.stream or sys.stdout
        stream.write(message.to_mime().as_string() + "\n" + "-" * 72 + "\n")
        stream.flush()


class MemoryBackend(EmailBackend):
    """Keeps messages in :attr:`outbox`, for tests."""

    def __init__(self) -> None:
        self.outbox: list[EmailMessage] = []

    async def send(self, message: EmailMessage) -> None:
        self.outbox.append(message)

    def wait(self, count: int = 1, timeout: float = 5.0) -> list[EmailMessage]:
        """Block until the outbox holds ``count`` messages (the battery sends in the background).

        For synchronous tests (``TestClient``): the app's loop runs in another thread.

        Raises:
            TimeoutError: fewer messages arrived within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while len(self.outbox) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.outbox)} of {count} emails after {timeout} s")
            time.sleep(0.005)
        return self.outbox


class SMTPBackend(EmailBackend):
    """Sends through an SMTP server with aiosmtplib (never blocks the event loop).

    Args:
        hostname: The server.
        port: Its port (587 with ``start_tls``, 465 with ``use_tls``).
        username: Login, if the server wants one.
        password: Password for ``username``.
        use_tls: Implicit TLS from the first byte (port 465).
        start_tls: Upgrade with STARTTLS (``None``: when the server offers it).
        timeout: Seconds before giving up.
    """

    def __init__(
        self,
        hostname: str = "localhost",
        port: int = 25,
        *,
        username: str | None = None,
        password: str | None = None,
        use_tls: bool = False,
        start_tls: bool | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.hostname = hostname
        self.port = port
        self.username = username
        self.password = password
        self.use_tls = use_tls
        self.start_tls = start_tls
        self.timeout = timeout

    async def send(self, message: EmailMessage) -> None:
        import aiosmtplib

        await aiosmtplib.send(
            message.to_mime(),
            hostname=self.hostname,
            port=self.port,
            username=self.username,
            password=self.password,
            use_tls=self.use_tls,
            start_tls=self.start_tls,
            timeout=self.timeout,
        )
