"""Who may do what on a resource: permission objects checked before and after loading.

Each permission answers twice: :meth:`Permission.has_permission` before anything is loaded
(may this client list, create...?) and :meth:`Permission.has_object_permission` for the one
object of a retrieve, update, delete or detail action. Every permission of a resource must
agree. A refusal answers 401 to an anonymous client and 403 to a logged-in one.

:class:`ModelPermissions` uses the auth battery's model permissions (``blog.add_post``...)
and its object rules (``@object_rule("blog.change_post")``), so "owners edit their own posts"
is an object rule, written once for the admin, the templates and the API.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transom.rest.context import Context

__all__ = [
    "SAFE_METHODS",
    "AllowAny",
    "IsAuthenticated",
    "IsAuthenticatedOrReadOnly",
    "ModelPermissions",
    "OwnerCanEdit",
    "Permission",
]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Permission:
    """Base class: allows everything; override one or both checks."""

    async def has_permission(self, ctx: Context) -> bool:
        """May the client run ``ctx.action`` at all?"""
        return True

    async def has_object_permission(self, ctx: Context, obj: Any) -> bool:
        """May the client run ``ctx.action`` on ``obj``?"""
        return True

    async def before_create(self, ctx: Context, obj: Any) -> None:
        """Prepare a new object before it is saved (an owner permission fills the owner in)."""

    def can_refuse(self, action: str, method: str, detail: bool) -> bool:
        """Whether this permission may refuse ``action`` (an HTTP ``method``, on one object
        when ``detail``): ``/openapi.json`` documents 401 and 403 only where one can.

        The default says yes when a subclass overrides a check; override it to be exact.
        """
        cls = type(self)
        return (
            cls.has_permission is not Permission.has_permission
            or cls.has_object_permission is not Permission.has_object_permission
        )


class AllowAny(Permission):
    """Anyone may do anything (state it explicitly: the default is read-only for anonymous)."""


class IsAuthenticated(Permission):
    """Only logged-in clients."""

    async def has_permission(self, ctx: Context) -> bool:
        return await ctx.get_user() is not None


class IsAuthenticatedOrReadOnly(Permission):
    """Anyone may read; writes need a logged-in client (the default of a resource)."""

    async def has_permission(self, ctx: Context) -> bool:
        return ctx.method in SAFE_METHODS or await ctx.get_user() is not None

    def can_refuse(self, action: str, method: str, detail: bool) -> bool:
        return method not in SAFE_METHODS


_ACTION_PERMS = {
    "list": "view",
    "retrieve": "view",
    "create": "add",
    "update": "change",
    "partial_update": "change",
    "destroy": "delete",
}


@dataclasses.dataclass(frozen=True)
class ModelPermissions(Permission):
    """The auth battery's model permissions: ``add`` to create, ``change`` to update,
    ``delete`` to delete (checked with the object, so object rules may allow or deny), and
    ``view`` to read when ``read=True`` (reads are public otherwise).

    A custom action needs the permission it declares (``@action(perm="publish_post")``),
    else ``change`` for a detail action and ``add`` for a list one.
    """

    read: bool = False

    def _codename(self, ctx: Context) -> str | None:
        from transom.auth.permissions import app_label

        model = ctx.resource.model
        verb = _ACTION_PERMS.get(ctx.action)
        if verb is None:
            declared = ctx.action_perm
            if declared:
                return declared if "." in declared else f"{app_label(model)}.{declared}"
            verb = "change" if ctx.detail else "add"
        if verb == "view" and not self.read:
            return None
        return f"{app_label(model)}.{verb}_{model.__name__.lower()}"

    def can_refuse(self, action: str, method: str, detail: bool) -> bool:
        verb = _ACTION_PERMS.get(action)
        return not (verb == "view" and not self.read)

    async def has_permission(self, ctx: Context) -> bool:
        perm = self._codename(ctx)
        if perm is None:
            return True
        user = await ctx.get_user()
        if user is None:
            return False
        if ctx.detail:
            return True  # decided with the object, where object rules apply
        return bool(await user.has_perm(perm, ctx.db))

    async def has_object_permission(self, ctx: Context, obj: Any) -> bool:
        perm = self._codename(ctx)
        if perm is None:
            return True
        user = await ctx.get_user()
        return user is not None and bool(await user.has_perm(perm, ctx.db, obj))


@dataclasses.dataclass(frozen=True)
class OwnerCanEdit(Permission):
    """Only the owner changes or deletes an object; everyone may read it.

    ``field`` is the many-to-one relation to the user (``"author"``): a new object gets the
    current user as its owner, so make that field read-only.
    """

    field: str

    def _owner_key(self, ctx: Context) -> str:
        spec = ctx.resource.fields_by_name().get(self.field)
        if spec is None or spec.kind != "fk":
            raise ValueError(f"OwnerCanEdit({self.field!r}): not a many-to-one relation")
        return spec.attr

    async def has_object_permission(self, ctx: Context, obj: Any) -> bool:
        if ctx.method in SAFE_METHODS:
            return True
        user = await ctx.get_user()
        return user is not None and getattr(obj, self._owner_key(ctx)) == user.id

    def can_refuse(self, action: str, method: str, detail: bool) -> bool:
        return detail and method not in SAFE_METHODS  # only the object check refuses

    async def before_create(self, ctx: Context, obj: Any) -> None:
        user = await ctx.get_user()
        if user is not None:
            setattr(obj, self._owner_key(ctx), user.id)
