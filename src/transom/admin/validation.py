"""The rules a model declared, applied to the admin's forms: the admin and the API agree.

Besides each column's own limits (type, length, nullability, checked by :mod:`.forms`), an edit
form goes through, in order:

1. the model's Pydantic schema: :attr:`ModelAdmin.schema`, else the model's ``__schema__``
   (the schema the API takes as input). Every field of the form that the schema declares is
   validated by it, with the object's other values, and its errors are shown in plain words
   (:func:`transom.forms.plain_message`) beside the fields;
2. the model's SQLAlchemy validators (``@validates``), which would otherwise fail later, on
   assignment: a ``ValueError``, ``TypeError`` or ``AssertionError`` becomes the field's error;
3. :meth:`ModelAdmin.clean`, for rules that only the admin has.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import inspect as sa_inspect

from transom.forms.errors import plain_message

if TYPE_CHECKING:
    from transom.admin.forms import AdminForm
    from transom.admin.options import ModelAdmin

__all__ = ["run_model_validators", "schema_of", "validate_with_schema"]


def schema_of(admin: ModelAdmin) -> type[BaseModel] | None:
    """The Pydantic schema the admin validates ``admin.model`` with, if any."""
    schema = admin.schema if admin.schema is not None else getattr(admin.model, "__schema__", None)
    if schema is None:
        return None
    if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        raise TypeError(
            f"{admin.model.__name__}'s schema must be a pydantic.BaseModel subclass, not {schema!r}"
        )
    return schema


def validate_with_schema(admin: ModelAdmin, form: AdminForm, obj: Any | None) -> None:
    """Validate the form's values with the model's schema; errors go onto the form.

    Values the schema changes (stripped, normalised) replace the submitted ones.
    """
    schema = schema_of(admin)
    if schema is None:
        return
    columns = set(sa_inspect(admin.model).column_attrs.keys())
    editable = {f.name: f for f in form.editable() if f.widget != "m2m"}
    checked = [name for name in schema.model_fields if name in editable]
    if not checked:
        return
    data: dict[str, Any] = {}
    for name in schema.model_fields:
        if name in editable:
            if name not in form.cleaned:  # already refused by its own column rules
                continue
            data[name] = form.cleaned[name]
        elif obj is not None and name in columns:
            data[name] = getattr(obj, name)
    try:
        validated = schema.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            loc = error["loc"]
            name = str(loc[0]) if loc else ""
            info = schema.model_fields.get(name)
            if name in editable:
                if name in form.cleaned:
                    form.add_error(name, plain_message(error, info))
            elif not loc:
                form.add_error(None, plain_message(error, info))
            elif error["type"] != "missing":
                # A field the form doesn't show, whose stored value the schema refuses.
                form.add_error(None, f"{name}: {plain_message(error, info)}")
        return
    for name in checked:
        if name in form.cleaned and name in validated.model_fields_set:
            form.cleaned[name] = getattr(validated, name)


def run_model_validators(admin: ModelAdmin, form: AdminForm, target: Any) -> None:
    """Run the model's ``@validates`` methods on the form's values before they are assigned."""
    validators = sa_inspect(admin.model).validators
    for field in form.editable():
        name = field.name
        if name not in validators or name not in form.cleaned or field.widget == "m2m":
            continue
        method, _options = validators[name]
        try:
            form.cleaned[name] = method(target, name, form.cleaned[name])
        except (ValueError, TypeError, AssertionError) as exc:
            form.add_error(name, str(exc) or "Enter a valid value.")
