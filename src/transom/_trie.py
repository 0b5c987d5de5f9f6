"""Segment trie that matches a request path to a route in time independent of the route count.

Every path template is split on ``/``. Static segments are dictionary look-ups; parameter
segments are tried in converter priority order (``int`` before ``str``); a greedy ``path``
converter takes the rest. Templates without parameters skip the trie altogether through one
dictionary keyed by the full path. No regular expression ever sees the request path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from transom.converters import Converter, get_converter

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Segment:
    """One piece of a parsed template: static text, or a named parameter with its converter."""

    text: str
    param: str | None = None
    converter: Converter | None = None


def parse_template(template: str) -> list[Segment]:
    """Split ``/a/{id:int}/b`` into segments; raises ``ValueError`` on a malformed template."""
    if not template.startswith("/"):
        raise ValueError(f"route path {template!r} must start with '/'")
    segments: list[Segment] = []
    names: set[str] = set()
    parts = template[1:].split("/")
    for index, part in enumerate(parts):
        if "{" not in part and "}" not in part:
            segments.append(Segment(part))
            continue
        if not (part.startswith("{") and part.endswith("}")) or part.count("{") != 1:
            raise ValueError(
                f"route path {template!r}: a parameter must fill a whole segment, like '/{{name}}/'"
            )
        name, _, conv_name = part[1:-1].partition(":")
        name = name.strip()
        if not name.isidentifier():
            raise ValueError(f"route path {template!r}: {name!r} is not a valid parameter name")
        if name in names:
            raise ValueError(f"route path {template!r}: parameter {name!r} appears twice")
        names.add(name)
        converter = get_converter(conv_name.strip() or "str")
        if converter.greedy and index != len(parts) - 1:
            raise ValueError(
                f"route path {template!r}: a '{converter.name}' parameter must be last"
            )
        segments.append(Segment(part, name, converter))
    return segments


@dataclass(slots=True)
class Leaf(Generic[T]):
    """The routes registered for one path shape, by HTTP method."""

    methods: dict[str, T] = field(default_factory=dict)
    allow: str = ""

    def add(self, method: str, route: T, template: str) -> None:
        if method in self.methods:
            raise ValueError(f"duplicate route: {method} {template}")
        self.methods[method] = route
        names = set(self.methods)
        if "GET" in names:
            names.add("HEAD")
        names.add("OPTIONS")
        self.allow = ", ".join(sorted(names))


@dataclass(slots=True)
class _Node(Generic[T]):
    static: dict[str, _Node[T]] = field(default_factory=dict)
    params: list[tuple[Converter, _Node[T]]] = field(default_factory=list)
    greedy: tuple[Converter, Leaf[T]] | None = None
    leaf: Leaf[T] | None = None


class Trie(Generic[T]):
    """Maps ``(path)`` to the :class:`Leaf` of routes and the converted parameter values."""

    def __init__(self) -> None:
        self._root: _Node[T] = _Node()
        self._static: dict[str, Leaf[T]] = {}

    def insert(self, template: str, methods: list[str], route: T) -> list[Segment]:
        segments = parse_template(template)
        if all(s.param is None for s in segments):
            leaf = self._static.setdefault(template, Leaf())
        else:
            leaf = self._insert_dynamic(segments, template)
        for method in methods:
            leaf.add(method, route, template)
        return segments

    def _insert_dynamic(self, segments: list[Segment], template: str) -> Leaf[T]:
        node = self._root
        for segment in segments:
            conv = segment.converter
            if conv is None:
                node = node.static.setdefault(segment.text, _Node())
            elif conv.greedy:
                if node.greedy is None:
                    node.greedy = (conv, Leaf())
                elif node.greedy[0] is not conv:
                    raise ValueError(f"route path {template!r} conflicts with another greedy path")
                return node.greedy[1]
            else:
                for existing, child in node.params:
                    if existing is conv:
                        node = child
                        break
                else:
                    child = _Node()
                    node.params.append((conv, child))
                    node.params.sort(key=lambda pair: pair[0].priority)
                    node = child
        if node.leaf is None:
            node.leaf = Leaf()
        return node.leaf

    def match(self, path: str) -> tuple[Leaf[T], list[Any]] | None:
        leaf = self._static.get(path)
        if leaf is not None:
            return leaf, []
        if not path.startswith("/"):
            return None
        values: list[Any] = []
        found = self._walk(self._root, path[1:].split("/"), 0, values)
        return (found, values) if found is not None else None

    def _walk(self, node: _Node[T], parts: list[str], i: int, values: list[Any]) -> Leaf[T] | None:
        if i == len(parts):
            return node.leaf
        part = parts[i]
        child = node.static.get(part)
        if child is not None:
            found = self._walk(child, parts, i + 1, values)
            if found is not None:
                return found
        for conv, child in node.params:
            try:
                value = conv.convert(part)
            except ValueError:
                continue
            values.append(value)
            found = self._walk(child, parts, i + 1, values)
            if found is not None:
                return found
            values.pop()
        if node.greedy is not None:
            rest = "/".join(parts[i:])
            conv, leaf = node.greedy
            if rest:
                try:
                    values.append(conv.convert(rest))
                except ValueError:
                    return None
                return leaf
        return None
