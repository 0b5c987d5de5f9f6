"""How values are stored: JSON (orjson) for common types, a typed envelope for Pydantic models.

Never pickle: a cache server anyone on the network can write to must not be able to run code in
the app. Plain values are stored as their JSON (so integers stay usable by Redis ``INCRBY``);
other forms start with a zero byte, which JSON never does:

* ``\\x00b`` + raw bytes;
* ``\\x00m`` + ``module:QualName`` + ``\\x00`` + the model's JSON. The class is only looked up
  among modules already imported, never imported because the cache says so;
* ``\\x00e`` + a JSON header (expiry, compute time, tag versions) + ``\\n`` + one of the above.
"""

from __future__ import annotations

import sys
from typing import Any

import orjson
from pydantic import BaseModel, TypeAdapter

from transom.responses import json_dumps

__all__ = ["Envelope", "dumps", "loads", "pack", "unpack"]

_BYTES = b"\x00b"
_MODEL = b"\x00m"
_ENVELOPE = b"\x00e"


def dumps(value: Any) -> bytes:
    """Serialise ``value`` (JSON types, dates, UUIDs, dataclasses, Pydantic models, bytes)."""
    if isinstance(value, bytes):
        return _BYTES + value
    if isinstance(value, BaseModel):
        cls = type(value)
        name = f"{cls.__module__}:{cls.__qualname__}".encode()
        return _MODEL + name + b"\x00" + value.model_dump_json().encode()
    return json_dumps(value)


def _find_model(name: str) -> type[BaseModel] | None:
    module_name, _, qualname = name.partition(":")
    target: Any = sys.modules.get(module_name)
    for part in qualname.split("."):
        if target is None:
            return None
        target = getattr(target, part, None)
    if isinstance(target, type) and issubclass(target, BaseModel):
        return target
    return None


def loads(data: bytes, model: Any = None) -> Any:
    """The value ``data`` holds; ``model`` (a type) validates it, e.g. ``list[PostOut]``."""
    if data[:2] == _BYTES:
        return data[2:]
    if data[:2] == _MODEL:
        name, _, payload = data[2:].partition(b"\x00")
        if model is not None:
            return TypeAdapter(model).validate_json(payload)
        cls = _find_model(name.decode())
        # A model whose class is not loaded comes back as its fields (a dict), never by import.
        return cls.model_validate_json(payload) if cls is not None else orjson.loads(payload)
    if model is not None:
        return TypeAdapter(model).validate_json(data)
    return orjson.loads(data)


class Envelope:
    """The metadata some entries carry: expiry and compute time (early refresh), tag versions."""

    __slots__ = ("delta", "expiry", "tags")

    def __init__(
        self, expiry: float | None = None, delta: float = 0.0, tags: dict[str, str] | None = None
    ) -> None:
        self.expiry = expiry
        self.delta = delta
        self.tags = tags or {}


def pack(payload: bytes, envelope: Envelope | None) -> bytes:
    """``payload`` (from :func:`dumps`) with its envelope, if it needs one."""
    if envelope is None:
        return payload
    header = orjson.dumps({"x": envelope.expiry, "d": envelope.delta, "t": envelope.tags})
    return _ENVELOPE + header + b"\n" + payload


def unpack(data: bytes) -> tuple[bytes, Envelope | None]:
    """The payload and the envelope (``None`` when there is none)."""
    if data[:2] != _ENVELOPE:
        return data, None
    header, _, payload = data[2:].partition(b"\n")
    meta = orjson.loads(header)
    return payload, Envelope(meta.get("x"), float(meta.get("d") or 0.0), meta.get("t") or {})
