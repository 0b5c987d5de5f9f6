"""Validation errors in plain words for people, overridable per field.

Pydantic's messages are written for developers ("String should match pattern
'^[a-z0-9-]+$'"); a form shows :func:`plain_message` instead ("Enter a value in the right
format"), built from the error's kind and the field's constraints ("Enter 1 to 200
characters"). A field chooses its own words with :class:`Messages` in ``Annotated``::

    Slug = Annotated[
        str,
        Field(pattern=r"^[a-z0-9-]+$", max_length=80),
        Messages(pattern="Use lowercase letters, digits and dashes."),
    ]

The site's forms (:class:`transom.forms.Form`) and the admin (validating with a model's
schema) both use it, so one declaration gives the same words everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import annotated_types
from pydantic.fields import FieldInfo

__all__ = ["Messages", "plain_message"]

#: Short names accepted by :class:`Messages`, each standing for some Pydantic error kinds.
ALIASES: dict[str, tuple[str, ...]] = {
    "required": ("missing",),
    "pattern": ("string_pattern_mismatch",),
    "too_short": ("string_too_short", "too_short"),
    "too_long": ("string_too_long", "too_long"),
    "min": ("greater_than", "greater_than_equal"),
    "max": ("less_than", "less_than_equal"),
    "choice": ("enum", "literal_error"),
}


class Messages:
    """Per-field error messages, in ``Annotated`` metadata (see the module docstring).

    Args:
        default: The message for any error of this field not named otherwise.
        **by_kind: Messages by short name (``required``, ``pattern``, ``too_short``,
            ``too_long``, ``min``, ``max``, ``choice``, ``invalid`` for a value of the wrong
            type) or by Pydantic error type (``string_too_long``, ``int_parsing``, ...).
    """

    __slots__ = ("by_kind", "default")

    def __init__(self, default: str | None = None, **by_kind: str) -> None:
        self.default = default
        self.by_kind = dict(by_kind)

    def __repr__(self) -> str:
        return f"Messages(default={self.default!r}, **{self.by_kind!r})"

    def find(self, kind: str) -> str | None:
        """The message chosen for the Pydantic error type ``kind``, if any."""
        if kind in self.by_kind:
            return self.by_kind[kind]
        for short, kinds in ALIASES.items():
            if kind in kinds and short in self.by_kind:
                return self.by_kind[short]
        if _is_type_error(kind) and "invalid" in self.by_kind:
            return self.by_kind["invalid"]
        return self.default


def _is_type_error(kind: str) -> bool:
    return kind.endswith(("_parsing", "_type")) or kind in ("json_invalid", "uuid_version")


def _bounds(info: FieldInfo | None) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in info.metadata if info is not None else ():
        for name in ("min_length", "max_length", "gt", "ge", "lt", "le"):
            value = getattr(item, name, None)
            if value is not None and isinstance(item, annotated_types.BaseMetadata):
                found[name] = value
    return found


def _characters(count: Any) -> str:
    return f"{count} character" + ("" if count == 1 else "s")


#: Kinds whose message needs no context.
_FIXED = {
    "missing": "This field is required.",
    "int_parsing": "Enter a whole number.",
    "int_type": "Enter a whole number.",
    "int_from_float": "Enter a whole number.",
    "float_parsing": "Enter a number.",
    "float_type": "Enter a number.",
    "decimal_parsing": "Enter a number.",
    "decimal_type": "Enter a number.",
    "finite_number": "Enter a number.",
    "bool_parsing": "Choose yes or no.",
    "bool_type": "Choose yes or no.",
    "date_parsing": "Enter a date (YYYY-MM-DD).",
    "date_from_datetime_parsing": "Enter a date (YYYY-MM-DD).",
    "date_type": "Enter a date (YYYY-MM-DD).",
    "datetime_parsing": "Enter a date and time (YYYY-MM-DD HH:MM).",
    "datetime_from_date_parsing": "Enter a date and time (YYYY-MM-DD HH:MM).",
    "datetime_type": "Enter a date and time (YYYY-MM-DD HH:MM).",
    "time_parsing": "Enter a time (HH:MM).",
    "time_type": "Enter a time (HH:MM).",
    "uuid_parsing": "Enter a valid UUID.",
    "uuid_type": "Enter a valid UUID.",
    "url_parsing": "Enter a valid URL.",
    "url_type": "Enter a valid URL.",
    "url_scheme": "Enter a valid URL.",
    "json_invalid": "Enter valid JSON.",
    "enum": "Select one of the choices.",
    "literal_error": "Select one of the choices.",
    "string_type": "Enter text.",
    "list_type": "Select one or more choices.",
}


def plain_message(error: Mapping[str, Any], info: FieldInfo | None = None) -> str:
    """A Pydantic error (an item of ``ValidationError.errors()``) in plain words.

    Args:
        error: The error: its ``type``, ``msg`` and ``ctx`` are read.
        info: The field it is about: its :class:`Messages` and constraints shape the words.
    """
    kind = str(error.get("type", ""))
    chosen = _chosen(info, kind)
    if chosen is not None:
        return chosen
    ctx = error.get("ctx") or {}
    bounds = _bounds(info)
    if kind in ("string_too_short", "string_too_long"):
        low, high = bounds.get("min_length"), bounds.get("max_length")
        if low is not None and high is not None:
            return f"Enter {low} to {_characters(high)}."
        if kind == "string_too_short":
            return f"Enter at least {_characters(ctx.get('min_length', low))}."
        return f"Enter at most {_characters(ctx.get('max_length', high))}."
    if kind in ("too_short", "too_long"):
        if kind == "too_short":
            return f"Select at least {ctx.get('min_length', bounds.get('min_length'))}."
        return f"Select at most {ctx.get('max_length', bounds.get('max_length'))}."
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return _range_message(bounds, kind, ctx)
    if kind == "string_pattern_mismatch":
        hint = info.description if info is not None else None
        return (
            f"Enter a value in the right format ({hint})."
            if hint
            else ("Enter a value in the right format.")
        )
    if kind in _FIXED:
        return _FIXED[kind]
    message = str(error.get("msg", "Enter a valid value."))
    if message.startswith("value is not a valid email address"):
        return "Enter a valid email address."
    # Messages of the developer's own validators are for people already; Pydantic only
    # prefixes them.
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def _chosen(info: FieldInfo | None, kind: str) -> str | None:
    for item in info.metadata if info is not None else ():
        if isinstance(item, Messages):
            found = item.find(kind)
            if found is not None:
                return found
    return None


def _range_message(bounds: Mapping[str, Any], kind: str, ctx: Mapping[str, Any]) -> str:
    low = bounds.get("ge", bounds.get("gt"))
    high = bounds.get("le", bounds.get("lt"))
    if "ge" in bounds and "le" in bounds:
        return f"Enter a number from {low} to {high}."
    if kind == "greater_than":
        return f"Enter a number greater than {ctx.get('gt', low)}."
    if kind == "greater_than_equal":
        return f"Enter a number of at least {ctx.get('ge', low)}."
    if kind == "less_than":
        return f"Enter a number less than {ctx.get('lt', high)}."
    return f"Enter a number of at most {ctx.get('le', high)}."
