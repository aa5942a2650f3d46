"""Identity: who someone is (logins, sessions, OIDC) and what they may do (roles, scopes)."""
from engine.identity.auth import (
    SessionView,
    Tokens,
    authenticate,
    change_password,
    end_session,
    login,
    logout,
    my_sessions,
    refresh,
    start_session,
)
from engine.identity.permissions import BUILTIN_ROLES, DATA_SCOPES, PERMISSIONS
from engine.identity.principal import ClientInfo, Principal, Scope, load_principal

__all__ = [
    "BUILTIN_ROLES", "ClientInfo", "DATA_SCOPES", "PERMISSIONS", "Principal", "Scope", "SessionView", "Tokens",
    "authenticate", "change_password", "end_session", "load_principal", "login", "logout", "my_sessions", "refresh",
    "start_session",
]
