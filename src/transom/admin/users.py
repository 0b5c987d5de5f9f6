"""Users and groups in the admin: the password is set through its own form, never edited."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from transom.admin.forms import AdminField, AdminForm
from transom.admin.options import ModelAdmin, _humanise
from transom.requests import Request

if TYPE_CHECKING:
    from transom.admin.site import Admin
    from transom.db import DbSession

__all__ = ["GroupAdmin", "UserAdmin"]

_FLAGS = ("is_active", "is_staff", "is_superuser")


class _PermissionPicker(ModelAdmin):
    """Permissions in a picker: "Can change API token", under "Auth · api token", not codenames.

    The four standard permissions are stored as "Can view apitoken" (the class name in lower
    case, all the codename keeps); the picker says the model's name as its admin page does
    ("Api token", split at its capitals) when the codename's model is a mapped class.
    """

    _readable: dict[str, str] | None = None

    def _model_name(self, app: str, model: str) -> str | None:
        """``"api token"`` for the codename part ``auth.apitoken``, if a mapped class has it."""
        if self._readable is None:
            from transom.auth.permissions import app_label

            readable = {}
            for mapper in self.model.registry.mappers:
                cls = mapper.class_
                admin = self.site.admin_for(cls)
                name = admin.name if admin is not None else _humanise(cls.__name__)
                readable[f"{app_label(cls)}.{cls.__name__.lower()}"] = name.lower()
            self._readable = readable
        return self._readable.get(f"{app}.{model}")

    def _parts(self, obj: Any) -> tuple[str, str, str, str] | None:
        codename = getattr(obj, "codename", None)
        if not isinstance(codename, str) or "." not in codename:
            return None
        app, _, rest = codename.partition(".")
        action, _, model = rest.partition("_")
        return app, action, model, rest

    def choice_label(self, field: AdminField, obj: Any) -> str | None:
        codename = getattr(obj, "codename", None)
        if not isinstance(codename, str):
            return None
        name = str(getattr(obj, "name", "") or "")
        parts = self._parts(obj)
        if parts is not None:
            from transom.auth.permissions import ACTIONS

            app, action, model, _rest = parts
            readable = self._model_name(app, model)
            # Only the generated name is reworded; a custom permission keeps its own words.
            if readable and action in ACTIONS and name == f"Can {action} {model}":
                return f"Can {action} {readable}"
        return name or codename

    def choice_group(self, field: AdminField, obj: Any) -> str:
        parts = self._parts(obj)
        if parts is None:
            return ""
        app, _action, model, rest = parts
        readable = self._model_name(app, model) or model.replace("_", " ") or rest
        return f"{app.replace('_', ' ').capitalize()} · {readable}"


class UserAdmin(_PermissionPicker):
    """The user model: searchable by name and email, filtered by flags.

    Adding a user asks for the password twice; an existing user's password changes on the
    "Change password" page. The hash column is hidden everywhere.
    """

    def __init__(self, model: type[Any], site: Admin) -> None:
        super().__init__(model, site)
        auth = site.auth
        assert auth is not None
        self.password_field = auth.password_field  # type: ignore[misc]
        self.username_field = auth.username_field
        columns = [p.key for p in self.mapper.column_attrs]
        if type(self).list_display is None:
            wanted = [self.username_field, "email", "first_name", "last_name", *_FLAGS]
            self.list_display = [c for c in wanted if c in columns]  # type: ignore[misc]
        if type(self).search_fields is None:
            wanted = [self.username_field, "email", "first_name", "last_name"]
            self.search_fields = [c for c in wanted if c in columns]  # type: ignore[misc]
        if not type(self).list_filter:
            self.list_filter = [c for c in _FLAGS if c in columns]  # type: ignore[misc]
        if type(self).ordering is None:
            self.ordering = [self.username_field]  # type: ignore[misc]

    def form_fields(self, *, adding: bool) -> list[AdminField]:
        fields = super().form_fields(adding=adding)
        if adding:
            fields += [
                AdminField(
                    "password1",
                    "Password",
                    "password",
                    required=True,
                    nullable=False,
                    help_text=" ".join(self._password_rules()),
                ),
                AdminField(
                    "password2",
                    "Password again",
                    "password",
                    required=True,
                    nullable=False,
                    help_text="The same password, to catch typing mistakes.",
                ),
            ]
        return fields

    def _password_rules(self) -> list[str]:
        auth = self.site.auth
        return auth.password_rules() if auth is not None else []

    async def clean(
        self, request: Request, db: DbSession, form: AdminForm, obj: Any | None, adding: bool
    ) -> None:
        if not adding:
            return
        first = form.cleaned.get("password1")
        second = form.cleaned.get("password2")
        if first is None or second is None:
            return
        if first != second:
            form.add_error("password2", "The two passwords differ.")
            return
        auth = self.site.auth
        assert auth is not None
        for problem in auth.validate_password(str(first)):
            form.add_error("password1", problem)

    async def save_model(
        self, request: Request, db: DbSession, obj: Any, data: dict[str, Any], adding: bool
    ) -> None:
        raw = data.pop("password1", None)
        data.pop("password2", None)
        if adding and raw is not None:
            auth = self.site.auth
            assert auth is not None
            await auth.aset_password(obj, str(raw))
        await super().save_model(request, db, obj, data, adding)


class GroupAdmin(_PermissionPicker):
    """The group model: a name and its permissions."""
