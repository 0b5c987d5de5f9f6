"""Forms declared as Pydantic models, bound to a request, re-rendered with errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, Generic, TypeVar

from markupsafe import Markup
from pydantic import BaseModel, ValidationError

from transom.datastructures import FormData, UploadFile
from transom.forms.errors import plain_message
from transom.forms.fields import BoundField, FieldSpec, widget_for
from transom.requests import Request

__all__ = ["BoundForm", "Form"]

M = TypeVar("M", bound="Form")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Form(BaseModel):
    """Declare a form like a Pydantic model; fields become controls, validators apply.

    ``form = await ArticleForm.from_request(request)`` binds it: on GET it is empty (or
    filled from ``initial``), on POST it holds what was submitted, validated. When
    ``form.is_valid``, ``form.data`` is the model instance; otherwise render the form again
    (with ``status_code=form.status_code``, 422): each field shows its errors and keeps what
    the user typed (except passwords and files).
    """

    _specs: ClassVar[dict[str, FieldSpec] | None] = None

    @classmethod
    def field_specs(cls) -> dict[str, FieldSpec]:
        specs = cls.__dict__.get("_specs")
        if specs is None:
            specs = {name: widget_for(name, info) for name, info in cls.model_fields.items()}
            cls._specs = specs
        return specs

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Field defaults, shown by an unbound form."""
        return {
            name: info.get_default(call_default_factory=True)
            for name, info in cls.model_fields.items()
            if not info.is_required()
        }

    @classmethod
    async def from_request(
        cls: type[M], request: Request, *, initial: dict[str, Any] | None = None, prefix: str = ""
    ) -> BoundForm[M]:
        """Bind to ``request``: validate the submitted body on unsafe methods."""
        if request.method in _SAFE_METHODS:
            values = {**cls.defaults(), **(initial or {})}
            return BoundForm(cls, values, submitted=False, request=request)
        # A body-less POST (no Content-Type) is an empty form, not a 415.
        form = await request.form() if request.content_type else FormData()
        return BoundForm(cls, _collect(cls, form, prefix), submitted=True, request=request)


def _collect(cls: type[Form], form: FormData, prefix: str) -> dict[str, Any]:
    """Raw submitted values shaped for validation: lists for multi-selects, False for an
    unchecked box, None for an empty optional field, the upload for a file."""
    data: dict[str, Any] = {}
    for name, spec in cls.field_specs().items():
        key = prefix + name
        values = form.getlist(key)
        if spec.kind == "checkbox":
            data[name] = bool(values) and str(values[0]).lower() not in ("", "off", "false", "0")
        elif spec.multiple:
            data[name] = [v for v in values if v != ""]
        elif spec.kind == "file":
            upload = values[0] if values else None
            has_file = isinstance(upload, UploadFile) and (upload.filename or upload.size)
            if has_file:
                data[name] = upload
        elif values:
            value = values[0]
            if value != "" or spec.required:
                data[name] = value
    return data


class BoundForm(Generic[M]):
    """A form class bound to submitted (or initial) values."""

    def __init__(
        self, form_class: type[M], values: dict[str, Any], *, submitted: bool, request: Request
    ) -> None:
        self.form_class = form_class
        self.values = values
        self.submitted = submitted
        self.request = request
        self.errors: dict[str, list[str]] = {}
        self.non_field_errors: list[str] = []
        self._data: M | None = None
        self.csrf_html: Markup = Markup("")
        self.multipart = any(s.kind == "file" for s in form_class.field_specs().values())
        if submitted:
            self._validate()

    def _validate(self) -> None:
        try:
            self._data = self.form_class.model_validate(self.values)
        except ValidationError as exc:
            names = set(self.form_class.field_specs())
            for error in exc.errors(include_url=False, include_context=False):
                loc = error["loc"]
                field = str(loc[0]) if loc else ""
                message = plain_message(error, self.form_class.model_fields.get(field))
                if field in names:
                    self.errors.setdefault(field, []).append(message)
                else:
                    self.non_field_errors.append(message)

    def add_error(self, field: str | None, message: str) -> None:
        """Attach an error found after validation (e.g. "this slug is taken")."""
        self._data = None
        if field is None:
            self.non_field_errors.append(message)
        else:
            self.errors.setdefault(field, []).append(message)

    @property
    def is_valid(self) -> bool:
        return self.submitted and self._data is not None and not self.errors

    @property
    def data(self) -> M:
        """The validated model (only when :attr:`is_valid`)."""
        if not self.is_valid or self._data is None:
            raise ValueError("the form is not valid; check form.is_valid first")
        return self._data

    @property
    def status_code(self) -> int:
        """422 for a submitted form with errors, else 200."""
        return 422 if self.submitted and not self.is_valid else 200

    def __getitem__(self, name: str) -> BoundField:
        spec = self.form_class.field_specs()[name]
        return BoundField(spec, self.values.get(name), self.errors.get(name, []), "")

    def __iter__(self) -> Iterator[BoundField]:
        for name in self.form_class.field_specs():
            yield self[name]

    def __getattr__(self, name: str) -> BoundField:
        if name.startswith("_") or name not in self.form_class.field_specs():
            raise AttributeError(name)
        return self[name]

    async def with_csrf(self) -> BoundForm[M]:
        """Fetch the CSRF hidden field when the security battery protects this app."""
        from transom.security.extension import Security

        app = self.request.app
        if app is not None and app.batteries.find(Security) is not None:
            from transom.security.csrf import csrf_input, csrf_token

            self.csrf_html = Markup(csrf_input(await csrf_token(self.request)))
        return self

    def render(self, action: str = "", submit: str = "Save", method: str = "post") -> Markup:
        """The whole ``<form>``: CSRF field, non-field errors, every field, a submit button."""
        enctype = Markup(' enctype="multipart/form-data"') if self.multipart else Markup("")
        errors = Markup("").join(Markup("<li>{}</li>").format(e) for e in self.non_field_errors)
        error_list = (
            Markup('<ul class="errors form-errors">{}</ul>').format(errors) if errors else ""
        )
        fields = Markup("").join(Markup(f.__html__()) for f in self)
        return Markup(
            '<form method="{}" action="{}"{} novalidate>{}{}{}<button type="submit">{}</button>'
            "</form>"
        ).format(method, action, enctype, self.csrf_html, error_list, fields, submit)

    def __html__(self) -> str:
        return str(self.render())
