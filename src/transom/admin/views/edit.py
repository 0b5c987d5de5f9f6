"""The add and change pages."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from transom.admin.forms import AdminForm
from transom.admin.history import (
    ADDITION,
    CHANGE,
    display_value,
    log_action,
)
from transom.admin.options import ModelAdmin, object_label
from transom.admin.validation import run_model_validators, validate_with_schema
from transom.admin.views.common import (
    coerce,
    crumbs,
    object_or_404,
    render_page,
    user_repr,
)
from transom.db.errors import classify
from transom.forms import flash
from transom.responses import RedirectResponse, Response

if TYPE_CHECKING:
    from transom.admin.site import Ctx


async def _prepare_related(ctx: Ctx, admin: ModelAdmin, form: AdminForm) -> None:
    """Options for small related tables; labels of the chosen rows for large ones."""
    for field in form.fields:
        if field.widget not in ("fk", "m2m") or field.related is None:
            continue
        related = field.related
        pk = sa_inspect(related).primary_key[0]
        limit = admin.fk_select_limit
        related_admin = ctx.site.admin_for(related)
        if related_admin is not None and not field.readonly:
            field.related_links = await _related_links(ctx, field, related_admin, form)
        base = related_admin.get_queryset(ctx.request) if related_admin else select(related)
        rows = list((await ctx.db.execute(base.order_by(pk).limit(limit + 1))).scalars())
        label = related_admin.label if related_admin else object_label
        pk_key = sa_inspect(related).get_property_by_column(pk).key
        if len(rows) <= limit:
            named = [(r, admin.choice_label(field, r) or label(r)) for r in rows]
            field.options = [(str(getattr(r, pk_key)), text) for r, text in named]
            field.selected_labels = dict(field.options)
            if field.widget == "m2m":
                groups: dict[str, list[tuple[str, str]]] = {}
                for (row, _), option in zip(named, field.options, strict=True):
                    groups.setdefault(admin.choice_group(field, row), []).append(option)
                field.groups = sorted(groups.items())
            continue
        field.options = None
        current = form.values.get(field.name)
        wanted = current if isinstance(current, list) else ([current] if current else [])
        keys = []
        for text in wanted:
            try:
                keys.append(coerce(related, text))
            except (ValueError, TypeError):
                continue
        if keys:
            chosen = (await ctx.db.execute(select(related).where(pk.in_(keys)))).scalars()
            field.selected_labels = {str(getattr(r, pk_key)): label(r) for r in chosen}


async def _related_links(
    ctx: Ctx, field: Any, related_admin: ModelAdmin, form: AdminForm
) -> list[tuple[str, str]]:
    """ "Edit Ann" and "Add another author" beside a foreign key, "Add another tag" beside a
    many-to-many picker (each opens a new tab)."""
    perms = await related_admin.permissions(ctx.request, ctx.db, ctx.user)
    links = []
    current = form.values.get(field.name)
    one = field.widget == "fk"
    if one and current not in (None, "") and (perms["change"] or perms["view"]):
        verb = "Edit" if perms["change"] else "View"
        links.append(
            (f"{verb} this {related_admin.name.lower()}", related_admin.url("change", current))
        )
    if perms["add"]:
        links.append((f"Add another {related_admin.name.lower()}", related_admin.url("add")))
    return links


async def _resolve_related(ctx: Ctx, form: AdminForm) -> None:
    """Check foreign keys exist; turn many-to-many ids into objects."""
    for field in form.editable():
        if field.name not in form.cleaned or field.related is None:
            continue
        value = form.cleaned[field.name]
        pk = sa_inspect(field.related).primary_key[0]
        if field.widget == "fk" and value is not None:
            if await ctx.db.get(field.related, value) is None:
                form.add_error(field.name, "Select a valid choice: that record does not exist.")
        elif field.widget == "m2m":
            rows = list(
                (await ctx.db.execute(select(field.related).where(pk.in_(value)))).scalars()
            )
            if len(rows) != len(set(value)):
                form.add_error(field.name, "Select valid choices: some records do not exist.")
            form.cleaned[field.name] = rows


async def _related_labels(ctx: Ctx, field: Any, values: list[Any]) -> dict[str, str]:
    """How history names related rows: their labels (a deleted row keeps its id)."""
    related = field.related
    keys = []
    for value in values:
        if value is None:
            continue
        if hasattr(value, "__table__"):
            identity = sa_inspect(value).identity
            keys.append(identity[0] if identity else None)
            continue
        try:
            keys.append(coerce(related, value))
        except (ValueError, TypeError):
            continue
    keys = [k for k in keys if k is not None]
    if related is None or not keys:
        return {}
    pk = sa_inspect(related).primary_key[0]
    pk_key = sa_inspect(related).get_property_by_column(pk).key
    related_admin = ctx.site.admin_for(related)
    label = related_admin.label if related_admin else object_label
    rows = (await ctx.db.execute(select(related).where(pk.in_(keys)))).scalars()
    return {str(getattr(row, pk_key)): label(row) for row in rows}


async def _changes(ctx: Ctx, form: AdminForm, before: dict[str, Any]) -> list[dict[str, Any]]:
    changes = []
    for field in form.editable():
        if field.name not in form.cleaned:
            continue
        new = form.cleaned[field.name]
        old = before.get(field.name)
        if field.widget == "m2m":
            old_keys = sorted(field.to_form(old))
            new_keys = sorted(field.to_form(new))
            if old_keys != new_keys:
                names = await _related_labels(ctx, field, [*old_keys, *new_keys])
                changes.append(
                    {
                        "field": field.label,
                        "old": ", ".join(names.get(k, k) for k in old_keys) or "—",
                        "new": ", ".join(names.get(k, k) for k in new_keys) or "—",
                    }
                )
            continue
        if field.widget == "password":
            continue
        if field.to_form(old) != field.to_form(new):
            if field.widget == "fk":
                names = await _related_labels(ctx, field, [old, new])
                shown_old = names.get(str(old), display_value(old))
                shown_new = names.get(str(new), display_value(new))
                changes.append({"field": field.label, "old": shown_old, "new": shown_new})
                continue
            zone = ctx.site.zone
            changes.append(
                {
                    "field": field.label,
                    "old": display_value(old, zone),
                    "new": display_value(new, zone),
                }
            )
    return changes


def _refused_value(ctx: Ctx, exc: Exception) -> bool:
    from transom.db import get_database

    problem = classify(exc, get_database(ctx.request.app).metadatas)
    return problem is not None and problem.kind == "invalid"


def _db_errors(ctx: Ctx, form: AdminForm, exc: Exception) -> None:
    from transom.db import get_database

    metadatas = get_database(ctx.request.app).metadatas
    problem = classify(exc, metadatas)
    messages = {
        "invalid": "A value is out of range, too long or contains invalid characters.",
        "unique": "A record with this value already exists.",
        "not_null": "This field is required.",
        "foreign_key": "Select a valid choice: that record does not exist.",
        "check": "This value is not allowed.",
        "restrict": "This record is still referenced by other records.",
    }
    if problem is None:
        form.add_error(None, "The database refused this change.")
        return
    message = messages.get(problem.kind, "The database refused this change.")
    names = [f.name for f in form.fields]
    placed = False
    for name in problem.fields:
        if name in names:
            form.add_error(name, message)
            placed = True
    if not placed:
        which = f" ({', '.join(problem.fields)})" if problem.fields else ""
        form.add_error(None, message.rstrip(".") + which + ".")


async def add(ctx: Ctx) -> Response:
    """Create an object."""
    admin = ctx.model_admin()
    await ctx.require(admin, "add")
    return await _edit(ctx, admin, None)


async def change(ctx: Ctx) -> Response:
    """Edit an object (read-only for users who may only view)."""
    admin = ctx.model_admin()
    await ctx.require(admin, "view")
    obj = await object_or_404(ctx, admin)
    return await _edit(ctx, admin, obj)


async def _edit(ctx: Ctx, admin: ModelAdmin, obj: Any | None) -> Response:
    request, db = ctx.request, ctx.db
    adding = obj is None
    perms = await admin.permissions(request, db, ctx.user)
    can_save = perms["add"] if adding else perms["change"]
    form = AdminForm(admin.form_fields(adding=adding), all_readonly=not can_save)
    pk = admin.pk_of(obj) if obj is not None else None
    label = admin.label(obj) if obj is not None else ""
    if obj is not None:
        form.load_object(obj)
    else:
        form.load_initial({k: v for k, v in request.query.items() if isinstance(v, str)})
    status = 200
    if request.method == "POST":
        if not can_save:
            await ctx.require(admin, "add" if adding else "change")
        before = {k: list(v) if isinstance(v, list) else v for k, v in form.raw.items()}
        data = await request.form()
        form.bind(data)
        await _resolve_related(ctx, form)
        target = obj if obj is not None else admin.model()
        # The model's own rules (its schema, its validators), then the admin's.
        validate_with_schema(admin, form, obj)
        run_model_validators(admin, form, target)
        await admin.clean(request, db, form, obj, adding)
        if not form.has_errors:
            try:
                await admin.save_model(request, db, target, dict(form.cleaned), adding)
                await log_action(
                    db,
                    user_id=ctx.user_id,
                    user_repr=user_repr(ctx),
                    model_key=admin.key,
                    object_id=admin.pk_of(target),
                    object_repr=admin.label(target),
                    action=ADDITION if adding else CHANGE,
                    changes=await _changes(ctx, form, before),
                )
                response = await admin.after_save(request, db, target, adding)
                await db.commit()
            except Exception as exc:
                # A constraint violation, or a value the database refused (out of range, a NUL
                # byte): shown on the form. Anything else (an outage, a bug) goes on up.
                if not isinstance(exc, IntegrityError) and not _refused_value(ctx, exc):
                    raise
                await db.rollback()
                _db_errors(ctx, form, exc)
            else:
                if response is not None:
                    return response
                return await _after_save_redirect(ctx, admin, target, data, adding, perms)
        status = 422
    await _prepare_related(ctx, admin, form)
    title = f"Add {admin.name.lower()}" if adding else (f"Change {label}" if can_save else label)
    return render_page(
        ctx,
        "form.html",
        status_code=status,
        title=title,
        admin=admin,
        form=form,
        adding=adding,
        can_save=can_save,
        perms=perms,
        pk=pk,
        object_label=label,
        raw=form.raw,
        breadcrumbs=crumbs(admin, (label or f"Add {admin.name.lower()}", None)),
    )


async def _after_save_redirect(
    ctx: Ctx, admin: ModelAdmin, obj: Any, data: Any, adding: bool, perms: dict[str, bool]
) -> Response:
    label = admin.label(obj)
    verb = "added" if adding else "changed"
    pk = admin.pk_of(obj)
    if not (perms["view"] or perms["change"]):
        # An add-only user can't see the list or the object: back to the dashboard.
        await flash(ctx.request, f"The {admin.name.lower()} “{label}” was {verb}.", "success")
        target = admin.url("add") if data.get("_addanother") else ctx.site.url()
        return RedirectResponse(target, 303)
    if data.get("_continue"):
        await flash(
            ctx.request,
            f"The {admin.name.lower()} “{label}” was {verb}. You may edit it again below.",
            "success",
        )
        return RedirectResponse(admin.url("change", pk), 303)
    if data.get("_addanother"):
        await flash(
            ctx.request,
            f"The {admin.name.lower()} “{label}” was {verb}. You may add another below.",
            "success",
        )
        return RedirectResponse(admin.url("add"), 303)
    await flash(ctx.request, f"The {admin.name.lower()} “{label}” was {verb}.", "success")
    return RedirectResponse(admin.url("list"), 303)
