"""The battery's pages (login, logout, signup, password change/reset, email verification) and
its JSON token endpoints, as one router named ``auth`` (``url_for("auth.login")``).

Templates live in ``templates/auth/``; a project overrides any of them by putting a file of the
same name in its own ``templates/auth/`` folder.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from transom.auth.email import EmailMessage
from transom.auth.hashers import is_password_usable
from transom.auth.jwt import JWTError
from transom.auth.redirects import safe_next
from transom.auth.validators import validate_password
from transom.auth.web import (
    CurrentUser,
    _load,
    authenticate,
    login,
    logout,
    update_session_auth,
)
from transom.db import DbSessionDep, get_database
from transom.exceptions import HTTPException
from transom.forms import Form, Widget, flash
from transom.params import Depends
from transom.requests import Request
from transom.responses import JSONResponse, RedirectResponse, Response
from transom.routing import Router
from transom.security.csrf import csrf_exempt
from transom.security.logins import client_address, digest, throttle
from transom.security.sessions import get_session_data
from transom.templating import render

if TYPE_CHECKING:
    from transom.auth.extension import Auth

__all__ = ["build_router", "same_address", "send_password_reset", "send_verification_email"]

Password = Annotated[str, Widget("password")]
_RESET_SESSION_KEY = "_auth_reset"


class LoginForm(Form):
    username: str = Field(min_length=1, max_length=254)
    password: Password = Field(min_length=1, max_length=4096)
    remember: bool = False
    next: Annotated[str, Widget("hidden")] = ""


class SignupForm(Form):
    username: str = Field(min_length=1, max_length=150)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)
    password1: Password = Field(min_length=1, max_length=4096)
    password2: Password = Field(min_length=1, max_length=4096)


class PasswordChangeForm(Form):
    old_password: Password = Field(min_length=1, max_length=4096)
    new_password1: Password = Field(min_length=1, max_length=4096)
    new_password2: Password = Field(min_length=1, max_length=4096)


class PasswordResetForm(Form):
    email: str = Field(min_length=3, max_length=254)


class SetPasswordForm(Form):
    new_password1: Password = Field(min_length=1, max_length=4096)
    new_password2: Password = Field(min_length=1, max_length=4096)


class Credentials(BaseModel):
    username: str = Field(max_length=254)
    password: str = Field(max_length=4096)


class RefreshIn(BaseModel):
    refresh_token: str = Field(max_length=4096)


def _next_url(auth: Auth, request: Request, candidate: str | None) -> str:
    return safe_next(
        candidate,
        host=request.host,
        secure=request.is_secure,
        allowed_hosts=auth.allowed_redirect_hosts,
        default=auth.login_redirect,
    )


def _check_new_password(
    auth: Auth, form: Any, first: str, second: str, user: Any, prefix: str = "new_"
) -> None:
    if first != second:
        form.add_error(f"{prefix}password2", "The two passwords differ.")
        return
    for problem in validate_password(first, user, auth.validators):
        form.add_error(f"{prefix}password1", problem)


def _send_later(auth: Auth, message: EmailMessage) -> None:
    """Send in the background: the response takes as long whether or not mail goes out."""
    auth.spawn(auth.email_backend.send(message), f"email to {', '.join(message.to)}")


async def _render_text(request: Request, template: str, **context: Any) -> str:
    from transom.templating.engine import Templates

    assert request.app is not None
    return await Templates.for_app(request.app).render_string(template, context, request)


async def send_verification_email(auth: Auth, request: Request, user: Any) -> None:
    """Email ``user`` a link that marks their address verified."""
    token = auth.tokens.make("verify", user)
    link = auth.absolute_url(request, auth.url("verify_email", token=token))
    body = await _render_text(request, "auth/email/verify_email.txt", user=user, link=link)
    _send_later(
        auth,
        EmailMessage([user.email], "Confirm your email address", body, from_email=auth.from_email),
    )


def same_address(stored: str, submitted: str) -> bool:
    """Whether two email addresses are the same after Unicode normalisation and case folding.

    Only ever used to *choose* accounts: mail then goes to the stored address, never to the
    submitted one (a look-alike such as ``\u212aim@example.com``, with a Kelvin sign, folds
    to ``kim@example.com`` but must not receive kim's link; Django's CVE-2019-19844).
    """

    def fold(value: str) -> str:
        return unicodedata.normalize("NFKC", value.strip()).casefold()

    return fold(stored) == fold(submitted)


async def send_password_reset(auth: Auth, request: Request, email: str) -> int:
    """Email a reset link to each active account with a usable password at ``email``.

    The reset page runs this in the background for every valid request, known address or
    not, so the response does the same work either way. Each link goes to the address the
    account has on file. Returns how many emails were sent.
    """
    model = auth.user_model
    column = getattr(model, model.EMAIL_FIELD)
    # SQL lower() folds ASCII only on some databases: narrow down there, compare here.
    wanted = unicodedata.normalize("NFKC", email.strip()).lower()
    sent = 0
    async with get_database(auth.app).session() as db:
        query = select(model).where(func.lower(column) == wanted)
        for user in (await db.execute(query)).scalars().all():
            stored = str(getattr(user, model.EMAIL_FIELD) or "")
            if not stored or not same_address(stored, email):
                continue
            if not user.is_active or not is_password_usable(user.password):
                continue
            token = auth.tokens.make("reset", user)
            link = auth.absolute_url(request, auth.url("password_reset_confirm", token=token))
            body = await _render_text(
                request, "auth/email/password_reset.txt", user=user, link=link
            )
            message = EmailMessage(
                [stored], "Reset your password", body, from_email=auth.from_email
            )
            await auth.email_backend.send(message)
            sent += 1
    return sent


def build_router(auth: Auth) -> Router:
    """The battery's routes for ``auth`` (included by ``Auth(app)`` under its prefix)."""
    outer = Router(name="auth")
    # The pages keep the login in the session: without sessions (a token-only API) they
    # answer 404 rather than fail; the token endpoints below work either way. The pages are
    # HTML for people, not part of the API document; the token endpoints are.
    router = Router(dependencies=[Depends(_pages_need_sessions)], include_in_schema=False)
    model = auth.user_model

    @router.route("/login", methods=["GET", "POST"], name="login")
    async def login_view(request: Request, db: DbSessionDep) -> Response:
        form = await LoginForm.from_request(
            request, initial={"next": request.query.get("next", "")}
        )
        if form.is_valid:
            data = form.data
            found = await authenticate(request, db, data.username, data.password)
            if found is not None:
                await login(request, found, remember=data.remember)
                return RedirectResponse(_next_url(auth, request, data.next), 303)
            form.add_error(None, "Please enter a correct username and password.")
        return render(
            "auth/login.html",
            form=await form.with_csrf(),
            signup=auth.signup,
            remember=auth.remember_days > 0,
            providers=auth.providers,
            next=form.values.get("next", ""),
            status_code=form.status_code,
        )

    @router.route("/logout", methods=["GET", "POST"], name="logout")
    async def logout_view(request: Request, db: DbSessionDep) -> Response:
        if request.method == "POST":
            await logout(request, db)
            return RedirectResponse(auth.logout_redirect, 303)
        return render("auth/logout.html")

    if auth.signup:

        @router.route("/signup", methods=["GET", "POST"], name="signup")
        async def signup_view(request: Request, db: DbSessionDep) -> Response:
            form = await SignupForm.from_request(request)
            if form.is_valid:
                data = form.data
                candidate = model(username=data.username, email=data.email)
                _check_new_password(auth, form, data.password1, data.password2, candidate, "")
                column = getattr(model, model.USERNAME_FIELD)
                taken = await db.execute(select(column).where(column == data.username))
                if taken.first() is not None:
                    form.add_error("username", "This username is taken.")
                if not form.errors:
                    await candidate.aset_password(data.password1)
                    db.add(candidate)
                    try:
                        await db.flush()
                    except IntegrityError:
                        await db.rollback()
                        form.add_error("username", "This username is taken.")
                    else:
                        await login(request, candidate)
                        await send_verification_email(auth, request, candidate)
                        await flash(request, "Welcome! Check your inbox to confirm your email.")
                        return RedirectResponse(auth.login_redirect, 303)
            return render(
                "auth/signup.html", form=await form.with_csrf(), status_code=form.status_code
            )

    @router.route("/password/change", methods=["GET", "POST"], name="password_change")
    async def password_change(request: Request, db: DbSessionDep, user: CurrentUser) -> Response:
        form = await PasswordChangeForm.from_request(request)
        if form.is_valid:
            data = form.data
            if not await user.acheck_password(data.old_password):
                form.add_error("old_password", "Your old password was entered incorrectly.")
            else:
                _check_new_password(auth, form, data.new_password1, data.new_password2, user)
                if not form.errors:
                    await user.aset_password(data.new_password1)
                    await update_session_auth(request, user)
                    await flash(request, "Your password was changed.")
                    return RedirectResponse(auth.login_redirect, 303)
        return render(
            "auth/password_change.html", form=await form.with_csrf(), status_code=form.status_code
        )

    @router.route("/password/reset", methods=["GET", "POST"], name="password_reset")
    async def password_reset(request: Request) -> Response:
        form = await PasswordResetForm.from_request(request)
        if form.is_valid:
            email = form.data.email.strip()
            client = client_address(request)
            # Per address too: one client cannot flood someone's inbox, nor many clients.
            await throttle(
                request,
                (
                    (f"auth:reset:ip:{client}", auth.reset_rate_ip),
                    (f"auth:reset:email:{digest(email)}", auth.reset_rate_email),
                ),
                "password reset requests",
            )
            auth.absolute_url(request, "")  # a misconfigured site fails here, not in the job
            # Everything that depends on the account (lookup, token, mail) runs after the
            # response, for known and unknown addresses alike: no enumeration by timing.
            auth.spawn(send_password_reset(auth, request, email), "password reset email")
            # The same page whether or not an account matched: no enumeration.
            return render("auth/password_reset_done.html")
        return render(
            "auth/password_reset.html", form=await form.with_csrf(), status_code=form.status_code
        )

    @router.get("/password/reset/confirm/{token}", name="password_reset_confirm")
    async def password_reset_confirm(request: Request, token: str) -> Response:
        # Move the token out of the URL (it would leak through Referer and history).
        session = await get_session_data(request)
        session[_RESET_SESSION_KEY] = token
        return RedirectResponse(auth.url("password_reset_set"), 303)

    @router.route("/password/reset/set", methods=["GET", "POST"], name="password_reset_set")
    async def password_reset_set(request: Request, db: DbSessionDep) -> Response:
        session = await get_session_data(request)
        token = str(session.get(_RESET_SESSION_KEY, ""))
        user_id = auth.tokens.user_id("reset", token, auth.reset_max_age) if token else None
        user = await _load(db, model, user_id) if user_id else None
        if user is None or not auth.tokens.check("reset", token, user, auth.reset_max_age):
            session.pop(_RESET_SESSION_KEY, None)
            return render("auth/password_reset_invalid.html", status_code=400)
        form = await SetPasswordForm.from_request(request)
        if form.is_valid:
            data = form.data
            _check_new_password(auth, form, data.new_password1, data.new_password2, user)
            if not form.errors:
                await user.aset_password(data.new_password1)
                user.email_verified = True  # they read mail sent to it
                del session[_RESET_SESSION_KEY]
                await flash(request, "Your password was set. You may log in now.")
                return RedirectResponse(auth.url("login"), 303)
        return render(
            "auth/password_reset_set.html",
            form=await form.with_csrf(),
            status_code=form.status_code,
        )

    @router.post("/email/verify", name="verify_email_send")
    async def verify_email_send(request: Request, user: CurrentUser) -> Response:
        if not user.email_verified and user.email:
            await send_verification_email(auth, request, user)
        await flash(request, "We sent you a confirmation link.")
        return RedirectResponse(auth.login_redirect, 303)

    @router.get("/email/verify/{token}", name="verify_email")
    async def verify_email(request: Request, db: DbSessionDep, token: str) -> Response:
        user_id = auth.tokens.user_id("verify", token, auth.verify_max_age)
        user = await _load(db, model, user_id) if user_id else None
        if user is None or not auth.tokens.check("verify", token, user, auth.verify_max_age):
            return render("auth/verify_email.html", ok=False, status_code=400)
        user.email_verified = True
        return render("auth/verify_email.html", ok=True)

    if auth.jwt_config is not None:
        api = Router(tags=["auth"])
        _token_routes(api, auth)
        outer.include_router(api)
    if auth.providers:
        from transom.auth.oidc import build_social_router

        router.include_router(build_social_router(auth))
    outer.include_router(router)
    return outer


def _pages_need_sessions(request: Request) -> None:
    from transom.security import Security

    security = request.app.batteries.find(Security) if request.app is not None else None
    if security is None or security.sessions is None:
        raise HTTPException(404)


def _token_routes(router: Router, auth: Auth) -> None:
    @router.post("/token", name="token")
    @csrf_exempt
    async def token(request: Request, db: DbSessionDep, body: Credentials) -> dict[str, Any]:
        user = await authenticate(request, db, body.username, body.password)
        if user is None:
            raise HTTPException(401, "Invalid credentials")
        pair = await auth.jwt.issue(db, str(user.id))
        return pair.__dict__

    @router.post("/token/refresh", name="token_refresh")
    @csrf_exempt
    async def refresh(db: DbSessionDep, body: RefreshIn) -> dict[str, Any]:
        try:
            pair = await auth.jwt.refresh(db, body.refresh_token)
        except JWTError as exc:
            await db.commit()  # keep a family revocation caused by reuse
            raise HTTPException(401, f"Invalid refresh token: {exc}") from None
        return pair.__dict__

    @router.post("/token/revoke", name="token_revoke")
    @csrf_exempt
    async def revoke(db: DbSessionDep, body: RefreshIn) -> JSONResponse:
        try:
            await auth.jwt.revoke(db, body.refresh_token)
        except JWTError as exc:
            raise HTTPException(401, f"Invalid refresh token: {exc}") from None
        return JSONResponse({"revoked": True})
