"""Login, logout and the dashboard."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from transom.admin.auth import cached_user
from transom.admin.history import (
    DELETION,
    recent_actions,
)
from transom.admin.views.common import render_page
from transom.forms import flash
from transom.responses import RedirectResponse, Response
from transom.security.redirects import safe_next
from transom.templating import render

if TYPE_CHECKING:
    from transom.admin.site import Ctx


#: The one refusal of the login form, whatever was wrong.
LOGIN_ERROR = (
    "Please enter the correct username and password for a staff account (both are case-sensitive)."
)


async def login(ctx: Ctx) -> Response:
    """The login form; only active staff users get in."""
    site, request, db = ctx.site, ctx.request, ctx.db
    assert site.auth is not None
    target = safe_next(
        request.query.get("next"),
        host=request.host,
        secure=request.is_secure,
        default=site.url(),
    )
    error = ""
    username = ""
    status = 200
    if request.method == "POST":
        data = await request.form()
        username = str(data.get("username") or "").strip()
        password = str(data.get("password") or "")
        # The site's login path (rate limits, a hash check for unknown names, hashing off
        # the loop). Unknown name, wrong password, inactive or non-staff account: one answer,
        # so the form never confirms that a password is right for an account it won't admit.
        user = await site.auth.authenticate(request, db, username, password)
        if (
            user is not None
            and getattr(user, "is_active", False)
            and getattr(user, "is_staff", False)
        ):
            await site.auth.login(request, user)
            # The login stamps the user (``last_login``) in this view's session, which, unlike
            # the site's per-request session, commits only when a view says so.
            await db.commit()
            return RedirectResponse(target, 303)
        error = LOGIN_ERROR
        status = 400
    else:
        user = await cached_user(site.auth, request, db)
        if (
            user is not None
            and getattr(user, "is_active", False)
            and getattr(user, "is_staff", False)
        ):
            return RedirectResponse(target, 302)
    return render(
        "admin/login.html",
        status_code=status,
        **site.context(request, "", title="Log in"),
        logged_out=request.query.get("logged_out") == "1" and not error,
        error=error,
        username_value=username,
        next_url=target,
    )


async def logout(ctx: Ctx) -> Response:
    """GET: a page asking to confirm; POST (CSRF-checked): log out, then the login page says so."""
    site, request = ctx.site, ctx.request
    assert site.auth is not None
    if request.method == "POST":
        await site.auth.logout(request)
        return RedirectResponse(site.url("login", logged_out=1), 303)
    user = await cached_user(site.auth, request, ctx.db)
    if user is None:
        return RedirectResponse(site.url("login"), 302)
    return render(
        "admin/logout.html",
        **site.context(request, site.username_of(user), title="Log out?"),
    )


async def own_password(ctx: Ctx) -> Response:
    """Change my own password: the current one first (checked like a login), the new twice."""
    site, request, db = ctx.site, ctx.request, ctx.db
    auth = site.auth
    assert auth is not None
    errors: list[str] = []
    status = 200
    if request.method == "POST":
        data = await request.form()
        current = str(data.get("current_password") or "")
        first = str(data.get("password1") or "")
        second = str(data.get("password2") or "")
        # Through the login path: rate-limited, hashed off the event loop.
        checked = await auth.authenticate(request, db, ctx.username, current)
        if checked is None or auth.user_id(checked) != ctx.user_id:
            errors.append("Your current password was entered incorrectly.")
        elif first != second:
            errors.append("The two passwords differ.")
        else:
            errors.extend(auth.validate_password(first, checked))
        if not errors:
            await auth.aset_password(checked, first)
            await auth.login(request, checked)  # a new session, valid with the new password
            await db.commit()
            await flash(request, "Your password was changed.", "success")
            return RedirectResponse(site.url(), 303)
        status = 422
    return render_page(
        ctx,
        "password.html",
        status_code=status,
        rules=auth.password_rules(),
        title="Change my password",
        errors=errors,
        ask_current=True,
        change_url=site.url(),
        breadcrumbs=[("Change my password", None)],
    )


async def index(ctx: Ctx) -> Response:
    """The dashboard: models grouped by app, and the user's recent actions."""
    groups: dict[str, list[dict[str, Any]]] = {}
    keys = []
    for admin in ctx.site.visible_models():
        perms = await admin.permissions(ctx.request, ctx.db, ctx.user)
        if not any(perms.values()):
            continue
        keys.append(admin.key)
        groups.setdefault(str(admin.app_label), []).append({"admin": admin, "perms": perms})
    entries = await recent_actions(ctx.db, user_id=ctx.user_id, model_keys=keys, limit=10)
    recent = [_entry_view(ctx, e) for e in entries]
    return render_page(ctx, "index.html", groups=sorted(groups.items()), recent=recent)


def _entry_view(ctx: Ctx, entry: Any) -> dict[str, Any]:
    app_label, _, model_name = entry.model_key.partition(".")
    admin = ctx.site.lookup(app_label, model_name)
    url = None
    if admin is not None and entry.action != DELETION:
        url = admin.url("change", entry.object_id)
    return {
        "entry": entry,
        "model": admin.name if admin is not None else entry.model_key,
        "url": url,
    }
