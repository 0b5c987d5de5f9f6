"""The one login path: rate limits, a hash check for unknown users, hashing off the event loop.

The site's login (:func:`transom.auth.authenticate`: the login page and ``/auth/token``) and
the admin's (:class:`transom.admin.SessionAuth`, and the admin's adapter for
:mod:`transom.auth`) all go through :func:`check_credentials`, so a protection added here
holds everywhere a password is typed.

How attempts are counted (:class:`LoginLimits`), each budget in the app's rate-limit store:

1. per client address, whatever the account (``ip``): one address spraying many accounts;
2. per account *and* client address (``account_ip``): one address guessing one account. It
   locks out that address only, so an attacker cannot lock the owner out from elsewhere
   (the "username + IP" lockout of django-axes);
3. per account over every address (``account``): a distributed guess at one account. It is
   set well above ``account_ip`` and only attempts that passed (1) and (2) count, so one
   address adds at most ``account_ip`` to it: locking an account this way takes many
   addresses, and it limits guessing to a rate the password rules make hopeless.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import math
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from transom._concurrency import run_sync
from transom.exceptions import HTTPException, ImproperlyConfigured
from transom.requests import Request
from transom.security.ratelimit import RateLimitBackend, parse_rate

__all__ = [
    "LoginLimits",
    "check_credentials",
    "check_password",
    "client_address",
    "digest",
    "throttle",
]


@dataclasses.dataclass(frozen=True, slots=True)
class LoginLimits:
    """Login attempt budgets (``"<count>/<period>"``, see the module docstring).

    Attributes:
        ip: Attempts per client address, any account.
        account_ip: Attempts on one account from one client address.
        account: Attempts on one account from all addresses together.
    """

    ip: str = "30/minute"
    account_ip: str = "10/15minute"
    account: str = "100/hour"

    def __post_init__(self) -> None:
        for rate in (self.ip, self.account_ip, self.account):
            parse_rate(rate)  # a typo fails at start-up, not at the first login


def digest(value: str) -> str:
    """A short digest of a login name or address: the rate-limit store never holds them.

    Names are compared case-insensitively after Unicode compatibility normalisation, so
    ``ALICE``, ``alice `` and look-alikes such as the Kelvin sign share one budget.
    """
    normal = unicodedata.normalize("NFKC", value.strip()).casefold()
    return hashlib.sha256(normal.encode()).hexdigest()[:32]


def client_address(request: Request) -> str:
    """The client's address (after the security battery's trusted-proxy rewriting)."""
    return request.client[0] if request.client else "unknown"


def _backend(request: Request) -> RateLimitBackend:
    from transom.security.extension import Security

    if request.app is None:
        raise ImproperlyConfigured("login attempts are counted by the app's Security battery")
    # The counts live on the app's battery (installed by Auth and Admin, which need it).
    return Security.of(request.app).rate_limit_backend


async def throttle(request: Request, buckets: Sequence[tuple[str, str]], what: str) -> None:
    """Count one hit in each ``(key, rate)`` bucket, in order; 429 once one is over.

    A refused hit stops the count: the buckets after it are not charged, so a client over
    its own budget cannot go on draining a shared one.

    Raises:
        HTTPException: 429 with ``Retry-After``.
    """
    backend = _backend(request)
    for key, rate in buckets:
        allowed, window = parse_rate(rate)
        count, reset = await backend.hit(key, window)
        if count > allowed:
            retry = max(1, math.ceil(reset))
            raise HTTPException(
                429, f"Too many {what}; retry in {retry} s", headers={"Retry-After": str(retry)}
            )


async def throttle_login(request: Request, username: str, limits: LoginLimits) -> None:
    """Count a login attempt against ``limits`` (429 past one of them)."""
    client = client_address(request)
    account = digest(username)
    await throttle(
        request,
        (
            (f"auth:login:ip:{client}", limits.ip),
            (f"auth:login:account-ip:{account}:{client}", limits.account_ip),
            (f"auth:login:account:{account}", limits.account),
        ),
        "login attempts",
    )


async def check_password(user: Any, password: str) -> bool:
    """``user.check_password(password)`` in the thread pool, so the event loop keeps serving.

    Hashing takes tens of milliseconds of CPU on purpose; on the loop it would stall every
    other request. An ``async def check_password`` is awaited as it is (its author chose
    where it runs).
    """
    method = user.check_password
    if inspect.iscoroutinefunction(method):
        return bool(await method(password))
    result = await run_sync(method, password)
    if inspect.isawaitable(result):
        result = await result
    return bool(result)


async def check_credentials(
    request: Request,
    username: str,
    password: str,
    *,
    limits: LoginLimits,
    find: Callable[[str], Awaitable[Any]],
    dummy: Callable[[str], Awaitable[object]],
) -> Any:
    """The active user with these credentials, or ``None``: the login path of site and admin.

    Args:
        request: The login request (its client address is counted).
        username: The submitted login name.
        password: The submitted password.
        limits: The attempt budgets.
        find: Loads the user named ``username`` (``None`` when there is none).
        dummy: Verifies ``password`` against a throw-away hash: an unknown name then costs
            the same hashing time as a wrong password and does not show in response times.

    Raises:
        HTTPException: 429 with ``Retry-After`` past a limit (before any lookup, so the
            answer is the same for existing and unknown accounts).
    """
    await throttle_login(request, username, limits)
    user = await find(username)
    if user is None:
        await dummy(password)
        return None
    if not await check_password(user, password):
        return None
    return user if getattr(user, "is_active", True) else None
