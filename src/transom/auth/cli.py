"""``transom createuser``, ``transom createsuperuser`` and ``transom changepassword``.

Registered through the ``transom.commands`` entry point group. Both use the app's user model,
hashers and validators (its ``AuthConfig``) and its database.
"""

from __future__ import annotations

import asyncio
import getpass
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import click
from sqlalchemy import select

from transom.auth.extension import Auth
from transom.auth.validators import validate_password

__all__ = ["PASSWORD_ENV", "changepassword", "createsuperuser", "createuser"]

PASSWORD_ENV = "TRANSOM_SUPERUSER_PASSWORD"
T = TypeVar("T")


def _auth(ctx: click.Context) -> Auth:
    from transom.cli import load_app

    app = load_app(ctx)
    try:
        return Auth.of(app)
    except Exception as exc:
        raise click.ClickException(str(exc)) from exc


def _run(auth: Auth, work: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    from transom.db import get_database

    async def go() -> T:
        database = get_database(auth.app)
        try:
            # The app's hashers, as in its requests (they are per app, not per process).
            with auth.activate():
                async with database.session() as db:
                    result = await work(db)
                    await db.commit()
                return result
        finally:
            await database.dispose()

    return asyncio.run(go())


def _ask_password(auth: Auth, user: Any) -> str:
    for _ in range(3):
        password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        problems = validate_password(password, user, auth.validators)
        if not problems:
            return password
        for problem in problems:
            click.echo(problem, err=True)
        if click.confirm("Bypass password validation and use it anyway?", default=False):
            return password
    raise click.ClickException("Aborted: no acceptable password after 3 attempts.")


def _user_options(role: str) -> Callable[[Callable[..., Any]], click.Command]:
    def decorate(func: Callable[..., Any]) -> click.Command:
        func = click.option("--username", help=f"Login name of the new {role}.")(func)
        func = click.option("--email", default="", help="Email address.")(func)
        func = click.option(
            "--no-input",
            "no_input",
            is_flag=True,
            help=f"Ask nothing (scripts): the password comes from ${PASSWORD_ENV}.",
        )(func)
        return click.command()(click.pass_context(func))

    return decorate


@_user_options("user")
@click.option("--staff", is_flag=True, help="May use the admin (with the permissions given).")
@click.option("--superuser", is_flag=True, help="Has every permission (implies --staff).")
def createuser(
    ctx: click.Context,
    username: str | None,
    email: str,
    no_input: bool,
    staff: bool,
    superuser: bool,
) -> None:
    """Create a user (an ordinary one unless --staff or --superuser)."""
    _create(ctx, username, email, no_input, staff=staff or superuser, superuser=superuser)


@_user_options("superuser")
def createsuperuser(ctx: click.Context, username: str | None, email: str, no_input: bool) -> None:
    """Create a user who may do everything (staff and superuser)."""
    _create(ctx, username, email, no_input, staff=True, superuser=True)


def _create(
    ctx: click.Context,
    username: str | None,
    email: str,
    no_input: bool,
    *,
    staff: bool,
    superuser: bool,
) -> None:
    auth = _auth(ctx)
    model = auth.user_model
    if no_input:
        password = os.environ.get(PASSWORD_ENV)
        if not username:
            raise click.UsageError("--no-input needs --username")
        if not password:
            raise click.UsageError(f"--no-input needs the password in ${PASSWORD_ENV}")
    else:
        username = username or click.prompt("Username", default=getpass.getuser())
        email = email or click.prompt("Email address", default="", show_default=False)
        password = None
    assert username is not None
    candidate = model(username=username, email=email)
    if password is None:
        password = _ask_password(auth, candidate)
    else:
        problems = validate_password(password, candidate, auth.validators)
        if problems:
            raise click.ClickException(" ".join(problems))

    async def create(db: Any) -> bool:
        column = getattr(model, model.USERNAME_FIELD)
        if (await db.execute(select(column).where(column == username))).first() is not None:
            return False
        await candidate.aset_password(password)
        candidate.is_active = True
        candidate.is_staff = staff
        candidate.is_superuser = superuser
        db.add(candidate)
        return True

    if not _run(auth, create):
        raise click.ClickException(f"A user named {username!r} already exists.")
    kind = "Superuser" if superuser else "Staff user" if staff else "User"
    click.echo(f"{kind} {username!r} created.")


@click.command()
@click.argument("username", required=False)
@click.pass_context
def changepassword(ctx: click.Context, username: str | None) -> None:
    """Set a user's password (default: the user named like your system account)."""
    auth = _auth(ctx)
    model = auth.user_model
    name = username or getpass.getuser()

    async def find(db: Any) -> Any:
        column = getattr(model, model.USERNAME_FIELD)
        return (await db.execute(select(model).where(column == name))).scalar()

    user = _run(auth, find)
    if user is None:
        raise click.ClickException(f"No user named {name!r}.")
    click.echo(f"Changing the password of {name!r}")
    password = _ask_password(auth, user)

    async def save(db: Any) -> None:
        row = await db.get(model, user.id)
        await row.aset_password(password)

    _run(auth, save)
    click.echo(f"Password changed for {name!r}; their other sessions have ended.")
