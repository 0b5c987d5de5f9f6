"""Login, logout and the dashboard."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from transom.admin.auth import cached_user
from transom.admin.history import (
    DELETION,
    recent_actions,
)
from transom.admin.views.common import render_page
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
        error=error,
        username_value=username,
        next_url=target,
    )


async def logout(ctx: Ctx) -> Response:
    """Log out (POST only, CSRF-checked) and go back to the login page."""
    assert ctx.site.auth is not None
    await ctx.site.auth.logout(ctx.request)
    return RedirectResponse(ctx.site.url("login"), 303)


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
