"""Transom's admin battery: a staff-only site to browse and edit the models of an app.

::

    from transom.admin import Admin, ModelAdmin

    admin = app.install(Admin())       # mounted at /admin, staff users only
    admin.register(Article)            # zero-config: every column, sensible widgets

    @admin.register(Author)
    class AuthorAdmin(ModelAdmin):
        list_display = ["name", "email", "created_at"]
        search_fields = ["name", "email"]
        list_filter = ["active"]

See ``docs/admin.md``.
"""

from transom.admin.auth import AdminUser, AuthBackend, SessionAuth
from transom.admin.filters import (
    BooleanFilter,
    ChoicesFilter,
    DateFilter,
    ForeignKeyFilter,
    ListFilter,
)
from transom.admin.forms import AdminField, AdminForm
from transom.admin.history import LogEntry
from transom.admin.options import ModelAdmin, action, object_label
from transom.admin.site import Admin, AdminConfig, AlreadyRegistered
from transom.admin.users import GroupAdmin, UserAdmin

__all__ = [
    "Admin",
    "AdminConfig",
    "AdminField",
    "AdminForm",
    "AdminUser",
    "AlreadyRegistered",
    "AuthBackend",
    "BooleanFilter",
    "ChoicesFilter",
    "DateFilter",
    "ForeignKeyFilter",
    "GroupAdmin",
    "ListFilter",
    "LogEntry",
    "ModelAdmin",
    "SessionAuth",
    "UserAdmin",
    "action",
    "object_label",
]
