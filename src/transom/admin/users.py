"""Users and groups in the admin: the password is set through its own form, never edited."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from transom.admin.forms import AdminField, AdminForm
from transom.admin.options import ModelAdmin
from transom.requests import Request

if TYPE_CHECKING:
    from transom.admin.site import Admin
    from transom.db import DbSession

__all__ = ["GroupAdmin", "UserAdmin"]

_FLAGS = ("is_active", "is_staff", "is_superuser")


class _PermissionPicker(ModelAdmin):
    """Permissions in a picker: "Can change post", under "Blog · post", not codenames."""

    def choice_label(self, field: AdminField, obj: Any) -> str | None:
        codename = getattr(obj, "codename", None)
        if not isinstance(codename, str):
            return None
        name = getattr(obj, "name", "")
        return str(name) if name else codename

    def choice_group(self, field: AdminField, obj: Any) -> str:
        codename = getattr(obj, "codename", None)
        if not isinstance(codename, str) or "." not in codename:
            return ""
        app, _, rest = codename.partition(".")
        _action, _, model = rest.partition("_")
        return f"{app.replace('_', ' ').capitalize()} · {model.replace('_', ' ') or rest}"


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
