"""Identity: who someone is (logins, sessions, OIDC) and what they may do (roles, scopes)."""
from engine.identity.auth import Tokens, authenticate, change_password, login, logout, refresh, start_session
from engine.identity.permissions import BUILTIN_ROLES, DATA_SCOPES, PERMISSIONS
from engine.identity.principal import ClientInfo, Principal, Scope, load_principal

__all__ = [
    "BUILTIN_ROLES", "DATA_SCOPES", "PERMISSIONS", "ClientInfo", "Principal", "Scope", "Tokens", "authenticate",
    "change_password", "load_principal", "login", "logout", "refresh", "start_session",
]
