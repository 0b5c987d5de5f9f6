"""Social login: OAuth2 / OpenID Connect with provider presets (GitHub, Google, any issuer).

The authorization request is built with Authlib (state, nonce, PKCE S256); the code is
exchanged over httpx; an OIDC ``id_token`` is verified against the issuer's JWKS (signature
with an asymmetric algorithm, ``iss``, ``aud``, ``exp``, ``nonce``). Logins are linked to local
users through :class:`~transom.auth.models.SocialAccount`:

1. an account already linked to this provider subject logs in as its user;
2. a logged-in user who comes back from a provider gets it linked;
3. a provider-verified email matching a local user whose email is verified too links to that
   user (never to an unverified local account: someone may have registered it in advance);
4. otherwise a new user is created (``create_users=True``) with an unusable password.
"""

from __future__ import annotations

import dataclasses
import hmac
import re
import secrets
import time
from typing import TYPE_CHECKING, Any

import httpx
import jwt
from authlib.common.security import generate_token  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri  # type: ignore[import-untyped]
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]
from sqlalchemy import select

from transom.auth.models import SocialAccount
from transom.auth.redirects import safe_next
from transom.db import DbSession, DbSessionDep
from transom.exceptions import HTTPException
from transom.requests import Request
from transom.responses import RedirectResponse, Response
from transom.routing import Router
from transom.security.sessions import get_session_data

if TYPE_CHECKING:
    from transom.auth.extension import Auth

__all__ = ["OAuthProvider", "SocialError", "build_social_router", "github", "google", "oidc"]

_SESSION_KEY = "_auth_oauth"
_ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]


class SocialError(HTTPException):
    """400: the provider's answer can't be trusted (state, nonce, signature...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(400, f"Social login failed: {reason}")
        self.reason = reason


@dataclasses.dataclass
class OAuthProvider:
    """One identity provider.

    Attributes:
        name: URL-safe name (``/auth/oauth/<name>/login``).
        client_id: The client id registered at the provider.
        client_secret: Its secret.
        issuer: OIDC issuer URL; endpoints are discovered from it.
        authorize_url: Authorization endpoint (plain OAuth2 providers).
        token_url: Token endpoint (plain OAuth2 providers).
        userinfo_url: Where the profile is read (plain OAuth2 providers).
        scope: Requested scopes.
        kind: ``"oidc"`` or ``"github"`` (how the profile is read).
        title: Shown on the login page.
    """

    name: str
    client_id: str
    client_secret: str
    issuer: str | None = None
    authorize_url: str | None = None
    token_url: str | None = None
    userinfo_url: str | None = None
    scope: str = "openid email profile"
    kind: str = "oidc"
    title: str = ""
    _metadata: dict[str, Any] | None = dataclasses.field(default=None, repr=False)
    _jwks: dict[str, Any] | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9_-]+", self.name):
            raise ValueError("provider names are lowercase letters, digits, - and _")
        if self.kind == "oidc" and not self.issuer:
            raise ValueError("an OIDC provider needs its issuer URL")
        self.title = self.title or self.name.capitalize()

    async def metadata(self, http: httpx.AsyncClient) -> dict[str, Any]:
        """The issuer's discovery document (fetched once)."""
        if self._metadata is None:
            if self.kind != "oidc":
                self._metadata = {
                    "authorization_endpoint": self.authorize_url,
                    "token_endpoint": self.token_url,
                    "userinfo_endpoint": self.userinfo_url,
                }
            else:
                assert self.issuer is not None
                url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
                response = await http.get(url)
                response.raise_for_status()
                document = response.json()
                if document.get("issuer") != self.issuer:
                    raise SocialError("the discovery document names another issuer")
                self._metadata = document
        return self._metadata

    async def jwks(self, http: httpx.AsyncClient, *, refresh: bool = False) -> dict[str, Any]:
        """The issuer's signing keys (re-fetched once when a token names an unknown key)."""
        if self._jwks is None or refresh:
            metadata = await self.metadata(http)
            response = await http.get(str(metadata["jwks_uri"]))
            response.raise_for_status()
            self._jwks = response.json()
        return self._jwks


def github(client_id: str, client_secret: str, **options: Any) -> OAuthProvider:
    """GitHub (OAuth2; the verified primary email comes from the API)."""
    return OAuthProvider(
        name=options.pop("name", "github"),
        client_id=client_id,
        client_secret=client_secret,
        authorize_url="https://github.com/login/oauth/authorize",
        token_url="https://github.com/login/oauth/access_token",
        userinfo_url="https://api.github.com/user",
        scope="read:user user:email",
        kind="github",
        title="GitHub",
        **options,
    )


def google(client_id: str, client_secret: str, **options: Any) -> OAuthProvider:
    """Google (OpenID Connect)."""
    return OAuthProvider(
        name=options.pop("name", "google"),
        client_id=client_id,
        client_secret=client_secret,
        issuer="https://accounts.google.com",
        title="Google",
        **options,
    )


def oidc(
    name: str, issuer: str, client_id: str, client_secret: str, **options: Any
) -> OAuthProvider:
    """Any OpenID Connect issuer (Keycloak, Auth0, Okta, Azure AD, GitLab...)."""
    return OAuthProvider(
        name=name, client_id=client_id, client_secret=client_secret, issuer=issuer, **options
    )


@dataclasses.dataclass
class Identity:
    """Who the provider says this is."""

    subject: str
    email: str
    email_verified: bool
    username: str


def _callback_url(auth: Auth, request: Request, provider: OAuthProvider) -> str:
    return auth.absolute_url(request, auth.url("oauth_callback", provider=provider.name))


async def _verify_id_token(
    http: httpx.AsyncClient, provider: OAuthProvider, id_token: str, nonce: str
) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.PyJWTError as exc:
        raise SocialError(f"malformed id_token ({exc})") from None
    algorithm = header.get("alg")
    if algorithm not in _ID_TOKEN_ALGORITHMS:
        raise SocialError(f"id_token algorithm {algorithm!r} is not allowed")
    key = None
    for refresh in (False, True):  # the issuer may have rotated its keys
        keys = jwt.PyJWKSet.from_dict(await provider.jwks(http, refresh=refresh))
        key = next((k for k in keys.keys if k.key_id == header.get("kid")), None)
        if key is not None:
            break
    if key is None:
        raise SocialError("id_token signed with an unknown key")
    try:
        claims: dict[str, Any] = jwt.decode(
            id_token,
            key.key,
            algorithms=[algorithm],
            audience=provider.client_id,
            issuer=provider.issuer,
            options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            leeway=60,
        )
    except jwt.PyJWTError as exc:
        raise SocialError(f"invalid id_token ({exc})") from None
    if not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
        raise SocialError("id_token nonce mismatch (replayed or injected)")
    return claims


async def _identity(
    http: httpx.AsyncClient, provider: OAuthProvider, token: dict[str, Any], nonce: str
) -> Identity:
    access = str(token.get("access_token", ""))
    headers = {"Authorization": f"Bearer {access}", "Accept": "application/json"}
    if provider.kind == "github":
        assert provider.userinfo_url is not None
        profile = (await http.get(provider.userinfo_url, headers=headers)).json()
        emails = (await http.get(provider.userinfo_url + "/emails", headers=headers)).json()
        primary = next(
            (e for e in emails if isinstance(e, dict) and e.get("primary") and e.get("verified")),
            None,
        )
        return Identity(
            subject=str(profile["id"]),
            email=str(primary["email"]) if primary else "",
            email_verified=primary is not None,
            username=str(profile.get("login") or profile["id"]),
        )
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise SocialError("the provider returned no id_token")
    claims = await _verify_id_token(http, provider, id_token, nonce)
    email = str(claims.get("email", ""))
    return Identity(
        subject=str(claims["sub"]),
        email=email,
        email_verified=bool(claims.get("email_verified")) and bool(email),
        username=str(claims.get("preferred_username") or email.split("@")[0] or claims["sub"]),
    )


async def _unique_username(db: DbSession, model: type[Any], wanted: str) -> str:
    base = re.sub(r"[^\w.@+-]", "", wanted)[:140] or "user"
    column = getattr(model, model.USERNAME_FIELD)
    candidate = base
    while (await db.execute(select(column).where(column == candidate))).first() is not None:
        candidate = f"{base}-{secrets.token_hex(3)}"
    return candidate


async def link_identity(
    auth: Auth, request: Request, db: DbSession, provider: str, identity: Identity
) -> Any:
    """Find, link or create the local user for ``identity`` (rules in the module docstring)."""
    from transom.auth.web import _load, get_current_user

    model = auth.user_model
    found = await db.execute(
        select(SocialAccount).where(
            SocialAccount.provider == provider, SocialAccount.subject == identity.subject
        )
    )
    account = found.scalar()
    if account is not None:
        return await _load(db, model, account.user_id)
    user = await get_current_user(request, db)
    if user is None and identity.email_verified:
        column = getattr(model, model.EMAIL_FIELD)
        matches = (await db.execute(select(model).where(column == identity.email))).scalars().all()
        verified = [u for u in matches if u.email_verified]
        user = verified[0] if len(verified) == 1 else None
    if user is None:
        if not auth.social_create_users:
            raise SocialError("no local account for this login")
        user = model(
            username=await _unique_username(db, model, identity.username),
            email=identity.email,
            email_verified=identity.email_verified,
        )
        user.set_password(None)
        db.add(user)
        await db.flush()
    db.add(
        SocialAccount(
            provider=provider, subject=identity.subject, user_id=str(user.id), email=identity.email
        )
    )
    await db.flush()
    return user


def build_social_router(auth: Auth) -> Router:
    """``/oauth/{provider}/login`` and ``/oauth/{provider}/callback``."""
    router = Router()
    providers = {p.name: p for p in auth.providers}

    def provider_named(name: str) -> OAuthProvider:
        provider = providers.get(name)
        if provider is None:
            raise HTTPException(404, "Unknown login provider")
        return provider

    @router.get("/oauth/{provider}/login", name="oauth_login")
    async def oauth_login(request: Request, provider: str) -> Response:
        chosen = provider_named(provider)
        async with auth.http_client() as http:
            metadata = await chosen.metadata(http)
        state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
        session = await get_session_data(request)
        session[_SESSION_KEY] = {
            "provider": chosen.name,
            "state": state,
            "nonce": nonce,
            "verifier": verifier,
            "next": request.query.get("next", ""),
            "at": time.time(),
        }
        extra: dict[str, Any] = {
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        }
        if chosen.kind == "oidc":
            extra["nonce"] = nonce
        url = prepare_grant_uri(
            str(metadata["authorization_endpoint"]),
            chosen.client_id,
            "code",
            _callback_url(auth, request, chosen),
            chosen.scope,
            state,
            **extra,
        )
        return RedirectResponse(url, 303)

    @router.get("/oauth/{provider}/callback", name="oauth_callback")
    async def oauth_callback(request: Request, db: DbSessionDep, provider: str) -> Response:
        from transom.auth.web import login

        chosen = provider_named(provider)
        session = await get_session_data(request)
        pending = session.pop(_SESSION_KEY, None)
        state = request.query.get("state", "")
        if (
            not isinstance(pending, dict)
            or pending.get("provider") != chosen.name
            or not hmac.compare_digest(str(pending.get("state", "")), state)
            or time.time() - float(pending.get("at", 0)) > 600
        ):
            raise SocialError("state mismatch (expired, replayed or forged callback)")
        if "error" in request.query:
            raise SocialError(f"the provider refused: {request.query.get('error')}")
        code = request.query.get("code")
        if not code:
            raise SocialError("no authorization code")
        async with auth.http_client() as http:
            metadata = await chosen.metadata(http)
            response = await http.post(
                str(metadata["token_endpoint"]),
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": _callback_url(auth, request, chosen),
                    "client_id": chosen.client_id,
                    "code_verifier": pending["verifier"],
                },
                auth=(chosen.client_id, chosen.client_secret),
                headers={"Accept": "application/json"},
            )
            if response.status_code != 200:
                raise SocialError(f"token exchange failed ({response.status_code})")
            identity = await _identity(http, chosen, response.json(), str(pending["nonce"]))
        user = await link_identity(auth, request, db, chosen.name, identity)
        if user is None or not user.is_active:
            raise HTTPException(403, "This account is disabled")
        await login(request, user)
        target = safe_next(
            str(pending.get("next", "")),
            host=request.host,
            secure=request.is_secure,
            allowed_hosts=auth.allowed_redirect_hosts,
            default=auth.login_redirect,
        )
        return RedirectResponse(target, 303)

    return router
