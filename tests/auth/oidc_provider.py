"""A small OpenID Connect provider for the tests: a Transom app served by uvicorn on 127.0.0.1.

It implements discovery, the authorization endpoint (approving at once as ``next_identity``),
the token endpoint (client secret, PKCE S256, one-time codes) and JWKS, and can be told to
misbehave (wrong nonce, audience, key or algorithm) to test what the client refuses.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import socket
import threading
import time
from typing import Annotated, Any
from urllib.parse import urlencode

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa

from transom import App, FormParam, Header, HTTPException, RedirectResponse, Settings

CLIENT_ID = "transom-test-client"
CLIENT_SECRET = "transom-test-secret"


class LocalProvider:
    """The provider and its knobs."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.codes: dict[str, dict[str, Any]] = {}
        self.next_identity: dict[str, Any] = {}
        self.misbehave: str | None = None
        self.access_tokens: set[str] = set()
        self.port = _free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.app = self._build()
        self._server: uvicorn.Server | None = None

    def _jwk(self) -> dict[str, Any]:
        data: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(
            self.key.public_key(), as_dict=True
        )
        return {**data, "kid": "k1", "alg": "RS256", "use": "sig"}

    def _id_token(self, client_id: str, nonce: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": self.next_identity["sub"],
            "aud": "someone-else" if self.misbehave == "audience" else client_id,
            "iat": now,
            "exp": now + 300,
            "nonce": "not-the-nonce" if self.misbehave == "nonce" else nonce,
            **{k: v for k, v in self.next_identity.items() if k != "sub"},
        }
        if self.misbehave == "none":
            header = base64.urlsafe_b64encode(b'{"alg":"none","kid":"k1"}').rstrip(b"=").decode()
            body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
            return f"{header}.{body}."
        key = self.other_key if self.misbehave == "key" else self.key
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})

    def _build(self) -> App:
        app = App(Settings(secret_key="provider-secret", allowed_hosts=["127.0.0.1"]))
        provider = self

        @app.get("/.well-known/openid-configuration")
        async def discovery() -> dict[str, Any]:
            return {
                "issuer": provider.issuer,
                "authorization_endpoint": f"{provider.issuer}/authorize",
                "token_endpoint": f"{provider.issuer}/token",
                "jwks_uri": f"{provider.issuer}/jwks",
                "response_types_supported": ["code"],
                "id_token_signing_alg_values_supported": ["RS256"],
            }

        @app.get("/jwks")
        async def jwks() -> dict[str, Any]:
            return {"keys": [provider._jwk()]}

        @app.get("/authorize")
        async def authorize(
            client_id: str,
            redirect_uri: str,
            state: str,
            code_challenge: str,
            code_challenge_method: str,
            response_type: str = "code",
            nonce: str = "",
            scope: str = "",
        ) -> RedirectResponse:
            if client_id != CLIENT_ID or response_type != "code" or code_challenge_method != "S256":
                raise HTTPException(400, "bad authorization request")
            code = secrets.token_urlsafe(16)
            provider.codes[code] = {
                "redirect_uri": redirect_uri,
                "challenge": code_challenge,
                "nonce": nonce,
            }
            return RedirectResponse(
                f"{redirect_uri}?{urlencode({'code': code, 'state': state})}", 302
            )

        @app.post("/token")
        async def token(
            grant_type: Annotated[str, FormParam()],
            code: Annotated[str, FormParam()],
            redirect_uri: Annotated[str, FormParam()],
            code_verifier: Annotated[str, FormParam()],
            authorization: Annotated[str, Header()] = "",
        ) -> dict[str, Any]:
            expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            if authorization != f"Basic {expected}":
                raise HTTPException(401, "invalid_client")
            grant = provider.codes.pop(code, None)  # one use only
            challenge = (
                base64.urlsafe_b64encode(hashlib.sha256(code_verifier.encode()).digest())
                .rstrip(b"=")
                .decode()
            )
            if (
                grant is None
                or grant_type != "authorization_code"
                or grant["redirect_uri"] != redirect_uri
                or grant["challenge"] != challenge
            ):
                raise HTTPException(400, "invalid_grant")
            access = secrets.token_urlsafe(16)
            provider.access_tokens.add(access)
            return {
                "access_token": access,
                "token_type": "Bearer",
                "id_token": provider._id_token(CLIENT_ID, grant["nonce"]),
            }

        def check(authorization: str) -> None:
            if authorization.removeprefix("Bearer ") not in provider.access_tokens:
                raise HTTPException(401, "bad token")

        # GitHub-style profile API (plain OAuth2, no id_token).
        @app.get("/user")
        async def user(authorization: Annotated[str, Header()] = "") -> dict[str, Any]:
            check(authorization)
            return {"id": 583231, "login": "octocat"}

        @app.get("/user/emails")
        async def emails(authorization: Annotated[str, Header()] = "") -> list[dict[str, Any]]:
            check(authorization)
            return [
                {"email": "old@example.com", "primary": False, "verified": True},
                {"email": "octo@example.com", "primary": True, "verified": True},
            ]

        return app

    def start(self) -> None:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        thread = threading.Thread(target=self._server.run, daemon=True)
        thread.start()
        for _ in range(500):
            if self._server.started:
                return
            time.sleep(0.01)
        raise RuntimeError("the test OIDC provider did not start")

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
