"""Small containers shared by requests and responses: headers, query strings, URLs, uploads."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import IO, Any, Generic, TypeVar, overload
from urllib.parse import parse_qsl, urlencode

__all__ = [
    "URL",
    "FormData",
    "Headers",
    "MultiDict",
    "MutableHeaders",
    "QueryParams",
    "State",
    "UploadFile",
]

RawHeaders = list[tuple[bytes, bytes]]
V = TypeVar("V")
_T = TypeVar("_T")


class Headers(Mapping[str, str]):
    """Read-only, case-insensitive view over raw ASGI headers.

    ``headers["accept"]`` returns the first value; :meth:`getlist` returns every value, in order.
    """

    __slots__ = ("raw",)

    def __init__(self, raw: Iterable[tuple[bytes, bytes]] | Mapping[str, str] = ()) -> None:
        if isinstance(raw, Mapping):
            self.raw: RawHeaders = [
                (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in raw.items()
            ]
        else:
            self.raw = list(raw) if not isinstance(raw, list) else raw

    def get(self, key: str, default: Any = None) -> Any:
        name = key.lower().encode("latin-1")
        for k, v in self.raw:
            if k == name:
                return v.decode("latin-1")
        return default

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return str(value)

    def getlist(self, key: str) -> list[str]:
        name = key.lower().encode("latin-1")
        return [v.decode("latin-1") for k, v in self.raw if k == name]

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        name = key.lower().encode("latin-1")
        return any(k == name for k, _ in self.raw)

    def __iter__(self) -> Iterator[str]:
        seen: set[bytes] = set()
        for k, _ in self.raw:
            if k not in seen:
                seen.add(k)
                yield k.decode("latin-1")

    def __len__(self) -> int:
        return len({k for k, _ in self.raw})

    def multi_items(self) -> list[tuple[str, str]]:
        return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in self.raw]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.multi_items()!r})"


class MutableHeaders(Headers, MutableMapping[str, str]):
    """Headers of a response under construction. Setting a key replaces every value for it."""

    __slots__ = ()

    def __init__(self, raw: Iterable[tuple[bytes, bytes]] | Mapping[str, str] = ()) -> None:
        if isinstance(raw, Mapping):
            # Values given as a mapping come from code (often with user data in them): check
            # them as strictly as ``headers[key] = value`` does.
            for key, value in raw.items():
                _check_header_name(key)
                _check_header_value(value)
        super().__init__(raw)

    def __setitem__(self, key: str, value: str) -> None:
        _check_header_name(key)
        _check_header_value(value)
        name = key.lower().encode("latin-1")
        self.raw[:] = [(k, v) for k, v in self.raw if k != name]
        self.raw.append((name, value.encode("latin-1")))

    def __delitem__(self, key: str) -> None:
        name = key.lower().encode("latin-1")
        before = len(self.raw)
        self.raw[:] = [(k, v) for k, v in self.raw if k != name]
        if len(self.raw) == before:
            raise KeyError(key)

    def append(self, key: str, value: str) -> None:
        """Add a value without removing existing ones (``Set-Cookie``, ``Vary``...)."""
        _check_header_name(key)
        _check_header_value(value)
        self.raw.append((key.lower().encode("latin-1"), value.encode("latin-1")))

    def setdefault(self, key: str, default: str = "") -> str:
        existing = self.get(key)
        if existing is None:
            self[key] = default
            return default
        return str(existing)


_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def _check_header_name(name: str) -> None:
    # RFC 9110 field names are tokens: no CR/LF, colon, space or other separators.
    if not name or not _TOKEN_CHARS.issuperset(name):
        raise ValueError(f"invalid header name {name!r}")


def _check_header_value(value: str) -> None:
    # A CR or LF in a header value would let user data inject extra headers (response splitting).
    if "\r" in value or "\n" in value or "\x00" in value:
        raise ValueError("header values must not contain CR, LF or NUL")


class MultiDict(Mapping[str, V], Generic[V]):
    """An ordered multi-valued mapping: ``d[key]`` is the first value, ``getlist`` all of them."""

    __slots__ = ("_dict", "_list")

    def __init__(self, items: Iterable[tuple[str, V]] = ()) -> None:
        self._list: list[tuple[str, V]] = list(items)
        self._dict: dict[str, V] = {}
        for k, v in self._list:
            self._dict.setdefault(k, v)

    def __getitem__(self, key: str) -> V:
        return self._dict[key]

    def get(self, key: str, default: Any = None) -> Any:
        # Mapping.get goes through __getitem__ and a KeyError: this runs per query parameter.
        return self._dict.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._dict

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

    def getlist(self, key: str) -> list[V]:
        return [v for k, v in self._list if k == key]

    def first_values(self) -> Mapping[str, V]:
        """The first value of each key, as ``d[key]`` reads it, as a mapping (read-only: it is
        the multi-dict's own, not a copy)."""
        return self._dict

    def multi_items(self) -> list[tuple[str, V]]:
        return list(self._list)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._list!r})"


class QueryParams(MultiDict[str]):
    """Query-string parameters, parsed once from the raw bytes of the request target."""

    __slots__ = ()

    def __init__(self, query: bytes | str | Iterable[tuple[str, str]] = b"") -> None:
        items: Iterable[tuple[str, str]]
        text = query.decode("ascii") if isinstance(query, bytes) and query.isascii() else None
        # Test for escapes on the str: ``b"%" in query`` costs several times more on bytes.
        if text is not None and "%" not in text and "+" not in text:
            # Nothing to unescape (the common case): split without parse_qsl's machinery, and
            # fill both views in one pass (this runs on every request with a query string).
            pairs: list[tuple[str, str]] = []
            first: dict[str, str] = {}
            for part in text.split("&"):
                if part:
                    key, _, value = part.partition("=")
                    pairs.append((key, value))
                    if key not in first:
                        first[key] = value
            self._list = pairs
            self._dict = first
            return
        if isinstance(query, bytes):
            # Percent-escapes and raw non-ASCII bytes are both UTF-8: decode them byte for byte
            # (latin-1), then read the result as UTF-8.
            pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True, encoding="latin-1")
            items = [(_utf8(k), _utf8(v)) for k, v in pairs]
        elif isinstance(query, str):
            items = parse_qsl(query, keep_blank_values=True)
        else:
            items = query
        super().__init__(items)

    def __str__(self) -> str:
        return urlencode(self._list)


def _utf8(text: str) -> str:
    return text.encode("latin-1").decode("utf-8", errors="replace")


class URL:
    """The URL of a request, built from the ASGI scope."""

    __slots__ = ("netloc", "path", "query", "scheme")

    def __init__(self, scheme: str, netloc: str, path: str, query: str = "") -> None:
        self.scheme = scheme
        self.netloc = netloc
        self.path = path
        self.query = query

    @property
    def hostname(self) -> str:
        host = self.netloc
        if host.startswith("["):
            return host[: host.find("]") + 1]
        return host.rsplit(":", 1)[0]

    def replace(self, **changes: str) -> URL:
        parts = {
            "scheme": self.scheme,
            "netloc": self.netloc,
            "path": self.path,
            "query": self.query,
        }
        parts.update(changes)
        return URL(**parts)

    def __str__(self) -> str:
        url = f"{self.scheme}://{self.netloc}{self.path}"
        return f"{url}?{self.query}" if self.query else url

    def __repr__(self) -> str:
        return f"URL({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))


class State:
    """A free-form attribute namespace (``app.state``, ``request.state``)."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"state has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        self.__dict__[name] = value

    def __repr__(self) -> str:
        return f"State({self.__dict__!r})"


class UploadFile:
    """An uploaded file. Small files stay in memory; larger ones are spooled to a temporary file."""

    def __init__(
        self,
        filename: str | None,
        content_type: str = "application/octet-stream",
        *,
        headers: Headers | None = None,
        max_memory: int = 1024 * 1024,
    ) -> None:
        # Keep only the last path component, whichever separator the client's OS uses.
        self.filename = os.path.basename(filename.replace("\\", "/")) if filename else filename
        self.content_type = content_type
        self.headers = headers or Headers()
        self.file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=max_memory)  # noqa: SIM115
        self.size = 0

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        # Lets Pydantic models (forms) declare `avatar: UploadFile | None`.
        from pydantic_core import core_schema

        return core_schema.is_instance_schema(cls)

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: Any, handler: Any) -> dict[str, Any]:
        return {"type": "string", "contentMediaType": "application/octet-stream"}

    @property
    def in_memory(self) -> bool:
        return not getattr(self.file, "_rolled", False)

    def _write_sync(self, data: bytes) -> None:
        self.file.write(data)
        self.size += len(data)

    async def write(self, data: bytes) -> None:
        if self.in_memory:
            self._write_sync(data)
        else:
            from transom._concurrency import run_sync

            await run_sync(self._write_sync, data)

    async def read(self, size: int = -1) -> bytes:
        if self.in_memory:
            return self.file.read(size)
        from transom._concurrency import run_sync

        return await run_sync(self.file.read, size)

    async def seek(self, offset: int) -> None:
        self.file.seek(offset)

    async def close(self) -> None:
        self.file.close()

    def __repr__(self) -> str:
        return (
            f"UploadFile(filename={self.filename!r}, size={self.size}, type={self.content_type!r})"
        )


class FormData(MultiDict["str | UploadFile"]):
    """Parsed form fields and uploaded files."""

    __slots__ = ()

    async def close(self) -> None:
        for _, value in self._list:
            if isinstance(value, UploadFile):
                await value.close()

    @overload
    def get_str(self, key: str) -> str | None: ...
    @overload
    def get_str(self, key: str, default: _T) -> str | _T: ...
    def get_str(self, key: str, default: Any = None) -> Any:
        """The first value of ``key`` if it is a plain field (not a file)."""
        value = self._dict.get(key)
        return value if isinstance(value, str) else default
