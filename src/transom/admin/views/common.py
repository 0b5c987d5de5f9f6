"""Helpers shared by the admin's views."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from transom.admin.history import (
    DELETION,
    log_action,
)
from transom.admin.options import ModelAdmin
from transom.exceptions import HTTPException
from transom.responses import Response
from transom.security.redirects import safe_next as _auth_safe_next
from transom.templating import render

if TYPE_CHECKING:
    from transom.admin.site import Ctx


PAGE_LIMIT = 10_000_000


def render_page(ctx: Ctx, template: str, *, status_code: int = 200, **extra: Any) -> Response:
    return render(
        f"admin/{template}",
        status_code=status_code,
        **ctx.site.context(ctx.request, ctx.username, **extra),
    )


def safe_next(value: str | None, default: str) -> str:
    """Deprecated: use :func:`transom.auth.safe_next` (this calls it, accepting paths only)."""
    warnings.warn(
        "transom.admin.views.common.safe_next is deprecated; use transom.auth.safe_next "
        "(transom.auth.redirects.safe_next)",
        DeprecationWarning,
        stacklevel=2,
    )
    # No host: absolute URLs never match it, so only paths on this site pass, as before.
    return _auth_safe_next(value, host="", secure=True, default=default)


def crumbs(admin: ModelAdmin, *more: tuple[str, str | None]) -> list[tuple[str, str | None]]:
    return [(admin.name_plural, admin.url("list")), *more]


def user_repr(ctx: Ctx) -> str:
    return ctx.username


async def delete_one(ctx: Ctx, admin: ModelAdmin, obj: Any) -> None:
    pk, label = admin.pk_of(obj), admin.label(obj)
    await admin.delete_model(ctx.request, ctx.db, obj)
    await log_action(
        ctx.db,
        user_id=ctx.user_id,
        user_repr=user_repr(ctx),
        model_key=admin.key,
        object_id=pk,
        object_repr=label,
        action=DELETION,
    )


def coerce(model: type[Any], text: Any) -> Any:
    from transom.admin.forms import _coerce_pk

    return _coerce_pk(model, text)


def missing(admin: ModelAdmin, pk_text: str) -> HTTPException:
    """The 404 of an object that isn't there (the admin shows it as a message on its list)."""
    shown = pk_text if len(pk_text) <= 40 else pk_text[:39] + "…"
    return HTTPException(
        404, f"There is no {admin.name.lower()} with the id “{shown}”. Perhaps it was deleted?"
    )


async def object_or_404(ctx: Ctx, admin: ModelAdmin) -> Any:
    pk_text = str(ctx.request.path_params["pk"])
    try:
        pk = admin.parse_pk(pk_text)
    except (ValueError, TypeError):
        raise missing(admin, pk_text) from None
    obj = await admin.get_object(ctx.request, ctx.db, pk)
    if obj is None:
        raise missing(admin, pk_text)
    return obj
