"""Delete, history, the foreign-key search box and the password form."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError

from transom.admin.deletion import deletion_summary, is_blocked
from transom.admin.history import (
    CHANGE,
    log_action,
    object_history,
)
from transom.admin.options import ModelAdmin
from transom.admin.views.common import (
    coerce,
    crumbs,
    delete_one,
    missing,
    object_or_404,
    render_page,
    user_repr,
)
from transom.exceptions import HTTPException
from transom.forms import flash
from transom.responses import JSONResponse, RedirectResponse, Response

if TYPE_CHECKING:
    from transom.admin.site import Ctx


async def delete(ctx: Ctx) -> Response:
    """Confirm, then delete one object; related rows that block it are listed."""
    admin = ctx.model_admin()
    await ctx.require(admin, "delete")
    obj = await object_or_404(ctx, admin)
    consequences = await deletion_summary(ctx.db, admin, [obj])
    blocked = is_blocked(consequences)
    label = admin.label(obj)
    pk = admin.pk_of(obj)
    status = 200
    if ctx.request.method == "POST":
        if not blocked:
            try:
                await delete_one(ctx, admin, obj)
                await ctx.db.commit()
            except IntegrityError:
                await ctx.db.rollback()
                blocked = True
                status = 409
            else:
                await flash(
                    ctx.request, f"The {admin.name.lower()} “{label}” was deleted.", "success"
                )
                return RedirectResponse(admin.url("list"), 303)
        else:
            status = 409
    return render_page(
        ctx,
        "delete.html",
        status_code=status,
        title=f"Delete {label}?",
        admin=admin,
        objects=[label],
        selected=[],
        consequences=consequences,
        blocked=blocked,
        action_url=admin.url("delete", pk),
        bulk=False,
        back_query="",
        cancel_url=admin.url("change", pk),
        breadcrumbs=crumbs(admin, (label, admin.url("change", pk)), ("Delete", None)),
    )


async def history(ctx: Ctx) -> Response:
    """Every recorded action on one object, newest first (also after it was deleted)."""
    admin = ctx.model_admin()
    await ctx.require(admin, "view")
    pk_text = str(ctx.request.path_params["pk"])
    try:
        obj = await admin.get_object(ctx.request, ctx.db, admin.parse_pk(pk_text))
    except (ValueError, TypeError):
        raise missing(admin, pk_text) from None
    entries = await object_history(ctx.db, admin.key, pk_text, exists=obj is not None)
    if obj is None and not entries:
        raise missing(admin, pk_text)
    label = admin.label(obj) if obj is not None else entries[0].object_repr
    return render_page(
        ctx,
        "history.html",
        title=f"History of {label}",
        admin=admin,
        entries=entries,
        object_label=label,
        change_url=admin.url("change", pk_text) if obj is not None else None,
        breadcrumbs=crumbs(
            admin,
            (label, admin.url("change", pk_text) if obj is not None else None),
            ("History", None),
        ),
    )


async def autocomplete(ctx: Ctx) -> Response:
    """JSON matches for a foreign-key or many-to-many box: ``?field=author_id&q=ann``."""
    admin = ctx.model_admin()
    perms = await admin.permissions(ctx.request, ctx.db, ctx.user)
    if not (perms["add"] or perms["change"]):
        await ctx.require(admin, "change")
    name = ctx.request.query.get("field") or ""
    field = next((f for f in admin.form_fields(adding=False) if f.name == name), None)
    if field is None or field.related is None or field.readonly:
        raise HTTPException(404, "No such related field")
    related = field.related
    related_admin = ctx.site.admin_for(related) or ModelAdmin(related, ctx.site)
    term = (ctx.request.query.get("q") or "").strip()
    base = related_admin.get_queryset(ctx.request)
    stmt = related_admin.apply_search(base, term)
    pk = sa_inspect(related).primary_key[0]
    found = None
    if term.isdigit():
        try:
            key = coerce(related, term)
        except (ValueError, TypeError):
            key = None
        if key is not None:
            found = (await ctx.db.execute(base.where(pk == key))).scalars().first()
    rows = list((await ctx.db.execute(stmt.order_by(pk).limit(21))).scalars())
    if found is not None and found not in rows:
        rows.insert(0, found)
    more = len(rows) > 20
    pk_key = sa_inspect(related).get_property_by_column(pk).key
    results = [{"id": str(getattr(r, pk_key)), "text": related_admin.label(r)} for r in rows[:20]]
    return JSONResponse({"results": results, "more": more})


async def password(ctx: Ctx) -> Response:
    """Set a user's password through a form (the hash itself is never shown or edited)."""
    admin = ctx.model_admin()
    if not admin.password_field:
        raise HTTPException(404, "This model has no password")
    await ctx.require(admin, "change")
    obj = await object_or_404(ctx, admin)
    auth = ctx.site.auth
    assert auth is not None
    errors: list[str] = []
    status = 200
    if ctx.request.method == "POST":
        data = await ctx.request.form()
        first = str(data.get("password1") or "")
        second = str(data.get("password2") or "")
        if first != second:
            errors.append("The two passwords differ.")
        else:
            errors.extend(auth.validate_password(first, obj))
        if not errors:
            await auth.aset_password(obj, first)
            await ctx.db.flush()
            await log_action(
                ctx.db,
                user_id=ctx.user_id,
                user_repr=user_repr(ctx),
                model_key=admin.key,
                object_id=admin.pk_of(obj),
                object_repr=admin.label(obj),
                action=CHANGE,
                message="Changed the password.",
            )
            await ctx.db.commit()
            await flash(ctx.request, "The password was changed.", "success")
            return RedirectResponse(admin.url("change", admin.pk_of(obj)), 303)
        status = 422
    label = admin.label(obj)
    return render_page(
        ctx,
        "password.html",
        status_code=status,
        rules=auth.password_rules(),
        title=f"Change the password of {label}",
        admin=admin,
        errors=errors,
        object_label=label,
        change_url=admin.url("change", admin.pk_of(obj)),
        breadcrumbs=crumbs(
            admin, (label, admin.url("change", admin.pk_of(obj))), ("Password", None)
        ),
    )
