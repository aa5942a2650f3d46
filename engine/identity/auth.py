"""Logins, sessions and tokens.

A login creates an `auth_sessions` row and returns two tokens:

- an access token: a JWT (HS256, key derived from DJFLOW_SECRET_KEY) naming the user and the
  session, valid `access_token_minutes`; every request also checks the session row, so a
  logout, an idle timeout or the absolute lifetime ends it at once;
- a refresh token `<session id>.<secret>`: only its SHA-256 is stored, and it rotates on every
  use. Presenting an old one again means it was copied: the session is revoked.

Five failed passwords in a row (policy) lock the account for 30 minutes; while locked, even
the right password is refused. Every success, failure, lockout and refusal is audited.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine import audit
from engine.clock import as_utc, local, now
from engine.config import Settings
from engine.db import Database
from engine.errors import (
    AccountLocked,
    FieldProblem,
    InvalidInput,
    NotFound,
    TooManyRequests,
    Unauthenticated,
)
from engine.identity.passwords import hash_password, hasher, verify_password
from engine.identity.policy import POLICY_KEY, SecurityPolicy, load_policy, policy_from
from engine.identity.principal import PRINCIPAL_COLS, PRINCIPAL_JOINS, ClientInfo, Principal, principal_from_rows
from engine.identity.throttle import LoginThrottle
from engine.models import AuthSession, User
from engine.sql import Sql

BAD_CREDENTIALS = "用户名或口令错误"
# Writing last_seen_at on every request would turn every read into a write; a minute is
# well inside any idle timeout.
TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: str
    user_id: int
    username: str
    must_change_password: bool
    session_expires_at: datetime


def _token_key(settings: Settings) -> bytes:
    return hmac.new(settings.secret_key.encode(), b"djflow access token v1", hashlib.sha256).digest()


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _access_token(settings: Settings, policy: SecurityPolicy, user_id: int, sid: str, at: datetime) -> str:
    exp = at + timedelta(minutes=policy.access_token_minutes)
    return jwt.encode({"sub": str(user_id), "sid": sid, "iat": int(at.timestamp()), "exp": int(exp.timestamp()),
                       "typ": "access"}, _token_key(settings), algorithm="HS256")


def _audit(s: Session, settings: Settings, action: str, client: ClientInfo, *, actor_id: int | None = None,
           **payload) -> None:
    payload.update(client.audit())
    audit.append(s, action=action, actor_id=actor_id, payload=payload, hash_alg=settings.audit_hash)


def start_session(s: Session, settings: Settings, user: User, client: ClientInfo, *, method: str,
                  policy: SecurityPolicy | None = None) -> Tokens:
    """Create a session for `user` (already authenticated by `method`) and audit the login."""
    policy = policy or load_policy(s, settings)
    at = now()
    sid, secret = str(uuid.uuid4()), secrets.token_urlsafe(32)
    s.add(AuthSession(id=sid, user_id=user.id, method=method, refresh_hash=_hash_secret(secret), created_at=at,
                      last_seen_at=at, expires_at=at + timedelta(hours=policy.session_absolute_hours),
                      client_addr=(client.addr or "")[:64] or None, user_agent=(client.user_agent or "")[:300] or None))
    user.failed_logins, user.locked_until, user.last_login_at = 0, None, at
    _audit(s, settings, "auth.login", client, actor_id=user.id, username=user.username, method=method, session=sid)
    return Tokens(_access_token(settings, policy, user.id, sid, at), f"{sid}.{secret}",
                  policy.access_token_minutes * 60, sid, user.id, user.username,
                  _must_change(user.must_change_password, method), at + timedelta(hours=policy.session_absolute_hours))


def _must_change(flag: bool, method: str) -> bool:
    # Someone signed in through the unified identity platform never types djflow's password,
    # so an initial djflow password does not stand between them and their work.
    return flag and method == "password"


def login(db: Database, settings: Settings, *, username: str, password: str, client: ClientInfo,
          throttle: LoginThrottle | None = None) -> Tokens:
    """Check a username and password; returns tokens or raises Unauthenticated / AccountLocked
    (or TooManyRequests when `throttle` has seen too many failures from this client).

    Failures are committed (counter, lockout, audit) before the error is raised."""
    failure: Exception | None = None
    with db.unit_of_work() as s:
        if throttle is not None and throttle.blocked(client.addr):
            _audit(s, settings, "auth.login_refused", client, username=username[:64], reason="client_throttled")
            failure = TooManyRequests(f"该地址登录失败次数过多，请 {settings.login_client_window_minutes} 分钟后再试")
    if failure is not None:
        raise failure
    with db.unit_of_work() as s:
        policy = load_policy(s, settings)
        user = s.scalar(select(User).where(User.username == username).with_for_update())
        at = now()
        if user is not None and user.locked_until is not None and as_utc(user.locked_until) > at:
            _audit(s, settings, "auth.login_refused", client, actor_id=user.id, username=username, reason="locked",
                   locked_until=as_utc(user.locked_until).isoformat())
            failure = AccountLocked(f"账号已锁定，请于 {_local(user.locked_until)} 后再试或联系管理员解锁")
        elif user is None or user.status != "active" or not verify_password(user.password_hash, password, settings):
            if user is not None and user.password_hash:
                user.failed_logins += 1
                _audit(s, settings, "auth.login_failed", client, actor_id=user.id, username=username,
                       reason="bad_password", failures=user.failed_logins)
                if user.failed_logins >= policy.lockout_threshold:
                    user.locked_until = at + timedelta(minutes=policy.lockout_minutes)
                    user.failed_logins = 0
                    _audit(s, settings, "auth.lockout", client, actor_id=user.id, username=username,
                           minutes=policy.lockout_minutes, locked_until=user.locked_until.isoformat())
            else:
                reason = "unknown_user" if user is None else "disabled" if user.status != "active" else "no_password"
                _audit(s, settings, "auth.login_failed", client, actor_id=user.id if user else None,
                       username=username[:64], reason=reason)
            failure = Unauthenticated(BAD_CREDENTIALS)
            if throttle is not None:
                throttle.failed(client.addr)
        else:
            if hasher(settings).check_needs_rehash(user.password_hash):
                user.password_hash = hash_password(password, settings)
            return start_session(s, settings, user, client, method="password", policy=policy)
    raise failure


def _local(ts: datetime) -> str:
    return local(as_utc(ts)).strftime("%Y-%m-%d %H:%M")


@dataclass
class _SessionRow:
    id: str
    user_id: int
    revoked_at: datetime | None
    expires_at: datetime
    last_seen_at: datetime
    method: str


def _live_session(s: Session, sid: str, policy: SecurityPolicy, *, lock: bool = False) -> AuthSession:
    q = select(AuthSession).where(AuthSession.id == sid)
    return _check_live(s.scalar(q.with_for_update() if lock else q), policy)


def _check_live(row, policy: SecurityPolicy):
    """The session row if it may still be used; Unauthenticated saying why not."""
    at = now()
    if row is None or row.revoked_at is not None:
        raise Unauthenticated("会话已结束，请重新登录")
    if as_utc(row.expires_at) <= at:
        raise Unauthenticated("会话已超过最长有效期，请重新登录")
    if at - as_utc(row.last_seen_at) > timedelta(minutes=policy.session_idle_minutes):
        raise Unauthenticated("长时间未操作，会话已超时，请重新登录")
    return row


# Every request: the session, the policy and the principal in one statement (one row per grant).
_AUTH_SQL = ("SELECT s.id, s.user_id, s.revoked_at, s.expires_at, s.last_seen_at, s.method, "
             f"(SELECT value FROM system_settings WHERE key = ?), {PRINCIPAL_COLS} "
             f"FROM auth_sessions s LEFT JOIN users u ON u.id = s.user_id {PRINCIPAL_JOINS} WHERE s.id = ?")


_VERIFIED: dict[tuple[str, str], dict] = {}  # (secret, token) → claims whose signature checked out


def _claims(settings: Settings, token: str) -> dict:
    """The claims of a valid access token. A token's signature is checked once per process (the
    check costs as much as the statement that follows); its expiry, every time."""
    key = (settings.secret_key, token)
    claims = _VERIFIED.get(key)
    if claims is None:
        try:
            claims = jwt.decode(token, _token_key(settings), algorithms=["HS256"],
                                options={"require": ["exp", "sid"]})
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("访问令牌已过期，请刷新") from None
        except jwt.PyJWTError:
            raise Unauthenticated("访问令牌无效") from None
        if claims.get("typ") != "access":
            raise Unauthenticated("访问令牌无效")
        if len(_VERIFIED) >= 20_000:  # tokens live minutes; forget them all rather than grow
            _VERIFIED.clear()
        _VERIFIED[key] = claims
    elif claims["exp"] <= time.time():
        raise Unauthenticated("访问令牌已过期，请刷新")
    return claims


def authenticate(db: Database, settings: Settings, token: str, client: ClientInfo) -> Principal:
    """The principal behind an access token, or Unauthenticated."""
    claims = _claims(settings, token)
    with db.autocommit() as sql:  # one statement, so no transaction around it
        rows = sql.rows(_AUTH_SQL, (POLICY_KEY, claims["sid"]))
    first = rows[0] if rows else None
    policy = policy_from(first[6] if first else None, settings)
    row = _check_live(first and _SessionRow(first[0], first[1], first[2], Sql.from_ts(first[3]),
                                             Sql.from_ts(first[4]), first[5]), policy)
    try:
        principal = principal_from_rows(rows, 7, session_id=row.id, client=client)
    except NotFound:
        raise Unauthenticated("账号已停用") from None
    principal.must_change_password = _must_change(principal.must_change_password, row.method)
    if now() - as_utc(row.last_seen_at) > TOUCH_EVERY:
        with db.unit_of_work() as s:
            s.execute(update(AuthSession).where(AuthSession.id == row.id).values(last_seen_at=now()))
    return principal


def refresh(db: Database, settings: Settings, *, refresh_token: str, client: ClientInfo) -> Tokens:
    """Rotate the refresh token and issue a new access token."""
    sid, _, secret = refresh_token.partition(".")
    failure: Exception | None = None
    with db.unit_of_work() as s:
        policy = load_policy(s, settings)
        row = _live_session(s, sid, policy, lock=True)
        if not hmac.compare_digest(row.refresh_hash, _hash_secret(secret)):
            row.revoked_at, row.revoke_reason = now(), "refresh_reuse"
            _audit(s, settings, "auth.refresh_reuse", client, actor_id=row.user_id, session=sid)
            failure = Unauthenticated("刷新令牌已被使用过，为安全起见会话已注销，请重新登录")
        else:
            user = s.get(User, row.user_id)
            if user is None or user.status != "active":
                raise Unauthenticated("账号已停用")
            at, new_secret = now(), secrets.token_urlsafe(32)
            row.refresh_hash, row.last_seen_at = _hash_secret(new_secret), at
            return Tokens(_access_token(settings, policy, user.id, sid, at), f"{sid}.{new_secret}",
                          policy.access_token_minutes * 60, sid, user.id, user.username,
                          _must_change(user.must_change_password, row.method), as_utc(row.expires_at))
    raise failure


def logout(db: Database, settings: Settings, principal: Principal) -> None:
    with db.unit_of_work() as s:
        row = s.get(AuthSession, principal.session_id)
        if row is not None and row.revoked_at is None:
            row.revoked_at, row.revoke_reason = now(), "logout"
            _audit(s, settings, "auth.logout", principal.client, actor_id=principal.user_id, session=row.id)


def change_password(db: Database, settings: Settings, principal: Principal, *, old_password: str,
                    new_password: str) -> None:
    """Change one's own password; other sessions of the account end."""
    with db.unit_of_work() as s:
        user = s.get(User, principal.user_id)
        if not verify_password(user.password_hash, old_password, settings):
            _audit(s, settings, "auth.password_change_failed", principal.client, actor_id=user.id,
                   reason="bad_old_password")
            failure = InvalidInput("原口令不正确", errors=[FieldProblem("old_password", "原口令不正确")])
        elif old_password == new_password:
            same = "新口令不能与原口令相同"
            raise InvalidInput(same, errors=[FieldProblem("new_password", same)])
        else:
            load_policy(s, settings).check_password(new_password, username=user.username)
            user.password_hash = hash_password(new_password, settings)
            user.must_change_password, user.password_changed_at = False, now()
            s.execute(update(AuthSession).where(AuthSession.user_id == user.id, AuthSession.id != principal.session_id,
                                                AuthSession.revoked_at.is_(None))
                      .values(revoked_at=now(), revoke_reason="password_changed"))
            _audit(s, settings, "auth.password_changed", principal.client, actor_id=user.id)
            return
    raise failure


@dataclass(frozen=True)
class SessionView:
    id: str
    method: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    client_addr: str | None
    user_agent: str | None
    current: bool


def my_sessions(db: Database, principal: Principal) -> list[SessionView]:
    """The caller's live sessions (devices), newest first."""
    with db.read() as s:
        rows = s.scalars(select(AuthSession).where(AuthSession.user_id == principal.user_id,
                                                   AuthSession.revoked_at.is_(None),
                                                   AuthSession.expires_at > now())
                         .order_by(AuthSession.created_at.desc())).all()
        return [SessionView(r.id, r.method, as_utc(r.created_at), as_utc(r.last_seen_at), as_utc(r.expires_at),
                            r.client_addr, r.user_agent, r.id == principal.session_id) for r in rows]


def end_session(db: Database, settings: Settings, principal: Principal, session_id: str) -> None:
    """Sign one of one's own sessions out (e.g. a lost phone)."""
    with db.unit_of_work() as s:
        row = s.get(AuthSession, session_id)
        if row is None or row.user_id != principal.user_id:
            raise NotFound("会话不存在")
        if row.revoked_at is None:
            row.revoked_at, row.revoke_reason = now(), "ended_by_user"
            _audit(s, settings, "auth.session_ended", principal.client, actor_id=principal.user_id, session=row.id)
