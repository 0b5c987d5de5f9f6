"""Channels declared with their payload type, for the AsyncAPI document (``/asyncapi.json``).

``room = channels.declare("room:{room}", ChatMessage)`` documents the channel (its name
pattern and parameters, and the message the app publishes on it) and gives a typed way to
name it: ``await channels.publish(room.name(room=7), message)``.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import TypeAdapter

if TYPE_CHECKING:
    from transom.asyncapi import SchemaRegistry

__all__ = ["ChannelSpec"]

T = TypeVar("T")
_PARAM_RE = re.compile(r"\{([^{}]*)\}")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclasses.dataclass(frozen=True, eq=False)
class ChannelSpec(Generic[T]):
    """A declared channel: ``pattern`` (``"room:{room}"``) and the ``payload`` type of what
    is published on it. Made by :meth:`Channels.declare <transom.realtime.Channels.declare>`.
    """

    pattern: str
    payload: type[T]
    summary: str | None = None
    description: str | None = None

    def __post_init__(self) -> None:
        for param in self.parameters:
            if not _NAME_RE.fullmatch(param):
                raise ValueError(f"channel pattern {self.pattern!r}: bad parameter {{{param}}}")
        if "{" in _PARAM_RE.sub("", self.pattern) or "}" in _PARAM_RE.sub("", self.pattern):
            raise ValueError(f"channel pattern {self.pattern!r} has an unbalanced brace")
        TypeAdapter(self.payload)  # a payload with no schema fails now, not in /asyncapi.json

    @property
    def parameters(self) -> list[str]:
        """The ``{name}`` parameters of the pattern, in order."""
        return _PARAM_RE.findall(self.pattern)

    def name(self, **params: str | int) -> str:
        """The channel's name for these parameter values: ``room.name(room=7)`` → ``room:7``."""
        missing = [p for p in self.parameters if p not in params]
        extra = sorted(set(params) - set(self.parameters))
        if missing or extra:
            raise TypeError(
                f"channel {self.pattern!r} takes {self.parameters}; missing {missing}, "
                f"unknown {extra}"
            )
        return _PARAM_RE.sub(lambda m: str(params[m.group(1)]), self.pattern)


def document_channels(
    specs: list[ChannelSpec[Any]], document: dict[str, Any], registry: SchemaRegistry
) -> None:
    """Add ``specs`` to an AsyncAPI document: one channel each, and the app's ``send``."""
    from transom.asyncapi import component_key

    channels = document.setdefault("channels", {})
    operations = document.setdefault("operations", {})
    for spec in specs:
        key = base = "channel_" + component_key(spec.pattern)
        n = 2
        while key in channels:
            key, n = f"{base}_{n}", n + 1
        message = registry.message(spec.payload)
        channel: dict[str, Any] = {
            "address": spec.pattern,
            "messages": {message: {"$ref": f"#/components/messages/{message}"}},
        }
        if spec.summary:
            channel["summary"] = spec.summary
        if spec.description:
            channel["description"] = spec.description
        if spec.parameters:
            channel["parameters"] = {p: {} for p in spec.parameters}
        channels[key] = channel
        operations[f"{key}_publish"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{key}"},
            "summary": "Published by the app to every subscriber",
            "messages": [{"$ref": f"#/channels/{key}/messages/{message}"}],
        }
