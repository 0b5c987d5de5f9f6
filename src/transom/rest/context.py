"""What a resource's handlers, hooks and permissions see of a request, and ``@action``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from transom.db import DbSession
from transom.requests import Request

if TYPE_CHECKING:
    from transom.rest.resource import ModelResource

__all__ = ["Context", "action", "extensions_of"]

F = TypeVar("F", bound=Callable[..., Any])


def extensions_of(request: Request) -> dict[str, Any]:
    """The extensions of the request's app (empty for a request built outside an app)."""
    return request.app.extensions if request.app is not None else {}


class Context:
    """The current request as a resource sees it: in handlers, hooks and permissions."""

    __slots__ = (
        "_user",
        "_user_loaded",
        "action",
        "action_perm",
        "db",
        "detail",
        "request",
        "resource",
    )

    def __init__(
        self,
        resource: ModelResource,
        request: Request,
        db: DbSession,
        action: str,
        detail: bool,
        action_perm: str | None = None,
    ) -> None:
        #: The resource serving this request.
        self.resource = resource
        self.request = request
        self.db = db
        #: ``list``, ``retrieve``, ``create``, ``update``, ``partial_update``, ``destroy``
        #: or the name of a custom action.
        self.action = action
        #: Whether the action is about one object (retrieve, update... or a detail action).
        self.detail = detail
        #: The permission a custom action declared.
        self.action_perm = action_perm
        self._user: Any = None
        self._user_loaded = False

    @property
    def method(self) -> str:
        """The HTTP method."""
        return self.request.method

    async def get_user(self) -> Any:
        """The authenticated user (auth battery), or ``None``; loaded once per request."""
        if not self._user_loaded:
            self._user_loaded = True
            if "transom.auth" in extensions_of(self.request):
                from transom.auth.web import get_current_user

                self._user = await get_current_user(self.request, self.db)
        return self._user


@dataclasses.dataclass(frozen=True)
class _Action:
    name: str
    methods: tuple[str, ...]
    detail: bool
    path: str
    perm: str | None
    status_code: int
    summary: str | None


def action(
    methods: Sequence[str] = ("POST",),
    *,
    detail: bool = True,
    path: str | None = None,
    perm: str | None = None,
    status_code: int = 200,
) -> Callable[[F], F]:
    """Declare a custom action on a resource: ``POST /api/posts/{id}/publish``.

    The method is called as ``await self.publish(ctx, obj)`` for a detail action (the object
    is loaded, 404 when missing, and its object permissions checked) or
    ``await self.name(ctx)`` otherwise. It returns a model instance (sent with the read
    schema), ``None`` (204), or anything a handler may return.

    Args:
        methods: HTTP methods.
        detail: About one object (``/{id}/<path>``) or the collection (``/<path>``).
        path: The URL segment (default: the method's name with ``-`` for ``_``).
        perm: The permission :class:`~transom.rest.ModelPermissions` requires
            (``"publish_post"`` or ``"blog.publish_post"``).
        status_code: Status of a successful answer with a body.
    """

    def decorate(func: F) -> F:
        name = func.__name__
        func.__transom_action__ = _Action(  # type: ignore[attr-defined]
            name,
            tuple(m.upper() for m in methods),
            detail,
            path or name.replace("_", "-"),
            perm,
            status_code,
            (func.__doc__ or "").strip().split("\n")[0] or None,
        )
        return func

    return decorate
