"""Edit forms generated from a model: one :class:`AdminField` per column or relationship.

A field knows which widget shows it, how to turn the submitted text back into a Python value
(raising :class:`ValueError` with a message for the user) and how to show a stored value.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    Float,
    Integer,
    LargeBinary,
    Numeric,
    SmallInteger,
    String,
    Text,
    Time,
    Uuid,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import ColumnProperty
from sqlalchemy.sql.schema import Column

from transom.admin.validation import schema_of
from transom.datastructures import FormData

if TYPE_CHECKING:
    from transom.admin.options import ModelAdmin

__all__ = ["AdminField", "AdminForm", "build_fields", "format_moment", "label_for"]

WIDGETS = (
    "text",
    "textarea",
    "number",
    "decimal",
    "checkbox",
    "date",
    "datetime",
    "time",
    "select",
    "json",
    "fk",
    "m2m",
    "password",
)


def format_moment(value: Any, zone: dt.tzinfo = dt.UTC) -> str | None:
    """The admin's one way of writing a date or time, or ``None`` for other values.

    Dates ``2026-01-02``; moments in ``zone`` with its name, ``2026-01-02 14:05 UTC`` (seconds
    only when there are some); times ``14:05``. Lists, read-only values, history and the
    dashboard all use it.
    """
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        local = moment.astimezone(zone)
        pattern = "%Y-%m-%d %H:%M:%S" if local.second else "%Y-%m-%d %H:%M"
        return f"{local.strftime(pattern)} {local.tzname() or ''}".rstrip()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.strftime("%H:%M:%S" if value.second else "%H:%M")
    return None


class WallClockError(ValueError):
    """A local time the site's time zone skips or has twice; the message says which."""


def zone_name(zone: dt.tzinfo) -> str:
    """``Europe/Paris`` for a ``ZoneInfo``, ``UTC`` for :data:`datetime.UTC`."""
    return str(getattr(zone, "key", None) or zone)


def local_moment(wall: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """``wall`` (a naive date and time typed in ``zone``) as an aware moment.

    Raises:
        WallClockError: ``zone`` skips that time (clocks go forward) or has it twice (clocks
            go back). Picking one silently would store an hour off what the user meant, as
            Django also refuses (its "couldn't be interpreted in time zone").
    """
    moment = wall.replace(tzinfo=zone, fold=0)
    shown = wall.strftime("%Y-%m-%d %H:%M")
    if moment.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None) != wall.replace(fold=0):
        raise WallClockError(
            f"{shown} does not exist in {zone_name(zone)}: the clocks skip that hour. "
            "Enter a time before or after it."
        )
    if moment.utcoffset() != wall.replace(tzinfo=zone, fold=1).utcoffset():
        raise WallClockError(
            f"{shown} happens twice in {zone_name(zone)} (the clocks go back that night). "
            "Enter a time outside that hour."
        )
    return moment


def label_for(name: str) -> str:
    """``author_id`` -> ``Author``, ``created_at`` -> ``Created at``."""
    if name.endswith("_id") and len(name) > 3:
        name = name[:-3]
    return name.replace("_", " ").strip().capitalize()


@dataclasses.dataclass
class AdminField:
    """One control of an admin form.

    Attributes:
        name: The attribute key on the model (a column key, or a relationship for ``m2m``).
        label: What the ``<label>`` says.
        widget: One of :data:`WIDGETS`.
        required: The user must give a value.
        nullable: An empty value is stored as ``NULL``.
        readonly: Shown, never taken from the submitted form.
        choices: ``(value, label)`` pairs for ``select``.
        max_length: For text inputs.
        help_text: Shown under the control.
        related: The model a ``fk``/``m2m`` field points to.
        enum_class: The Python enum behind a ``select``, if any.
        python_type: What a ``text`` field holds (``str`` or ``uuid.UUID``).
    """

    name: str
    label: str
    widget: str
    required: bool = False
    nullable: bool = True
    readonly: bool = False
    choices: list[tuple[str, str]] | None = None
    max_length: int | None = None
    help_text: str = ""
    related: type[Any] | None = None
    enum_class: type[enum.Enum] | None = None
    python_type: type[Any] = str
    #: The column's Python-side default (shown on the add form).
    default: Any = None
    #: The site's time zone: date-time inputs show and take local times of it.
    zone: dt.tzinfo = dt.UTC
    #: A column's callable default (``date.today``), called for each add form.
    default_factory: Any = None
    #: Set by the view: ``<select>`` options for small related tables, else None (autocomplete).
    options: list[tuple[str, str]] | None = None
    #: Set by the view: the options of a many-to-many picker by group, ``[(group, options)]``.
    groups: list[tuple[str, list[tuple[str, str]]]] = dataclasses.field(default_factory=list)
    #: Set by the view: links beside a foreign key, ``[(text, url)]`` (edit the chosen row,
    #: add another), for the related models the user may see or add.
    related_links: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    #: Set by the view: labels of the current related values.
    selected_labels: dict[str, str] = dataclasses.field(default_factory=dict)

    def initial(self) -> Any:
        """The value an add form starts with: the column's default (called when a function)."""
        if self.default_factory is not None:
            try:
                return self.default_factory(None)
            except Exception:  # a default that needs the insert's context (or a database)
                return None
        return self.default

    @property
    def id(self) -> str:
        """The control's ``id`` attribute."""
        return f"id_{self.name}"

    def to_python(self, raw: Any) -> Any:
        """Turn submitted text (a list for ``m2m``) into the value to store.

        Raises:
            ValueError: The text is not a valid value; the message is shown to the user.
        """
        widget = self.widget
        if widget == "checkbox":
            return bool(raw) and str(raw).lower() not in ("", "off", "false", "0")
        if widget == "m2m":
            values = [v for v in (raw or []) if str(v).strip()]
            if self.required and not values:
                raise ValueError("This field is required.")
            return [_coerce_pk(self.related, v) for v in values]
        text = "" if raw is None else str(raw)
        if widget not in ("textarea", "json", "password"):
            text = text.strip()
        if text == "":
            if self.required:
                raise ValueError("This field is required.")
            if self.widget in ("text", "textarea") and not self.nullable:
                return ""
            return None
        limited = widget in ("text", "textarea", "password")
        if limited and self.max_length is not None and len(text) > self.max_length:
            raise ValueError(f"At most {self.max_length} characters ({len(text)} given).")
        try:
            return self._parse(text)
        except WallClockError:
            raise
        except (ValueError, TypeError, decimal.InvalidOperation, json.JSONDecodeError) as exc:
            raise ValueError(self._invalid_message(exc)) from None

    def _parse(self, text: str) -> Any:
        widget = self.widget
        if widget == "number":
            return int(text)
        if widget == "decimal":
            return decimal.Decimal(text) if self.python_type is decimal.Decimal else float(text)
        if widget == "date":
            return dt.date.fromisoformat(text)
        if widget == "datetime":
            moment = dt.datetime.fromisoformat(text)
            return moment if moment.tzinfo else local_moment(moment, self.zone)
        if widget == "time":
            return dt.time.fromisoformat(text)
        if widget == "json":
            return json.loads(text)
        if widget == "select":
            if self.enum_class is not None:
                for member in self.enum_class:
                    if str(member.value) == text or member.name == text:
                        return member
                raise ValueError("choice")
            if self.choices is not None and text not in {v for v, _ in self.choices}:
                raise ValueError("choice")
            return text
        if widget == "fk":
            return _coerce_pk(self.related, text)
        if self.python_type is uuid.UUID:
            return uuid.UUID(text)
        return text

    def _invalid_message(self, exc: BaseException) -> str:
        widget = self.widget
        messages = {
            "number": "Enter a whole number.",
            "decimal": "Enter a number.",
            "date": "Enter a date (YYYY-MM-DD).",
            "datetime": "Enter a date and time (YYYY-MM-DD HH:MM).",
            "time": "Enter a time (HH:MM).",
            "select": "Select a valid choice.",
            "fk": "Enter a valid id.",
        }
        if widget == "json":
            return f"Enter valid JSON ({exc})."
        if self.python_type is uuid.UUID:
            return "Enter a valid UUID."
        return messages.get(widget, "Enter a valid value.")

    def zone_label(self, shown: Any) -> str:
        """The time zone a date-time control is typed in, shown beside it.

        ``Europe/Paris (CET)``: the abbreviation of the shown value's date (CET in winter,
        CEST in summer), of today for an empty control, of the IANA name alone when the
        text does not parse (a refused value shown again).
        """
        name = zone_name(self.zone)
        try:
            wall = dt.datetime.fromisoformat(str(shown)) if shown else dt.datetime.now(self.zone)
        except ValueError:
            return name
        abbreviation = wall.replace(tzinfo=self.zone).tzname() or ""
        return f"{name} ({abbreviation})" if abbreviation and abbreviation != name else name

    def unchanged(self, raw: Any, shown: Any) -> bool:
        """Whether submitted date-time or time text ``raw`` is what the control showed.

        Browsers submit ``2026-03-04T06:06`` for a shown ``2026-03-04T06:06:00``, so the two
        are compared as values.
        """
        if self.widget not in ("datetime", "time") or not isinstance(raw, str) or not shown:
            return False
        parse = dt.datetime.fromisoformat if self.widget == "datetime" else dt.time.fromisoformat
        try:
            return bool(parse(raw.strip()) == parse(str(shown)))
        except ValueError:
            return False

    def to_form(self, value: Any) -> Any:
        """A stored value as the control shows it (a list of strings for ``m2m``)."""
        if self.widget == "m2m":
            return [_pk_text(v) for v in value or ()]
        if value is None:
            return ""
        if self.widget == "checkbox":
            return bool(value)
        if isinstance(value, enum.Enum):
            return str(value.value)
        if self.widget == "json":
            return json.dumps(value, indent=2, sort_keys=True, default=str)
        if isinstance(value, dt.datetime):
            moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
            return moment.astimezone(self.zone).strftime("%Y-%m-%dT%H:%M:%S")
        if isinstance(value, dt.time):
            return value.strftime("%H:%M:%S")
        return str(value)

    def display(self, value: Any) -> str:
        """A value as read-only text."""
        if self.widget == "m2m":
            return ", ".join(self.selected_labels.get(v, v) for v in self.to_form(value)) or "—"
        if value is None:
            return "—"
        if self.widget == "fk":
            key = str(value)
            return self.selected_labels.get(key, key)
        if isinstance(value, bool):
            return "Yes" if value else "No"
        if isinstance(value, enum.Enum):
            return str(value.name).replace("_", " ").capitalize()
        moment = format_moment(value, self.zone)
        if moment is not None:
            return moment
        return str(self.to_form(value))


def _pk_text(value: Any) -> str:
    if hasattr(value, "__table__"):
        identity = sa_inspect(value).identity
        return ",".join(str(v) for v in identity) if identity else ""
    return str(value)


def _coerce_pk(model: type[Any] | None, text: Any) -> Any:
    if model is None:
        return text
    pk = sa_inspect(model).primary_key[0]
    try:
        kind = pk.type.python_type
    except NotImplementedError:
        return text
    if kind is int:
        return int(str(text).strip())
    if kind is uuid.UUID:
        return uuid.UUID(str(text).strip())
    return kind(text)


def _mapped_class_for(model: type[Any], table: Any) -> type[Any] | None:
    for mapper in model.registry.mappers:
        if mapper.local_table is table:
            return mapper.class_  # type: ignore[no-any-return]
    return None


def _column_field(model: type[Any], prop: ColumnProperty[Any], column: Column[Any]) -> AdminField:
    kind = column.type
    name = prop.key
    label = label_for(name)
    has_default = (
        column.default is not None or column.server_default is not None or bool(column.primary_key)
    )
    field = AdminField(name=name, label=label, widget="text", nullable=bool(column.nullable))
    field.required = not column.nullable and not has_default
    field.help_text = column.comment or ""
    if column.default is not None and getattr(column.default, "is_scalar", False):
        field.default = getattr(column.default, "arg", None)
    elif column.default is not None and getattr(column.default, "is_callable", False):
        # ``default=date.today``: SQLAlchemy wraps it to take the insert's context; a
        # default that needs that context has no value to show yet.
        field.default_factory = getattr(column.default, "arg", None)
    fks = list(column.foreign_keys)
    if fks:
        field.widget = "fk"
        field.related = _mapped_class_for(model, fks[0].column.table)
        return field
    if isinstance(kind, Enum):
        field.widget = "select"
        enum_class = getattr(kind, "enum_class", None)
        if enum_class is not None:
            field.enum_class = enum_class
            field.choices = [
                (str(m.value), m.name.replace("_", " ").capitalize()) for m in enum_class
            ]
        else:
            field.choices = [(str(v), str(v)) for v in kind.enums]
    elif isinstance(kind, Boolean):
        field.widget = "checkbox"
        field.required = False
    elif isinstance(kind, Integer | BigInteger | SmallInteger):
        field.widget = "number"
    elif isinstance(kind, Numeric | Float):
        field.widget = "decimal"
        field.python_type = float if isinstance(kind, Float) else decimal.Decimal
        if not kind.asdecimal:
            field.python_type = float
    elif isinstance(kind, DateTime):
        field.widget = "datetime"
    elif isinstance(kind, Date):
        field.widget = "date"
    elif isinstance(kind, Time):
        field.widget = "time"
    elif isinstance(kind, JSON):
        field.widget = "json"
    elif isinstance(kind, Uuid):
        field.python_type = uuid.UUID
    elif isinstance(kind, Text) or (isinstance(kind, String) and kind.length is None):
        field.widget = "textarea"
    elif isinstance(kind, String):
        field.max_length = kind.length
    elif isinstance(kind, LargeBinary):
        field.readonly = True
    else:
        decorated = getattr(kind, "impl", None)
        if isinstance(decorated, DateTime):
            field.widget = "datetime"
    if isinstance(kind, String) and getattr(kind, "length", None) is not None:
        field.max_length = kind.length
    return field


def build_fields(admin: ModelAdmin, *, exclude: Iterable[str] = ()) -> list[AdminField]:
    """Every editable attribute of ``admin.model``, in declaration order.

    Primary keys the database generates, ``onupdate`` columns and columns the admin lists in
    ``readonly_fields`` come out read-only; ``exclude`` and ``admin.exclude`` are left out.
    """
    model = admin.model
    mapper = sa_inspect(model)
    skip = set(exclude) | set(admin.exclude)
    readonly = set(admin.readonly_fields)
    fields: dict[str, AdminField] = {}
    # The schema's words for a field ("Lowercase words-with-dashes") are shown before the user
    # types, not only in the error after a refused save.
    schema = schema_of(admin)
    described = (
        {name: info.description for name, info in schema.model_fields.items() if info.description}
        if schema is not None
        else {}
    )
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        if not isinstance(column, Column) or prop.key in skip:
            continue
        field = _column_field(model, prop, column)
        field.zone = admin.site.zone
        if not field.help_text and prop.key in described:
            field.help_text = described[prop.key]
        generated_pk = column.primary_key and (
            column.autoincrement is True
            or (column.autoincrement == "auto" and isinstance(column.type, Integer))
            or column.server_default is not None
        )
        automatic = column.onupdate is not None or column.server_onupdate is not None
        stamped = isinstance(column.type, DateTime) or isinstance(
            getattr(column.type, "impl", None), DateTime
        )
        if generated_pk or automatic or (stamped and column.server_default is not None):
            field.readonly = True
        if prop.key in readonly:
            field.readonly = True
        if field.readonly:
            field.required = False
        fields[prop.key] = field
    for rel in mapper.relationships:
        if rel.key in skip or rel.secondary is None or not rel.uselist:
            continue
        target = rel.mapper.class_
        fields[rel.key] = AdminField(
            name=rel.key,
            label=label_for(rel.key),
            widget="m2m",
            required=False,
            related=target,
            readonly=rel.key in readonly or bool(rel.viewonly),
        )
    for rel in mapper.relationships:
        # A many-to-one relationship names its foreign key column in labels ("Author").
        if rel.direction.name == "MANYTOONE" and len(rel.local_columns) == 1:
            (local,) = tuple(rel.local_columns)
            for field in fields.values():
                if field.widget == "fk" and field.name == local.key:
                    field.label = label_for(rel.key)
    if admin.fields is not None:
        ordered = [fields[name] for name in admin.fields if name in fields]
        return ordered
    return list(fields.values())


class AdminForm:
    """The fields of one edit page bound to an object's values or a submitted form."""

    def __init__(self, fields: Sequence[AdminField], *, all_readonly: bool = False) -> None:
        self.fields = list(fields)
        self.all_readonly = all_readonly
        #: What each control shows: strings (lists for m2m, bools for checkboxes).
        self.values: dict[str, Any] = {}
        #: The stored value of read-only fields, for display.
        self.raw: dict[str, Any] = {}
        self.errors: dict[str, list[str]] = {}
        self.non_field_errors: list[str] = []
        self.cleaned: dict[str, Any] = {}

    def editable(self) -> list[AdminField]:
        """Fields the user may change."""
        return [] if self.all_readonly else [f for f in self.fields if not f.readonly]

    def load_object(self, obj: Any) -> None:
        """Show ``obj``'s current values."""
        for field in self.fields:
            value = getattr(obj, field.name, None)
            self.raw[field.name] = value
            self.values[field.name] = field.to_form(value)

    def load_initial(self, initial: Mapping[str, Any]) -> None:
        """Show defaults for a new object (``?field=value`` in the add URL)."""
        for field in self.fields:
            if field.widget == "m2m":
                self.values[field.name] = list(initial.get(field.name, []))
            elif field.name in initial:
                value = initial[field.name]
                checkbox = field.widget == "checkbox"
                self.values[field.name] = field.to_python(value) if checkbox else value
            else:
                start = field.initial()
                self.values[field.name] = field.to_form(start)
                self.raw[field.name] = start  # a read-only field shows its default

    def bind(self, data: FormData) -> bool:
        """Take the submitted values; ``True`` when every field converted cleanly."""
        for field in self.editable():
            if field.widget == "m2m":
                raw: Any = [str(v) for v in data.getlist(field.name) if isinstance(v, str)]
                raw = [part.strip() for item in raw for part in item.split(",") if part.strip()]
            elif field.widget == "checkbox":
                raw = data.get(field.name)
            else:
                value = data.get(field.name)
                raw = value if isinstance(value, str) else ""
            shown = self.values.get(field.name)
            self.values[field.name] = (
                bool(field.to_python(raw)) if field.widget == "checkbox" else raw
            )
            if field.name in self.raw and field.unchanged(raw, shown):
                # The control shows whole seconds in the site's zone: an untouched value is
                # the stored one, not that rounded copy (nor, in the hour the clocks go back,
                # the other of the two moments that read the same).
                self.cleaned[field.name] = self.raw[field.name]
                continue
            try:
                self.cleaned[field.name] = field.to_python(raw)
            except ValueError as exc:
                self.add_error(field.name, str(exc))
        return not self.errors

    def add_error(self, name: str | None, message: str) -> None:
        """Show ``message`` beside a field (or above the form when ``name`` is unknown)."""
        if name is not None and any(f.name == name for f in self.fields):
            self.errors.setdefault(name, []).append(message)
        else:
            self.non_field_errors.append(message)

    @property
    def has_errors(self) -> bool:
        """Whether anything needs the user's attention."""
        return bool(self.errors or self.non_field_errors)
