"""File responses with validators (ETag, Last-Modified), conditional GET and byte ranges."""

from __future__ import annotations

import mimetypes
import os
import stat
from collections.abc import Mapping
from email.utils import formatdate, parsedate_to_datetime
from urllib.parse import quote

from transom._concurrency import run_sync
from transom._types import Scope, Send
from transom.datastructures import Headers
from transom.responses import RawHeaders, Response

__all__ = ["FileResponse", "parse_range"]

CHUNK_SIZE = 64 * 1024


def parse_range(header: str, size: int) -> tuple[int, int] | bool | None:
    """Parse a single ``bytes=`` range against ``size``.

    Returns ``(start, end)`` inclusive for a satisfiable single range, ``None`` when the header
    should be ignored (malformed, several ranges, another unit: serve the whole file, as
    RFC 9110 allows), or ``False`` when the range cannot be satisfied (416).
    """
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    first, last = first.strip(), last.strip()
    if not all(part == "" or (part.isascii() and part.isdigit()) for part in (first, last)):
        return None
    if first == "":
        if last == "":
            return None
        length = int(last)
        if length == 0 or size == 0:
            return False
        return max(size - length, 0), size - 1
    start = int(first)
    if last and int(last) < start:
        return None  # syntactically invalid: ignore the header
    if start >= size:
        return False
    end = int(last) if last else size - 1
    return start, min(end, size - 1)


class FileResponse(Response):
    """Send a file from disk in chunks, answering ``If-None-Match``/``If-Modified-Since`` with
    304 and ``Range`` with 206; the file is read in the thread pool, never on the event loop."""

    __slots__ = ("_stat", "chunk_size", "path")

    def __init__(
        self,
        path: str | os.PathLike[str],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        *,
        filename: str | None = None,
        content_disposition_type: str = "attachment",
        stat_result: os.stat_result | None = None,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        self.path = os.fspath(path)
        if media_type is None:
            guessed, _ = mimetypes.guess_type(filename or self.path)
            media_type = guessed or "application/octet-stream"
        super().__init__(b"", status_code, headers, media_type)
        self.chunk_size = chunk_size
        self._stat = stat_result
        if filename is not None:
            ascii_name = filename.encode("ascii", "ignore").decode()
            ascii_name = "".join(c for c in ascii_name if c.isprintable() and c not in '"\\')
            value = f'{content_disposition_type}; filename="{ascii_name}"'
            if ascii_name != filename:
                value += f"; filename*=utf-8''{quote(filename, safe='')}"
            self.headers["Content-Disposition"] = value

    async def send_to(self, scope: Scope, send: Send, extra: RawHeaders = ()) -> None:  # type: ignore[assignment]
        # Sending sets the status (304/206/416) and headers for this one request; restore them
        # so the same response object can answer another request (with other conditions).
        status, raw = self.status_code, list(self._raw_headers)
        try:
            await self._send(scope, send, extra)
        finally:
            self.status_code = status
            self._raw_headers[:] = raw

    async def _send(self, scope: Scope, send: Send, extra: RawHeaders) -> None:
        try:
            st = self._stat if self._stat is not None else await run_sync(_stat, self.path)
        except (FileNotFoundError, NotADirectoryError):
            await Response(b"Not Found", 404, media_type="text/plain").send_to(scope, send, extra)
            return
        if not stat.S_ISREG(st.st_mode):
            await Response(b"Not Found", 404, media_type="text/plain").send_to(scope, send, extra)
            return
        size = st.st_size
        etag = f'"{st.st_mtime_ns:x}-{size:x}"'
        last_modified = formatdate(st.st_mtime, usegmt=True)
        headers = self.headers
        # A custom ETag set by the caller is the one conditional requests are compared with.
        etag = headers.setdefault("ETag", etag)
        headers.setdefault("Last-Modified", last_modified)
        headers.setdefault("Accept-Ranges", "bytes")
        request_headers = Headers(scope["headers"])
        method = scope.get("method", "GET")
        if method in ("GET", "HEAD") and self.status_code == 200:
            if _not_modified(request_headers, etag, st.st_mtime):
                self.status_code = 304
                await Response.send_to(self, scope, send, extra)
                return
            span = self._requested_range(request_headers, etag, st.st_mtime, size)
            if span is False:
                self.status_code = 416
                headers["Content-Range"] = f"bytes */{size}"
                self.body = b""
                await Response.send_to(self, scope, send, extra)
                return
            if isinstance(span, tuple):
                start, end = span
                self.status_code = 206
                headers["Content-Range"] = f"bytes {start}-{end}/{size}"
                await self._send_file(scope, send, extra, start, end - start + 1)
                return
        await self._send_file(scope, send, extra, 0, size)

    def _requested_range(
        self, request_headers: Headers, etag: str, mtime: float, size: int
    ) -> tuple[int, int] | bool | None:
        header = request_headers.get("range")
        if not header:
            return None
        if_range = request_headers.get("if-range")
        if if_range and if_range.strip() != etag and not _same_date(if_range, mtime):
            return None  # the file changed since the client's copy: send all of it
        return parse_range(header, size)

    async def _send_file(
        self, scope: Scope, send: Send, extra: RawHeaders, start: int, length: int
    ) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": self.status_code,
                "headers": self._head(scope, extra, length),
            }
        )
        if scope.get("method") == "HEAD" or length == 0:
            await send({"type": "http.response.body", "body": b""})
            return
        handle = await run_sync(open, self.path, "rb")
        try:
            await run_sync(handle.seek, start)
            remaining = length
            while remaining > 0:
                chunk = await run_sync(handle.read, min(self.chunk_size, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                await send(
                    {"type": "http.response.body", "body": chunk, "more_body": remaining > 0}
                )
            if remaining > 0:  # the file shrank under us; end the body cleanly
                await send({"type": "http.response.body", "body": b""})
        finally:
            await run_sync(handle.close)


def _stat(path: str) -> os.stat_result:
    return os.stat(path)


def _not_modified(headers: Headers, etag: str, mtime: float) -> bool:
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
        return "*" in tags or etag in tags
    since = headers.get("if-modified-since")
    return bool(since) and _same_date(since, mtime, or_later=True)


def _same_date(value: str, mtime: float, or_later: bool = False) -> bool:
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return False
    return when >= int(mtime) if or_later else when == int(mtime)
