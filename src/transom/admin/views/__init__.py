"""The admin's pages. Every view gets a :class:`~transom.admin.site.Ctx` (request, session,
user) from the site's wrapper, which has already let only active staff users through."""

from transom.admin.views.changelist import changelist
from transom.admin.views.edit import add, change
from transom.admin.views.objects import autocomplete, delete, history, password
from transom.admin.views.pages import index, login, logout, own_password

__all__ = [
    "add",
    "autocomplete",
    "change",
    "changelist",
    "delete",
    "history",
    "index",
    "login",
    "logout",
    "own_password",
    "password",
]
