"""Form body parsing (urlencoded and multipart) with limits enforced while streaming."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError, MultipartParseError
from python_multipart.multipart import MultipartState, parse_options_header

from transom.datastructures import FormData, Headers, UploadFile
from transom.exceptions import HTTPException

if TYPE_CHECKING:
    from transom.requests import Request

# A non-file field larger than this is refused: text fields have no business being huge.
MAX_FIELD_SIZE = 1024 * 1024


async def parse_form(
    request: Request,
    max_body: int,
    max_upload: int,
    max_fields: int,
    max_files: int,
    spool_size: int,
) -> FormData:
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type == b"application/x-www-form-urlencoded":
        body = await request.body()
        try:
            # Decode percent-escapes byte for byte (latin-1); _utf8 then reads them as UTF-8, so
            # "%C3%A9" and a raw UTF-8 "é" both arrive as "é".
            pairs = parse_qsl(
                body.decode("latin-1"),
                keep_blank_values=True,
                max_num_fields=max_fields,
                encoding="latin-1",
            )
        except ValueError:
            raise HTTPException(400, f"Too many form fields (limit {max_fields})") from None
        decoded = [(_utf8(k), _utf8(v)) for k, v in pairs]
        return FormData(decoded)
    if content_type == b"multipart/form-data":
        boundary = options.get(b"boundary")
        if not boundary:
            raise HTTPException(400, "Multipart body without a boundary")
        return await _MultipartReader(
            request, boundary, max_upload, max_fields, max_files, spool_size
        ).read()
    raise HTTPException(
        415, "Expected a form body (application/x-www-form-urlencoded or multipart/form-data)"
    )


def _utf8(text: str) -> str:
    # parse_qsl decoded percent-escapes as latin-1 above; re-decode them as UTF-8 text.
    return text.encode("latin-1").decode("utf-8", errors="replace")


class _MultipartReader:
    """Drives python-multipart's callback parser and builds :class:`FormData`."""

    def __init__(
        self,
        request: Request,
        boundary: bytes,
        max_upload: int,
        max_fields: int,
        max_files: int,
        spool_size: int,
    ) -> None:
        self.request = request
        self.max_upload = max_upload
        self.max_fields = max_fields
        self.max_files = max_files
        self.spool_size = spool_size
        self.items: list[tuple[str, str | UploadFile]] = []
        self.fields = 0
        self.files = 0
        self._header_name = b""
        self._header_value = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._name = ""
        self._file: UploadFile | None = None
        self._data = bytearray()
        # Work the parser produces inside write(); applied asynchronously after each chunk.
        self._pending: list[tuple[UploadFile, bytes]] = []
        # The parser checks the boundary when it is built (over 256 bytes it raises
        # FormParserError, the base class): that is the client's fault, so it is caught with
        # everything else the library raises and answered like any malformed body.
        try:
            self.parser = self._parser(boundary)
        except FormParserError as exc:
            raise HTTPException(400, f"Malformed multipart body: {exc}") from None

    def _parser(self, boundary: bytes) -> MultipartParser:
        return MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._on_part_begin,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
            },
            max_header_count=32,
        )

    def _on_part_begin(self) -> None:
        self._headers = []
        self._data = bytearray()
        self._file = None

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        self._headers.append((self._header_name.lower(), self._header_value))
        self._header_name = b""
        self._header_value = b""

    def _on_headers_finished(self) -> None:
        headers = Headers(self._headers)
        disposition, params = parse_options_header(headers.get("content-disposition", ""))
        if disposition != b"form-data" or b"name" not in params:
            raise HTTPException(400, "Multipart part without a form-data name")
        self._name = params[b"name"].decode("utf-8", errors="replace")
        if b"filename" in params:
            self.files += 1
            if self.files > self.max_files:
                raise HTTPException(413, f"Too many files in the form (limit {self.max_files})")
            self._file = UploadFile(
                params[b"filename"].decode("utf-8", errors="replace"),
                headers.get("content-type", "application/octet-stream"),
                headers=headers,
                max_memory=self.spool_size,
            )
        else:
            self.fields += 1
            if self.fields > self.max_fields:
                raise HTTPException(400, f"Too many form fields (limit {self.max_fields})")

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None:
            self._pending.append((self._file, data[start:end]))
        else:
            self._data += data[start:end]
            if len(self._data) > MAX_FIELD_SIZE:
                raise HTTPException(
                    413, f"Form field {self._name!r} is larger than {MAX_FIELD_SIZE}"
                )

    def _on_part_end(self) -> None:
        if self._file is not None:
            upload = self._file
            empty = not upload.size and not any(f is upload for f, _ in self._pending)
            if not upload.filename and empty:
                # A browser sends an empty file input as filename="" with no data: that is
                # "no file", which handlers see as an empty value (optional File() -> default).
                upload.file.close()
                self.items.append((self._name, ""))
                self._file = None
                return
            self.items.append((self._name, self._file))
        else:
            self.items.append((self._name, self._data.decode("utf-8", errors="replace")))

    async def read(self) -> FormData:
        try:
            async for chunk in self.request.stream(self.max_upload):
                self.parser.write(chunk)
                for upload, data in self._pending:
                    await upload.write(data)
                self._pending.clear()
            self.parser.finalize()
            # python-multipart's finalize() does not check that the closing boundary arrived: a
            # truncated body would silently lose its last part. (An empty body is an empty form.)
            if self.parser.state not in (MultipartState.END, MultipartState.START):
                raise MultipartParseError("the body ended before the closing boundary")
        except FormParserError as exc:  # the base class: every parsing error the library has
            await self._close_files()
            raise HTTPException(400, f"Malformed multipart body: {exc}") from None
        except BaseException:
            await self._close_files()
            raise
        for _, value in self.items:
            if isinstance(value, UploadFile):
                await value.seek(0)
        return FormData(self.items)

    async def _close_files(self) -> None:
        for _, value in self.items:
            if isinstance(value, UploadFile):
                await value.close()
        if self._file is not None:
            await self._file.close()
