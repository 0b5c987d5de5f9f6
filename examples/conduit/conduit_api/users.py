"""Users and authentication, profiles and follows."""

from __future__ import annotations

from sqlalchemy import delete, insert, select

from conduit_api.deps import (
    CurrentUser,
    OptionalUser,
    claims_of,
    errors,
    followed_among,
    issue_token,
    not_found,
    presented_token,
    unauthorized,
    unprocessable,
)
from conduit_api.models import User, follows
from conduit_api.schemas import (
    LoginUserRequest,
    NewUserRequest,
    Profile,
    ProfileResponse,
    UpdateUserRequest,
    UserOut,
    UserResponse,
)
from transom import Request, Router
from transom.auth import authenticate, get_auth, validate_password
from transom.db import DbSession, DbSessionDep

router = Router("/api")


def user_response(user: User, token: str) -> UserResponse:
    return UserResponse(
        user=UserOut(
            email=user.email, token=token, username=user.username, bio=user.bio, image=user.image
        )
    )


def profile_of(user: User, following: bool) -> Profile:
    return Profile(username=user.username, bio=user.bio, image=user.image, following=following)


async def _taken(
    db: DbSession, user: User | None, username: str | None, email: str | None
) -> list[str]:
    """Messages for a username or email another account already has."""
    problems: list[str] = []
    others = select(User.id).where(User.id != user.id) if user is not None else select(User.id)
    if username is not None and await db.scalar(others.where(User.username == username)):
        problems.append("username has already been taken")
    if email is not None and await db.scalar(others.where(User.email == email)):
        problems.append("email has already been taken")
    return problems


def _password_problems(request: Request, password: str, user: User) -> list[str]:
    # The auth battery's validators (length, common passwords, similarity to the username/email).
    return validate_password(password, user, get_auth(request.app).validators)


@router.post(
    "/users",
    status_code=201,
    tags=["User and Authentication"],
    operation_id="CreateUser",
)
async def register(request: Request, data: NewUserRequest, db: DbSessionDep) -> UserResponse:
    """Register a new user."""
    new = data.user
    email = new.email.strip().lower()
    user = User(username=new.username, email=email)
    problems = await _taken(db, None, new.username, email)
    problems += _password_problems(request, new.password, user)
    if problems:
        raise unprocessable(*problems)
    await user.aset_password(new.password)  # argon2id, in the thread pool
    await db.save(user)
    return user_response(user, issue_token(request, user))


@router.post(
    "/users/login",
    tags=["User and Authentication"],
    operation_id="Login",
    responses=errors(401),
)
async def login(request: Request, data: LoginUserRequest, db: DbSessionDep) -> UserResponse:
    """Existing user login: the battery's rate-limited credential check, by email."""
    credentials = data.user
    user = await authenticate(request, db, credentials.email.strip().lower(), credentials.password)
    if user is None:
        raise unauthorized("email or password is invalid")
    return user_response(user, issue_token(request, user))


@router.get(
    "/user",
    tags=["User and Authentication"],
    operation_id="GetCurrentUser",
    responses=errors(401),
)
async def current_user(request: Request, user: CurrentUser) -> UserResponse:
    """Get the current user (with the token it was asked with)."""
    return user_response(user, presented_token(request))


@router.put(
    "/user",
    tags=["User and Authentication"],
    operation_id="UpdateCurrentUser",
    responses=errors(401),
)
async def update_user(
    request: Request, data: UpdateUserRequest, user: CurrentUser, db: DbSessionDep
) -> UserResponse:
    """Update the current user; a new password revokes the token used and returns a new one."""
    change = data.user.model_dump(exclude_unset=True)
    if not change:
        raise unprocessable("user: at least one field is required")
    email = change["email"].strip().lower() if change.get("email") is not None else None
    username = change.get("username")
    problems = await _taken(db, user, username, email)
    password = change.get("password")
    if password is not None:
        problems += _password_problems(request, password, user)
    if problems:
        raise unprocessable(*problems)
    if email is not None:
        user.email = email
    if username is not None:
        user.username = username
    # The spec's bio and image are strings; a client clearing them may send null.
    if "bio" in change:
        user.bio = change["bio"] or ""
    if "image" in change:
        user.image = change["image"] or ""
    token = presented_token(request)
    if password is not None:
        await user.aset_password(password)
        await get_auth(request.app).jwt.revoke_access(db, claims_of(request))
        token = issue_token(request, user)
    await db.flush()
    return user_response(user, token)


# --- profiles ---


async def _profile_user(db: DbSession, username: str) -> User:
    user = await db.scalar(select(User).where(User.username == username))
    if user is None:
        raise not_found("profile")
    return user


@router.get(
    "/profiles/{username}",
    tags=["Profile"],
    operation_id="GetProfileByUsername",
    responses=errors(401, 404),
)
async def get_profile(username: str, db: DbSessionDep, viewer: OptionalUser) -> ProfileResponse:
    """Get a profile (``following`` is false for anonymous viewers)."""
    user = await _profile_user(db, username)
    following = user.id in await followed_among(db, viewer, {user.id})
    return ProfileResponse(profile=profile_of(user, following))


@router.post(
    "/profiles/{username}/follow",
    tags=["Profile"],
    operation_id="FollowUserByUsername",
    responses=errors(401, 404),
)
async def follow(username: str, db: DbSessionDep, viewer: CurrentUser) -> ProfileResponse:
    """Follow a user (following again changes nothing)."""
    user = await _profile_user(db, username)
    if user.id == viewer.id:
        raise unprocessable("you cannot follow yourself")
    if not await followed_among(db, viewer, {user.id}):
        await db.execute(insert(follows).values(follower_id=viewer.id, followed_id=user.id))
    return ProfileResponse(profile=profile_of(user, True))


@router.delete(
    "/profiles/{username}/follow",
    tags=["Profile"],
    operation_id="UnfollowUserByUsername",
    responses=errors(401, 404),
)
async def unfollow(username: str, db: DbSessionDep, viewer: CurrentUser) -> ProfileResponse:
    """Unfollow a user."""
    user = await _profile_user(db, username)
    await db.execute(
        delete(follows).where(follows.c.follower_id == viewer.id, follows.c.followed_id == user.id)
    )
    return ProfileResponse(profile=profile_of(user, False))
