"""Path-parameter converters: ``{id:int}``, ``{slug}``, ``{rest:path}``, ``{uid:uuid}``.

A converter checks and converts one path segment without regular expressions, so no request
path can make matching backtrack catastrophically. Register your own with
:func:`register_converter`.
"""

from __future__ import annotations

import math
import uuid
from typing import Any, ClassVar

__all__ = [
    "Converter",
    "FloatConverter",
    "IntConverter",
    "PathConverter",
    "StrConverter",
    "UUIDConverter",
    "get_converter",
    "register_converter",
]


class Converter:
    """Base class. ``convert`` raises ``ValueError`` when the segment does not match."""

    name: ClassVar[str] = "str"
    #: Lower numbers are tried first when two parameter routes compete at the same position.
    priority: ClassVar[int] = 50
    #: ``True`` only for converters that consume the rest of the path, slashes included.
    greedy: ClassVar[bool] = False
    python_type: ClassVar[type] = str
    json_schema: ClassVar[dict[str, Any]] = {"type": "string"}

    def convert(self, value: str) -> Any:
        if not value:
            raise ValueError("empty segment")
        return value

    def to_url(self, value: Any) -> str:
        text = str(value)
        if not text or "/" in text:
            raise ValueError(f"{value!r} cannot be a {self.name!r} path segment")
        return text


class StrConverter(Converter):
    name = "str"
    priority = 90


class IntConverter(Converter):
    name = "int"
    priority = 10
    python_type = int
    json_schema = {"type": "integer", "minimum": 0}

    def convert(self, value: str) -> int:
        # isdigit() alone accepts non-ASCII digits such as '٣'; a URL id must be ASCII.
        if not (value.isascii() and value.isdigit()):
            raise ValueError("not an integer")
        return int(value)

    def to_url(self, value: Any) -> str:
        number = int(value)
        if number < 0:
            raise ValueError("negative integers cannot be an 'int' path segment")
        return str(number)


class FloatConverter(Converter):
    name = "float"
    priority = 20
    python_type = float
    json_schema = {"type": "number"}

    def convert(self, value: str) -> float:
        if not value.isascii() or value.lower() in {"nan", "inf", "-inf", "infinity"}:
            raise ValueError("not a finite number")
        number = float(value)
        if not math.isfinite(number):
            raise ValueError("not a finite number")
        return number

    def to_url(self, value: Any) -> str:
        return repr(float(value))


class UUIDConverter(Converter):
    name = "uuid"
    priority = 15
    python_type = uuid.UUID
    json_schema = {"type": "string", "format": "uuid"}

    def convert(self, value: str) -> uuid.UUID:
        # Only the canonical 36-character form: one resource, one URL.
        if len(value) != 36:
            raise ValueError("not a UUID")
        return uuid.UUID(value)

    def to_url(self, value: Any) -> str:
        return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))


class PathConverter(Converter):
    name = "path"
    priority = 100
    greedy = True

    def convert(self, value: str) -> str:
        return value

    def to_url(self, value: Any) -> str:
        return str(value).lstrip("/")


_CONVERTERS: dict[str, Converter] = {
    c.name: c
    for c in (StrConverter(), IntConverter(), FloatConverter(), UUIDConverter(), PathConverter())
}


def register_converter(converter: Converter) -> None:
    """Make ``{name:<converter.name>}`` available in route paths."""
    _CONVERTERS[converter.name] = converter


def get_converter(name: str) -> Converter:
    try:
        return _CONVERTERS[name]
    except KeyError:
        known = ", ".join(sorted(_CONVERTERS))
        raise ValueError(f"unknown path converter {name!r} (known: {known})") from None
