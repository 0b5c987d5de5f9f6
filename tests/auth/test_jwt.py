"""JWT access/refresh tokens and API tokens: tampering, expiry, reuse, algorithm confusion."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from transom.auth import JWTConfig, create_api_token, get_auth
from transom.auth.jwt import JWTError, JWTManager
from transom.db import get_database

from .conftest import PASSWORD, AppFactory, add_user

pytestmark = pytest.mark.anyio


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _rsa_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


async def _tokens(client: Any, password: str = PASSWORD) -> dict[str, Any]:
    response = await client.post("/auth/token", json={"username": "alice", "password": password})
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def test_token_login_and_bearer_requests(make_app: AppFactory) -> None:
    app = make_app()
    async with app.async_test_client() as client:
        await add_user(app)
        bad = await client.post("/auth/token", json={"username": "alice", "password": "x"})
        assert bad.status_code == 401
        tokens = await _tokens(client)
        assert tokens["token_type"] == "Bearer"
        assert tokens["expires_in"] == 900
        me = await client.get("/me", headers={"authorization": f"Bearer {tokens['access_token']}"})
        assert me.json()["username"] == "alice"
        # A refresh token is not an access token.
        wrong = await client.get(
            "/me", headers={"authorization": f"Bearer {tokens['refresh_token']}"}
        )
        assert wrong.status_code == 401


async def test_bearer_requests_skip_csrf(make_app: AppFactory) -> None:
    app = make_app()

    @app.post("/api/things")
    async def create() -> dict[str, bool]:
        return {"ok": True}

    async with app.async_test_client() as client:
        await add_user(app)
        tokens = await _tokens(client)
        await client.get("/csrf")  # a browser with a session cookie
        assert (await client.post("/api/things")).status_code == 403  # cookie-style: CSRF
        ok = await client.post(
            "/api/things", headers={"authorization": f"Bearer {tokens['access_token']}"}
        )
        assert ok.status_code == 200


async def test_refresh_rotation_and_reuse_detection(make_app: AppFactory) -> None:
    app = make_app()
    async with app.async_test_client() as client:
        await add_user(app)
        first = await _tokens(client)
        second = (
            await client.post("/auth/token/refresh", json={"refresh_token": first["refresh_token"]})
        ).json()
        assert second["refresh_token"] != first["refresh_token"]
        # Reusing the first refresh token: refused, and the whole family is revoked.
        reuse = await client.post(
            "/auth/token/refresh", json={"refresh_token": first["refresh_token"]}
        )
        assert reuse.status_code == 401
        assert "reused" in reuse.text
        after = await client.post(
            "/auth/token/refresh", json={"refresh_token": second["refresh_token"]}
        )
        assert after.status_code == 401


async def test_revoke_refresh_token(make_app: AppFactory) -> None:
    app = make_app()
    async with app.async_test_client() as client:
        await add_user(app)
        tokens = await _tokens(client)
        assert (
            await client.post("/auth/token/revoke", json={"refresh_token": tokens["refresh_token"]})
        ).status_code == 200
        again = await client.post(
            "/auth/token/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert again.status_code == 401


async def test_revoked_access_token(make_app: AppFactory) -> None:
    app = make_app()
    async with app.async_test_client() as client:
        await add_user(app)
        tokens = await _tokens(client)
        manager = get_auth(app).jwt
        claims = manager.decode(tokens["access_token"])
        async with get_database(app).session() as db:
            await manager.revoke_access(db, claims)
            await db.commit()
        response = await client.get(
            "/me", headers={"authorization": f"Bearer {tokens['access_token']}"}
        )
        assert response.status_code == 401


async def test_revocation_check_can_be_turned_off(make_app: AppFactory) -> None:
    # check_revoked=False skips the per-request lookup: a revoked access token still works
    # until it expires (the documented trade-off), which proves the query is not run.
    app = make_app(jwt=JWTConfig(check_revoked=False))
    async with app.async_test_client() as client:
        await add_user(app)
        tokens = await _tokens(client)
        manager = get_auth(app).jwt
        async with get_database(app).session() as db:
            await manager.revoke_access(db, manager.decode(tokens["access_token"]))
            await db.commit()
        response = await client.get(
            "/me", headers={"authorization": f"Bearer {tokens['access_token']}"}
        )
        assert response.status_code == 200
        assert response.json()["username"] == "alice"


async def test_openapi_declares_the_auth_schemes(make_app: AppFactory) -> None:
    from openapi_spec_validator import validate

    app = make_app()
    async with app.async_test_client() as client:
        document = (await client.get("/openapi.json")).json()
    validate(document)
    schemes = document["components"]["securitySchemes"]
    assert schemes["BearerAuth"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert schemes["TokenAuth"]["in"] == "header"
    assert schemes["TokenAuth"]["name"] == "Authorization"
    assert schemes["sessionCookie"] == {
        "type": "apiKey",
        "in": "cookie",
        "name": "session",
        "description": schemes["sessionCookie"]["description"],
    }
    # Anonymous calls stay documented as allowed: {} is one of the alternatives.
    assert document["security"][0] == {}
    assert {"BearerAuth": []} in document["security"]
    assert {"sessionCookie": []} in document["security"]


async def test_openapi_leaves_out_jwt_when_it_is_off(make_app: AppFactory) -> None:
    app = make_app(jwt=None)
    async with app.async_test_client() as client:
        document = (await client.get("/openapi.json")).json()
    assert "BearerAuth" not in document["components"]["securitySchemes"]
    assert "TokenAuth" in document["components"]["securitySchemes"]


def test_alg_none_and_tampering_are_refused() -> None:
    manager = JWTManager(JWTConfig(), "app-secret")
    token = manager.access_token("1")
    header, _payload, signature = token.split(".")
    claims = manager.decode(token)
    forged = _b64({**claims, "sub": "2"})
    with pytest.raises(JWTError):
        manager.decode(f"{header}.{forged}.{signature}")
    for alg in ("none", "None", "NONE"):
        unsigned = f"{_b64({'alg': alg, 'typ': 'JWT'})}.{forged}."
        with pytest.raises(JWTError):
            manager.decode(unsigned)
    with pytest.raises(ValueError, match="none"):
        JWTConfig(algorithm="none")


def test_hs_rs_confusion_is_refused() -> None:
    private, public = _rsa_pair()
    manager = JWTManager(JWTConfig(algorithm="RS256", private_key=private, public_key=public), "s")
    assert manager.decode(manager.access_token("1"))["sub"] == "1"
    now = int(time.time())
    claims = {"sub": "2", "iat": now, "exp": now + 60, "jti": "x", "typ": "access"}
    # Sign with HS256 using the *public* key as the HMAC secret (the classic confusion).
    import hashlib
    import hmac

    header = _b64({"alg": "HS256", "typ": "JWT"})
    body = _b64(claims)
    sig = hmac.new(public.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    forged = f"{header}.{body}.{base64.urlsafe_b64encode(sig).rstrip(b'=').decode()}"
    with pytest.raises(JWTError):
        manager.decode(forged)
    # And an HS256 app never accepts RS256 tokens, even validly signed ones.
    hs = JWTManager(JWTConfig(), "s")
    rs_token = pyjwt.encode(claims, private, algorithm="RS256")
    with pytest.raises(JWTError):
        hs.decode(rs_token)


def test_expiry_issuer_audience() -> None:
    manager = JWTManager(JWTConfig(issuer="https://me", audience="api", access_ttl=1), "s")
    token = manager.access_token("1")
    assert manager.decode(token)["iss"] == "https://me"
    other = JWTManager(JWTConfig(issuer="https://other", audience="api"), "s")
    with pytest.raises(JWTError):
        other.decode(token)
    wrong_aud = JWTManager(JWTConfig(issuer="https://me", audience="web"), "s")
    with pytest.raises(JWTError):
        wrong_aud.decode(token)
    time.sleep(2.1)
    with pytest.raises(JWTError, match="expired"):
        manager.decode(token)


def test_missing_claims_are_refused() -> None:
    manager = JWTManager(JWTConfig(), "s")
    key = manager._verify_key
    token = pyjwt.encode({"sub": "1", "exp": int(time.time()) + 60}, key, algorithm="HS256")
    with pytest.raises(JWTError):
        manager.decode(token)


async def test_api_tokens(make_app: AppFactory) -> None:
    app = make_app()
    async with app.async_test_client() as client:
        user = await add_user(app)
        async with get_database(app).session() as db:
            token, row = await create_api_token(db, user, "CI")
            expired, _ = await create_api_token(
                db, user, "old", expires_in=dt.timedelta(seconds=-1)
            )
            await db.commit()
        assert token.startswith("tsm_")
        assert token not in (row.digest, row.prefix)
        ok = await client.get("/me", headers={"authorization": f"Token {token}"})
        assert ok.json()["username"] == "alice"
        tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
        for bad in (tampered, expired, "tsm_nope", "garbage"):
            response = await client.get("/me", headers={"authorization": f"Token {bad}"})
            assert response.status_code == 401
        async with get_database(app).session() as db:
            stored = await db.get(type(row), row.id)
            assert stored is not None
            assert stored.last_used_at is not None


async def test_custom_schemes(make_app: AppFactory) -> None:
    app = make_app(token_schemes={"ApiKey": "api"})
    async with app.async_test_client() as client:
        user = await add_user(app)
        async with get_database(app).session() as db:
            token, _ = await create_api_token(db, user)
            await db.commit()
        assert (
            await client.get("/me", headers={"authorization": f"ApiKey {token}"})
        ).status_code == 200
        # Token is no longer ours: anonymous (and never the session).
        assert (await client.get("/maybe", headers={"authorization": f"Token {token}"})).json() == {
            "username": None
        }


async def test_purge_expired(make_app: AppFactory) -> None:
    from sqlalchemy import func, select

    from transom.auth.jwt import purge_expired
    from transom.auth.models import RefreshToken, RevokedToken

    app = make_app()
    async with app.async_test_client(), get_database(app).session() as db:
        now = time.time()
        db.add_all(
            [
                RefreshToken(jti="old", family="f", user_id="1", expires_at=now - 1),
                RefreshToken(jti="new", family="f", user_id="1", expires_at=now + 60),
                RevokedToken(id="s:old", expires_at=now - 1),
                RevokedToken(id="s:new", expires_at=now + 60),
            ]
        )
        await db.flush()
        await purge_expired(db)
        await db.commit()
        for model in (RefreshToken, RevokedToken):
            count = (await db.execute(select(func.count()).select_from(model))).scalar_one()
            assert count == 1


async def test_client_values_the_database_cannot_hold_are_never_a_500(
    make_app: AppFactory,
) -> None:
    """A NUL byte or an out-of-range id in a login or a token: 401/422, never a 500."""
    app = make_app()
    manager = get_auth(app).jwt
    async with app.async_test_client() as client:
        await add_user(app)
        for username in ("al\x00ice", "alice@example.com\x00"):
            r = await client.post("/auth/token", json={"username": username, "password": "x"})
            assert r.status_code in (401, 422), r.text
        # A validly signed token whose subject no user id can be (beyond 64 bits, or text).
        for subject in ("99999999999999999999", str(2**31), "1\x00"):
            token = manager.access_token(subject)
            r = await client.get("/me", headers={"authorization": f"Bearer {token}"})
            assert r.status_code == 401, r.text
        r = await client.post("/auth/token/refresh", json={"refresh_token": "x\x00y"})
        assert r.status_code in (401, 422), r.text


async def test_token_endpoints_are_in_the_openapi_document(make_app: AppFactory) -> None:
    app = make_app()
    async with app.async_test_client() as client:
        paths = (await client.get("/openapi.json")).json()["paths"]
    assert {"/auth/token", "/auth/token/refresh", "/auth/token/revoke"} <= set(paths)
    assert paths["/auth/token"]["post"]["tags"] == ["auth"]
    assert "application/json" in paths["/auth/token"]["post"]["requestBody"]["content"]
    assert "/auth/login" not in paths  # the HTML pages are for people, not the API document
