"""A small but real OpenID Connect provider for tests, served by uvicorn on 127.0.0.1.

It implements discovery, /authorize (auto-approving `user`), /token (client authentication,
single-use codes, PKCE S256) and /jwks, and signs ID tokens with an RSA key made at start.
`misbehave` makes it issue a bad token on purpose: "audience", "nonce", "expired",
"foreign_key" (signed by a key not in its JWKS) or "none" (an unsigned token).
"""
from __future__ import annotations

import base64
import hashlib
import secrets
import socket
import threading
import time
from urllib.parse import urlencode

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.responses import RedirectResponse

CLIENT_ID, CLIENT_SECRET = "djflow", "provider-secret-for-tests"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OidcProvider:
    def __init__(self):
        self.port = _free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.foreign = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "test-key-1"
        self.user = {"sub": "u-1001", "preferred_username": "staff1", "name": "赵六"}
        self.misbehave: str | None = None
        self.codes: dict[str, dict] = {}
        self.app = self._build()
        self._server: uvicorn.Server | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> OidcProvider:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        thread = threading.Thread(target=self._server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("OIDC provider did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True

    # -- the provider -----------------------------------------------------------------------
    def _jwk(self) -> dict:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}

    def _id_token(self, nonce: str) -> str:
        now = int(time.time())
        claims = {**self.user, "iss": self.issuer, "aud": CLIENT_ID, "iat": now, "exp": now + 300, "nonce": nonce}
        key, kid = self.key, self.kid
        if self.misbehave == "audience":
            claims["aud"] = "someone-else"
        elif self.misbehave == "nonce":
            claims["nonce"] = "not-the-one-you-sent"
        elif self.misbehave == "expired":
            claims["iat"], claims["exp"] = now - 3600, now - 1800
        elif self.misbehave == "foreign_key":
            key = self.foreign
        elif self.misbehave == "none":
            return jwt.encode(claims, None, algorithm="none", headers={"kid": kid})
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.get("/.well-known/openid-configuration")
        def discovery() -> dict:
            return {"issuer": self.issuer, "authorization_endpoint": f"{self.issuer}/authorize",
                    "token_endpoint": f"{self.issuer}/token", "jwks_uri": f"{self.issuer}/jwks",
                    "response_types_supported": ["code"], "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "code_challenge_methods_supported": ["S256"]}

        @app.get("/jwks")
        def jwks() -> dict:
            return {"keys": [self._jwk()]}

        @app.get("/authorize")
        def authorize(request: Request):
            q = request.query_params
            if q.get("client_id") != CLIENT_ID or q.get("response_type") != "code":
                raise HTTPException(400, "bad client or response type")
            if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
                raise HTTPException(400, "PKCE required")
            code = secrets.token_urlsafe(16)
            self.codes[code] = {"redirect_uri": q["redirect_uri"], "nonce": q.get("nonce", ""),
                                "challenge": q["code_challenge"]}
            return RedirectResponse(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q.get('state', '')})}",
                                    status_code=302)

        @app.post("/token")
        def token(request: Request, grant_type: str = Form(), code: str = Form(), redirect_uri: str = Form(),
                  code_verifier: str = Form()) -> dict:
            auth = request.headers.get("authorization", "")
            expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            if auth != expected:
                raise HTTPException(401, "client authentication failed")
            grant = self.codes.pop(code, None)  # single use
            if grant_type != "authorization_code" or grant is None or grant["redirect_uri"] != redirect_uri:
                raise HTTPException(400, "invalid_grant")
            challenge = base64.urlsafe_b64encode(hashlib.sha256(code_verifier.encode()).digest()).rstrip(b"=")
            if challenge.decode() != grant["challenge"]:
                raise HTTPException(400, "invalid_grant: PKCE")
            return {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": 300,
                    "id_token": self._id_token(grant["nonce"])}

        return app
