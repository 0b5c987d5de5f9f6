"""How a model field becomes an HTML form control: widget choice, attributes, rendering."""

from __future__ import annotations

import datetime
import decimal
import enum
import types
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from markupsafe import Markup
from pydantic import SecretStr
from pydantic.fields import FieldInfo

from transom.datastructures import UploadFile

__all__ = ["BoundField", "Widget", "widget_for"]


@dataclass(frozen=True)
class Widget:
    """Force a widget in ``Annotated``: ``body: Annotated[str, Widget("textarea", rows=8)]``.

    Kinds: text, email, password, number, date, datetime-local, time, url, tel, search,
    hidden, textarea, select, checkbox, file.
    """

    kind: str
    attrs: dict[str, Any] = field(default_factory=dict)

    def __init__(self, kind: str, **attrs: Any) -> None:
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "attrs", attrs)


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _choices(annotation: Any) -> list[tuple[str, str]] | None:
    if get_origin(annotation) is Literal:
        return [(str(v), str(v)) for v in get_args(annotation)]
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return [(str(m.value), m.name.replace("_", " ").capitalize()) for m in annotation]
    return None


@dataclass
class FieldSpec:
    """What rendering needs to know about one field, derived once per form class."""

    name: str
    label: str
    kind: str
    required: bool
    optional: bool = False
    multiple: bool = False
    choices: list[tuple[str, str]] | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    help_text: str | None = None


def widget_for(name: str, info: FieldInfo) -> FieldSpec:
    """Pick the control for a field from its type, constraints and ``Widget`` metadata."""
    annotation, optional = _strip_optional(info.annotation)
    forced = next((m for m in info.metadata if isinstance(m, Widget)), None)
    multiple = get_origin(annotation) in (list, set, frozenset, tuple)
    inner = get_args(annotation)[0] if multiple and get_args(annotation) else annotation
    if get_origin(inner) is Annotated:
        inner = get_args(inner)[0]
    choices = _choices(inner)
    attrs: dict[str, Any] = {}
    if forced is not None:
        kind = forced.kind
        attrs.update(forced.attrs)
    elif choices is not None:
        kind = "select"
    elif inner is bool:
        kind = "checkbox"
    elif inner is UploadFile:
        kind = "file"
    elif inner is SecretStr:
        kind = "password"
    elif inner in (int, float, decimal.Decimal):
        kind = "number"
        if inner is not int:
            attrs["step"] = "any"
    elif inner is datetime.date:
        kind = "date"
    elif inner is datetime.datetime:
        kind = "datetime-local"
    elif inner is datetime.time:
        kind = "time"
    elif getattr(inner, "__name__", "") == "EmailStr" or "email" in str(inner).lower():
        kind = "email"
    else:
        kind = "text"
    for constraint in info.metadata:
        if isinstance(constraint, annotated_types.MaxLen):
            attrs["maxlength"] = constraint.max_length
        elif isinstance(constraint, annotated_types.MinLen) and constraint.min_length:
            attrs["minlength"] = constraint.min_length
        elif isinstance(constraint, annotated_types.Ge):
            attrs["min"] = constraint.ge
        elif isinstance(constraint, annotated_types.Le):
            attrs["max"] = constraint.le
    hint = _autocomplete(name, kind)
    if hint and "autocomplete" not in attrs:
        attrs["autocomplete"] = hint
    required = info.is_required() and not optional and kind != "checkbox"
    label = info.title or name.replace("_", " ").capitalize()
    return FieldSpec(
        name=name,
        label=label,
        kind=kind,
        required=required,
        optional=optional,
        multiple=multiple,
        choices=choices,
        attrs=attrs,
        help_text=info.description,
    )


def _autocomplete(name: str, kind: str) -> str | None:
    """What password managers and browsers should fill in (``Widget(..., autocomplete=...)``
    overrides it): a new password when the name says so (``new_password1``, ``password2``,
    ``confirm_password``), else the current one; the user name and e-mail by their names."""
    lowered = name.lower()
    if kind == "password":
        new = "new" in lowered or "confirm" in lowered or lowered.endswith(("1", "2"))
        return "new-password" if new else "current-password"
    if kind in ("text", "email") and lowered in ("username", "login"):
        return "username"
    if kind == "email" or lowered == "email":
        return "email"
    return None


def _attrs(values: dict[str, Any]) -> Markup:
    parts = []
    for key, value in values.items():
        if value is None or value is False:
            continue
        if value is True:
            parts.append(Markup(" {}").format(key))
        else:
            parts.append(Markup(' {}="{}"').format(key, value))
    return Markup("").join(parts)


class BoundField:
    """A field with the value the user entered and its errors, ready to render."""

    def __init__(self, spec: FieldSpec, value: Any, errors: list[str], form_id: str) -> None:
        self.spec = spec
        self.name = spec.name
        self.label = spec.label
        self.value = value
        self.errors = errors
        self.id = f"{form_id}-{spec.name}" if form_id else f"id_{spec.name}"

    @property
    def kind(self) -> str:
        return self.spec.kind

    def _values(self) -> list[str]:
        if self.value is None:
            return []
        if isinstance(self.value, list | tuple | set):
            return [_text(v) for v in self.value]
        return [_text(self.value)]

    def control(self) -> Markup:
        """The ``<input>``, ``<select>`` or ``<textarea>`` alone."""
        spec = self.spec
        base: dict[str, Any] = {"id": self.id, "name": spec.name, "required": spec.required}
        if self.errors:
            base["aria-invalid"] = "true"
            base["aria-describedby"] = f"{self.id}-errors"
        base.update(spec.attrs)
        values = self._values()
        if spec.kind == "textarea":
            return Markup("<textarea{}>{}</textarea>").format(
                _attrs(base), values[0] if values else ""
            )
        if spec.kind == "select":
            options = Markup("").join(
                Markup('<option value="{}"{}>{}</option>').format(
                    value, Markup(" selected") if value in values else "", label
                )
                for value, label in spec.choices or []
            )
            if spec.optional and not spec.multiple:
                options = Markup('<option value=""></option>') + options
            base["multiple"] = spec.multiple
            return Markup("<select{}>{}</select>").format(_attrs(base), options)
        if spec.kind == "checkbox":
            checked = bool(values) and values[0].lower() in ("on", "true", "1", "yes")
            base.update(type="checkbox", checked=checked, required=False)
            return Markup("<input{}>").format(_attrs(base))
        base["type"] = spec.kind
        # Never send a password or a file back to the browser.
        if spec.kind not in ("password", "file") and values:
            base["value"] = values[0]
        return Markup("<input{}>").format(_attrs(base))

    def label_tag(self) -> Markup:
        return Markup('<label for="{}">{}</label>').format(self.id, self.label)

    def errors_html(self) -> Markup:
        if not self.errors:
            return Markup("")
        items = Markup("").join(Markup("<li>{}</li>").format(e) for e in self.errors)
        return Markup('<ul class="errors" id="{}-errors">{}</ul>').format(self.id, items)

    def __html__(self) -> str:
        help_text = (
            Markup('<small class="help">{}</small>').format(self.spec.help_text)
            if self.spec.help_text
            else Markup("")
        )
        if self.spec.kind == "checkbox":
            # The box inside its label: beside its words whatever the page's CSS, and the
            # words toggle it.
            inner = Markup('<label for="{}" class="checkbox">{} {}</label>').format(
                self.id, self.control(), self.label
            )
        elif self.spec.kind == "hidden":
            return str(self.control())
        else:
            inner = Markup("{}{}").format(self.label_tag(), self.control())
        css = "field has-errors" if self.errors else "field"
        return str(
            Markup('<div class="{}">{}{}{}</div>').format(css, inner, help_text, self.errors_html())
        )

    def __str__(self) -> str:
        return self.__html__()


def _text(value: Any) -> str:
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, SecretStr):
        return ""
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%dT%H:%M")
    if isinstance(value, bool):
        return "on" if value else ""
    return "" if value is None else str(value)
