"""统一身份认证: sign in through an OpenID Connect provider (authorization code flow + PKCE).

The flow, and what each step guards against:

1. `begin()` makes a random state, nonce and PKCE verifier, puts them in a short-lived
   (10 min) token signed with a key derived from DJFLOW_SECRET_KEY (kept by the browser in an
   HttpOnly cookie), and returns the provider's authorization URL (authlib builds it).
2. `complete()` checks the returned state against that token (no login CSRF, no replay of
   another browser's callback), exchanges the code with the verifier (a stolen code is
   useless), and validates the ID token: signature by a key from the provider's JWKS
   (RS256/ES256 only, never `none` or HMAC), issuer, audience, expiry, issued-at and nonce.
3. The person is found by `oidc_subject` = "<issuer>|<sub>"; the first time, by the configured
   username claim, and then bound. Accounts are never created here: administrators manage
   them (or import them); an unknown person is refused and audited.
"""
from __future__ import annotations

import hashlib
import hmac
import threading
import time
from dataclasses import dataclass

import httpx
import jwt
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from sqlalchemy import select

from engine import audit
from engine.config import Settings
from engine.db import Database
from engine.errors import NotFound, Unauthenticated
from engine.identity.auth import Tokens, start_session
from engine.identity.permissions import ADMIN_ROLES
from engine.identity.principal import ClientInfo
from engine.models import User, UserRole

STATE_MINUTES = 10
ALGORITHMS = ["RS256", "ES256", "PS256"]
DISCOVERY_TTL = 3600


@dataclass(frozen=True)
class Started:
    authorization_url: str
    # The signed state token for the browser's HttpOnly cookie.
    state_token: str


def _state_key(settings: Settings) -> bytes:
    return hmac.new(settings.secret_key.encode(), b"djflow oidc state v1", hashlib.sha256).digest()


class OidcClient:
    """One provider's metadata and keys, cached; `http` is injectable for tests."""

    def __init__(self, settings: Settings, *, http: httpx.Client | None = None):
        if not settings.oidc_enabled:
            raise NotFound("未启用统一身份认证")
        if not (settings.oidc_issuer and settings.oidc_client_id and settings.oidc_redirect_uri):
            raise NotFound("统一身份认证配置不完整（DJFLOW_OIDC_ISSUER / CLIENT_ID / REDIRECT_URI）")
        self.settings = settings
        self.issuer = settings.oidc_issuer.rstrip("/")
        self.http = http or httpx.Client(timeout=10)
        self._lock = threading.Lock()
        self._meta: dict | None = None
        self._meta_at = 0.0
        self._jwks: dict[str, jwt.PyJWK] = {}

    # -- provider metadata ------------------------------------------------------------------
    def metadata(self) -> dict:
        with self._lock:
            if self._meta is None or time.monotonic() - self._meta_at > DISCOVERY_TTL:
                r = self.http.get(f"{self.issuer}/.well-known/openid-configuration")
                r.raise_for_status()
                meta = r.json()
                if meta.get("issuer", "").rstrip("/") != self.issuer:
                    raise Unauthenticated("身份认证服务的发现文档与配置的签发者不一致")
                self._meta, self._meta_at, self._jwks = meta, time.monotonic(), {}
            return self._meta

    def _key(self, kid: str | None) -> jwt.PyJWK:
        if kid not in self._jwks:
            # Unknown kid: the provider may have rotated its keys; fetch once more.
            r = self.http.get(self.metadata()["jwks_uri"])
            r.raise_for_status()
            self._jwks = {k.get("kid"): jwt.PyJWK(k) for k in r.json().get("keys", [])
                          if k.get("use", "sig") == "sig"}
        if kid not in self._jwks:
            raise Unauthenticated("身份令牌的签名密钥未知")
        return self._jwks[kid]

    # -- the flow ---------------------------------------------------------------------------
    def begin(self) -> Started:
        state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
        url = prepare_grant_uri(
            self.metadata()["authorization_endpoint"], self.settings.oidc_client_id, "code",
            redirect_uri=self.settings.oidc_redirect_uri, scope=self.settings.oidc_scopes, state=state,
            nonce=nonce, code_challenge=create_s256_code_challenge(verifier), code_challenge_method="S256")
        now = int(time.time())
        token = jwt.encode({"state": state, "nonce": nonce, "verifier": verifier, "iat": now,
                            "exp": now + STATE_MINUTES * 60}, _state_key(self.settings), algorithm="HS256")
        return Started(url, token)

    def claims(self, *, code: str, state: str, state_token: str | None) -> dict:
        """The validated ID-token claims for a callback, or Unauthenticated."""
        if not state_token:
            raise Unauthenticated("登录已过期或不是从本系统发起，请重新登录")
        try:
            saved = jwt.decode(state_token, _state_key(self.settings), algorithms=["HS256"])
        except jwt.PyJWTError:
            raise Unauthenticated("登录已过期或不是从本系统发起，请重新登录") from None
        if not hmac.compare_digest(saved["state"], state or ""):
            raise Unauthenticated("登录状态不匹配，请重新登录")
        meta = self.metadata()
        auth = (self.settings.oidc_client_id, self.settings.oidc_client_secret or "")
        r = self.http.post(meta["token_endpoint"], auth=auth, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": self.settings.oidc_redirect_uri,
            "code_verifier": saved["verifier"]})
        if r.status_code != 200:
            raise Unauthenticated(f"身份认证服务拒绝了授权码（{r.status_code}）")
        id_token = r.json().get("id_token")
        if not id_token:
            raise Unauthenticated("身份认证服务没有返回身份令牌")
        try:
            header = jwt.get_unverified_header(id_token)
            if header.get("alg") not in ALGORITHMS:
                raise Unauthenticated(f"不接受的签名算法 {header.get('alg')}")
            claims = jwt.decode(id_token, self._key(header.get("kid")).key, algorithms=ALGORITHMS,
                                audience=self.settings.oidc_client_id, issuer=meta["issuer"], leeway=30,
                                options={"require": ["exp", "iat", "iss", "aud", "sub"]})
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("身份令牌已过期") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("身份令牌不是签发给本系统的") from None
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"身份令牌无效：{type(exc).__name__}") from None
        if not hmac.compare_digest(str(claims.get("nonce", "")), saved["nonce"]):
            raise Unauthenticated("身份令牌的 nonce 不匹配（可能是重放）")
        return claims


def complete(db: Database, settings: Settings, oidc: OidcClient, *, code: str, state: str,
             state_token: str | None, client: ClientInfo) -> Tokens:
    """Finish a sign-in: validate, find (or bind) the person, start a session."""
    try:
        claims = oidc.claims(code=code, state=state, state_token=state_token)
    except Unauthenticated as exc:
        with db.unit_of_work() as s:
            audit.append(s, action="auth.login_failed", payload={"method": "oidc", "reason": exc.message,
                                                                 **client.audit()}, hash_alg=settings.audit_hash)
        raise
    subject = f"{oidc.issuer}|{claims['sub']}"
    username = str(claims.get(settings.oidc_username_claim) or "")[:64]
    failure: Unauthenticated | None = None
    with db.unit_of_work() as s:
        user = s.scalar(select(User).where(User.oidc_subject == subject))
        if user is None and username:
            candidate = s.scalar(select(User).where(User.username == username))
            # The 三员 accounts are never bound by a name claim: whoever can choose that claim
            # at the provider would otherwise become the system, security or audit administrator.
            admin = candidate is not None and s.scalar(select(UserRole.id).where(
                UserRole.user_id == candidate.id, UserRole.role_key.in_(ADMIN_ROLES)).limit(1)) is not None
            if candidate is not None and candidate.oidc_subject is None and not admin:
                user = candidate
                user.oidc_subject = subject
                audit.append(s, action="auth.oidc_bound", actor_id=user.id,
                             payload={"username": user.username, "subject": subject, **client.audit()},
                             hash_alg=settings.audit_hash)
        if user is None or user.status != "active":
            reason = "oidc_unknown_user" if user is None else "disabled"
            audit.append(s, action="auth.login_failed", actor_id=user.id if user else None,
                         payload={"method": "oidc", "reason": reason, "subject": subject, "username": username,
                                  **client.audit()}, hash_alg=settings.audit_hash)
            failure = Unauthenticated("统一身份认证账号在本系统中没有对应的用户或已停用，请联系管理员")
        else:
            return start_session(s, settings, user, client, method="oidc")
    raise failure
