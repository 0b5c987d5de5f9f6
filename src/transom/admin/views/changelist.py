"""The list page: search, filters, sorting, pages and bulk actions."""

from __future__ import annotations

import datetime as dt
import enum
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from transom.admin.deletion import deletion_summary, is_blocked
from transom.admin.filters import ForeignKeyFilter, ListFilter, filter_for
from transom.admin.forms import format_moment
from transom.admin.history import (
    CHANGE,
    log_action,
)
from transom.admin.listing import Count, ListPage, count_rows, fetch_filtered, fetch_page
from transom.admin.options import ModelAdmin, call_action
from transom.admin.views.common import (
    PAGE_LIMIT,
    crumbs,
    delete_one,
    render_page,
    user_repr,
)
from transom.forms import flash
from transom.responses import RedirectResponse, Response

if TYPE_CHECKING:
    from transom.admin.site import Ctx


def format_cell(value: Any, zone: dt.tzinfo = dt.UTC) -> tuple[str, str]:
    """A list cell's text and CSS class."""
    if value is None:
        return "—", "empty"
    if isinstance(value, bool):
        return ("Yes" if value else "No"), ("yes" if value else "no")
    if isinstance(value, enum.Enum):
        return str(value.name).replace("_", " ").capitalize(), ""
    moment = format_moment(value, zone)
    if moment is not None:
        return moment, "num"
    if isinstance(value, int | float) or type(value).__name__ == "Decimal":
        return str(value), "num"
    text = str(value)
    return (text if len(text) <= 80 else text[:79] + "…"), ""


def _ordering(admin: ModelAdmin, raw: str | None) -> tuple[list[Any], list[tuple[str, bool]]]:
    """ORDER BY clauses for ``?o=``, and the (field, descending) pairs that were applied."""
    allowed = {admin.sort_key(e) for e in admin.display_columns()} - {None}
    applied: list[tuple[str, bool]] = []
    source = raw.split(",") if raw else list(admin.ordering or [f"-{admin.pk_attr}"])
    for item in source:
        item = item.strip()
        descending = item.startswith("-")
        name = item.lstrip("-")
        if raw and name not in allowed:
            continue
        if hasattr(admin.model, name):
            applied.append((name, descending))
    clauses = []
    for name, descending in applied:
        column = getattr(admin.model, name)
        clauses.append(column.desc() if descending else column.asc())
    if not any(name == admin.pk_attr for name, _ in applied):
        clauses.extend(c.desc() for c in admin.pk_columns)
    return clauses, applied


def _query_with(current: dict[str, str], **changes: Any) -> str:
    merged = dict(current)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = str(value)
    return "?" + urlencode(merged) if merged else "?"


async def _sidebar_filter(
    db: Any, flt: ListFilter, query: dict[str, str], value: str | None
) -> dict[str, Any]:
    """One filter of the sidebar: its choices, what is chosen (always shown) and its search."""
    reset = {flt.parameter: None, "p": None}
    searching = isinstance(flt, ForeignKeyFilter)
    search_key = flt.search_parameter if isinstance(flt, ForeignKeyFilter) else ""
    if search_key:
        reset[search_key] = None
    choices = [("All", _query_with(query, **reset), not value)]
    offered = await flt.choices(db)
    large = isinstance(flt, ForeignKeyFilter) and not [c for c in offered if c[0] != "null"]
    term = query.get(search_key, "").strip() if large else ""
    if large and term and isinstance(flt, ForeignKeyFilter):
        offered = [*(await flt.search(db, term)), *offered]
    for choice_value, label in offered:
        link = _query_with(query, **{**reset, flt.parameter: choice_value})
        choices.append((label, link, value == choice_value))
    chosen = next((label for label, _, selected in choices[1:] if selected), None)
    if value and chosen is None:
        # Chosen from a search (a large related table), or typed in the URL: named anyway.
        chosen = await flt.label_of(db, value) if isinstance(flt, ForeignKeyFilter) else value
    return {
        "title": flt.title,
        "parameter": flt.parameter,
        "choices": choices,
        "chosen": chosen if value else None,
        "clear_url": _query_with(query, **reset),
        "search_key": search_key if large and searching else "",
        "search_term": term,
        "search_hidden": [(k, v) for k, v in query.items() if k not in (search_key, "p")],
    }


async def changelist(ctx: Ctx) -> Response:
    """The list of a model's rows: search, filters, sorting, pages and bulk actions."""
    admin = ctx.model_admin()
    await ctx.require(admin, "view")
    if ctx.request.method == "POST":
        return await _bulk_action(ctx, admin)
    request, db = ctx.request, ctx.db
    perms = await admin.permissions(request, db, ctx.user)
    query = {k: v for k, v in request.query.items() if isinstance(v, str)}
    search = query.get("q", "").strip()
    stmt = admin.get_queryset(request)
    filters = []
    active = False
    for spec in admin.list_filter:
        flt = filter_for(admin, spec)
        value = query.get(flt.parameter)
        if value:
            try:
                stmt = flt.apply(stmt, value)
                active = True
            except (ValueError, TypeError, LookupError):
                value = None
        filters.append(await _sidebar_filter(db, flt, query, value))
    stmt = admin.apply_search(stmt, search)
    order, applied = _ordering(admin, query.get("o"))
    try:
        page = min(max(1, int(query.get("p", "1"))), PAGE_LIMIT)
    except ValueError:
        page = 1
    per_page = admin.list_per_page
    filtered = bool(search or active)
    found = await fetch_filtered(db, admin, stmt, order, page, per_page) if filtered else None
    if found is not None:
        rows, has_next, count = found
    else:
        rows, has_next = await fetch_page(db, admin, stmt.order_by(*order), page, per_page)
        if not has_next and (rows or page == 1):
            # The last page: the total is known without counting.
            count = Count((page - 1) * per_page + len(rows))
        else:
            count = await count_rows(db, admin, stmt, filtered=filtered)

    listing = ListPage(rows, page, admin.list_per_page, count, has_next)
    entries = admin.display_columns()
    links = set(admin.list_display_links or entries[:1])
    sorted_by = dict(applied)
    columns = []
    for entry in entries:
        key = admin.sort_key(entry)
        header: dict[str, Any] = {"title": admin.column_title(entry), "url": None, "sorted": None}
        if key is not None:
            descending = sorted_by.get(key)
            header["sorted"] = (
                None if descending is None else ("descending" if descending else "ascending")
            )
            # First click sorts ascending; clicking the ascending column sorts descending.
            flip = "-" if descending is False else ""
            header["url"] = _query_with(query, o=f"{flip}{key}", p=None)
        columns.append(header)
    table = []
    for obj in rows:
        pk = admin.pk_of(obj)
        cells = []
        for entry in entries:
            text, css = format_cell(admin.cell(obj, entry), ctx.site.zone)
            linked = isinstance(entry, str) and entry in links
            cells.append(
                {"text": text, "css": css, "url": admin.url("change", pk) if linked else None}
            )
        if not any(c["url"] for c in cells) and cells:
            cells[0]["url"] = admin.url("change", pk)
        table.append({"pk": pk, "cells": cells, "label": admin.label(obj)})
    actions = [
        (name, description)
        for name, (_, description, permission) in admin.get_actions().items()
        if perms.get(permission)
    ]
    pages = [
        (n, _query_with(query, p=n) if n is not None else None) for n in listing.page_numbers()
    ]
    return render_page(
        ctx,
        "list.html",
        title=admin.name_plural,
        admin=admin,
        perms=perms,
        columns=columns,
        table=table,
        listing=listing,
        pages=pages,
        prev_url=_query_with(query, p=page - 1) if page > 1 else None,
        next_url=_query_with(query, p=page + 1) if has_next else None,
        filters=filters,
        active_filters=sum(1 for f in filters if f["chosen"]),
        clear_filters_url=_query_with(
            query,
            p=None,
            **{k: None for f in filters for k in (f["parameter"], f["search_key"]) if k},
        ),
        clear_search_url=_query_with(query, q=None, p=None),
        search=search,
        searchable=bool(admin.search_columns()),
        actions=actions,
        query_string=urlencode(query),
        hidden_query=[(k, v) for k, v in query.items() if k not in ("q", "p")],
        breadcrumbs=[(admin.name_plural, None)],
    )


async def _selected_objects(ctx: Ctx, admin: ModelAdmin, raw: list[str]) -> list[Any]:
    keys = []
    for text in raw:
        try:
            keys.append(admin.parse_pk(text))
        except (ValueError, TypeError):
            continue
    if not keys or len(admin.pk_columns) != 1:
        objects = [await admin.get_object(ctx.request, ctx.db, k) for k in keys]
        return [o for o in objects if o is not None]
    stmt = admin.get_queryset(ctx.request).where(admin.pk_columns[0].in_(keys))
    return list((await ctx.db.execute(stmt)).scalars())


#: "Select all" across pages takes at most this many rows (a bulk action loads them all).
SELECT_ACROSS_LIMIT = 10_000


async def _matching_objects(ctx: Ctx, admin: ModelAdmin, back_query: str) -> list[Any] | None:
    """Every row the list shows for ``back_query`` (its search and filters), on all pages;
    ``None`` when there are more than :data:`SELECT_ACROSS_LIMIT`."""
    query = dict(parse_qsl(back_query))
    stmt = admin.get_queryset(ctx.request)
    for spec in admin.list_filter:
        flt = filter_for(admin, spec)
        value = query.get(flt.parameter)
        if value:
            try:
                stmt = flt.apply(stmt, value)
            except (ValueError, TypeError, LookupError):
                continue
    stmt = admin.apply_search(stmt, query.get("q", "").strip())
    rows = list((await ctx.db.execute(stmt.limit(SELECT_ACROSS_LIMIT + 1))).scalars())
    return None if len(rows) > SELECT_ACROSS_LIMIT else rows


async def _bulk_action(ctx: Ctx, admin: ModelAdmin) -> Response:
    request, db = ctx.request, ctx.db
    data = await request.form()
    name = str(data.get("action") or "")
    back_query = str(data.get("_query") or "")
    back = admin.url("list") + (f"?{back_query}" if back_query else "")
    actions = admin.get_actions()
    if name not in actions:
        await flash(request, "Choose an action.", "warning")
        return RedirectResponse(back, 303)
    func, description, permission = actions[name]
    await ctx.require(admin, permission)
    raw = [str(v) for v in data.getlist("_selected") if isinstance(v, str)]
    if data.get("_select_across") == "1":
        found = await _matching_objects(ctx, admin, back_query)
        if found is None:
            await flash(
                request,
                f"More than {SELECT_ACROSS_LIMIT:,} rows match: narrow the list first.",
                "warning",
            )
            return RedirectResponse(back, 303)
        objects = found
    else:
        objects = await _selected_objects(ctx, admin, raw)
    if not objects:
        await flash(request, "Select at least one item.", "warning")
        return RedirectResponse(back, 303)
    if func is not None:
        result = await call_action(func, admin, request, db, objects)
        if isinstance(result, Response):
            await db.commit()
            return result
        for obj in objects:
            await log_action(
                db,
                user_id=ctx.user_id,
                user_repr=user_repr(ctx),
                model_key=admin.key,
                object_id=admin.pk_of(obj),
                object_repr=admin.label(obj),
                action=CHANGE,
                message=f"Action: {description}.",
            )
        await db.commit()
        await flash(request, str(result) if result else f"{description}: done.", "success")
        return RedirectResponse(back, 303)
    consequences = await deletion_summary(db, admin, objects)
    blocked = is_blocked(consequences)
    if data.get("confirm") == "yes" and not blocked:
        for obj in objects:
            await delete_one(ctx, admin, obj)
        await db.commit()
        await flash(request, f"Deleted {len(objects)} {admin.name_plural.lower()}.", "success")
        return RedirectResponse(back, 303)
    return render_page(
        ctx,
        "delete.html",
        status_code=409 if blocked and data.get("confirm") == "yes" else 200,
        title=f"Delete {len(objects)} {admin.name_plural.lower()}?",
        admin=admin,
        objects=[admin.label(o) for o in objects],
        selected=[admin.pk_of(o) for o in objects],
        consequences=consequences,
        blocked=blocked,
        action_url=admin.url("list"),
        bulk=True,
        back_query=back_query,
        cancel_url=back,
        breadcrumbs=crumbs(admin, ("Delete selected", None)),
    )
