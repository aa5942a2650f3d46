"""Who is asking, and what they may see: the Principal and its data scopes.

Every engine function that serves a person takes a Principal. `principal.require(perm)`
refuses the call when no role grants `perm`, and returns the Scope the grants reach, which
the caller turns into a SQL condition: listings are filtered in the database, never after
fetching.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, false, or_, select, true
from sqlalchemy.orm import Session

from engine.errors import Forbidden, NotFound
from engine.identity.permissions import PERMISSIONS
from engine.models import OrgUnit, User
from engine.sql import Sql


@dataclass(frozen=True)
class ClientInfo:
    """Where a request came from, recorded with every audit event it causes."""

    addr: str | None = None
    user_agent: str | None = None
    request_id: str | None = None

    def audit(self) -> dict:
        return {k: v for k, v in (("client", self.addr), ("request_id", self.request_id)) if v}


@dataclass(frozen=True)
class Grant:
    role_key: str
    data_scope: str
    permissions: frozenset[str]
    org_unit_id: int | None
    org_path: str | None


@dataclass(frozen=True)
class Scope:
    """The records a permission reaches: everything, or the holder plus some org units.

    `org_ids` are single units (scope `org`); `subtree_paths` are materialised-path prefixes
    (scope `org_and_descendants`)."""

    everything: bool
    user_id: int
    org_ids: frozenset[int] = frozenset()
    subtree_paths: tuple[str, ...] = ()

    @property
    def only_self(self) -> bool:
        return not self.everything and not self.org_ids and not self.subtree_paths

    def covers_org(self, org_id: int | None, org_path: str | None) -> bool:
        if self.everything:
            return True
        if org_id is None:
            return False
        return org_id in self.org_ids or any((org_path or "").startswith(p) for p in self.subtree_paths)

    def org_condition(self, column) -> ColumnElement[bool]:
        """SQLAlchemy condition: `column` (an org unit id) lies in this scope."""
        if self.everything:
            return true()
        parts: list[ColumnElement[bool]] = []
        if self.org_ids:
            parts.append(column.in_(sorted(self.org_ids)))
        if self.subtree_paths:
            sub = select(OrgUnit.id).where(or_(*[OrgUnit.path.startswith(p, autoescape=True)
                                                 for p in self.subtree_paths]))
            parts.append(column.in_(sub))
        return or_(*parts) if parts else false()

    def org_sql(self, column: str) -> tuple[str, list]:
        """Raw SQL (engine/sql.py `?` style) for the same condition."""
        if self.everything:
            return "1=1", []
        parts, params = [], []
        if self.org_ids:
            parts.append(f"{column} IN ({', '.join('?' * len(self.org_ids))})")
            params += sorted(self.org_ids)
        if self.subtree_paths:
            likes = " OR ".join("path LIKE ?" for _ in self.subtree_paths)
            parts.append(f"{column} IN (SELECT id FROM org_units WHERE {likes})")
            params += [p + "%" for p in self.subtree_paths]
        return ("(" + " OR ".join(parts) + ")" if parts else "1=0"), params

    def person_condition(self) -> ColumnElement[bool]:
        """A `users` row is in scope: the holder, or someone whose department or branch is."""
        if self.everything:
            return true()
        return or_(User.id == self.user_id, self.org_condition(User.department_id),
                   self.org_condition(User.branch_id))


@dataclass
class Principal:
    user_id: int
    username: str
    display_name: str
    department_id: int | None
    branch_id: int | None
    grants: list[Grant] = field(default_factory=list)
    session_id: str | None = None
    must_change_password: bool = False
    client: ClientInfo = field(default_factory=ClientInfo)
    # Own org paths, for grants without an org (they reach the holder's department and branch).
    own_paths: dict[int, str] = field(default_factory=dict)
    own_names: dict[int, str] = field(default_factory=dict)

    @property
    def role_keys(self) -> list[str]:
        return sorted({g.role_key for g in self.grants})

    @property
    def permissions(self) -> set[str]:
        return set().union(*(g.permissions for g in self.grants)) if self.grants else set()

    def has(self, perm: str) -> bool:
        return any(perm in g.permissions for g in self.grants)

    def require(self, perm: str) -> Scope:
        """The scope `perm` reaches for this person; Forbidden when no role grants it."""
        assert perm in PERMISSIONS, perm
        scope = self.scope(perm)
        if scope is None:
            raise Forbidden(f"没有权限：{PERMISSIONS[perm]}（{perm}）")
        return scope

    def scope(self, perm: str) -> Scope | None:
        grants = [g for g in self.grants if perm in g.permissions]
        if not grants:
            return None
        if any(g.data_scope == "all" for g in grants):
            return Scope(True, self.user_id)
        org_ids: set[int] = set()
        paths: list[str] = []
        for g in grants:
            if g.data_scope == "self":
                continue
            targets = [(g.org_unit_id, g.org_path)] if g.org_unit_id is not None else list(self.own_paths.items())
            for org_id, path in targets:
                if g.data_scope == "org":
                    org_ids.add(org_id)
                elif path:
                    paths.append(path)
        return Scope(False, self.user_id, frozenset(org_ids), tuple(sorted(set(paths))))

    def require_person(self, s: Session, perm: str, person: User | None, *, what: str = "人员") -> User:
        """`person` if `perm` reaches them; NotFound otherwise, so ids outside the scope
        cannot be told apart from ids that do not exist."""
        scope = self.require(perm)
        if person is not None and (scope.everything or person.id == self.user_id or any(
                scope.covers_org(org_id, org_path(s, org_id)) for org_id in (person.department_id, person.branch_id))):
            return person
        raise NotFound(f"{what}不存在或不在您的管理范围内")

    def require_org(self, s: Session, perm: str, org: OrgUnit | None, *, what: str = "组织") -> OrgUnit:
        """`org` if `perm` reaches it (for reading, the holder's own units too); NotFound otherwise."""
        scope = self.require(perm)
        own = perm.endswith(".read") and org is not None and org.id in self.own_paths
        if org is not None and (own or scope.covers_org(org.id, org.path)):
            return org
        raise NotFound(f"{what}不存在或不在您的管理范围内")

    def audit_payload(self, **payload) -> dict:
        payload.update(self.client.audit())
        return payload


def org_path(s: Session, org_id: int | None) -> str | None:
    if org_id is None:
        return None
    return s.scalar(select(OrgUnit.path).where(OrgUnit.id == org_id))


# The principal in one statement: the user, their department and branch, one row per grant.
PRINCIPAL_COLS = ("u.id, u.username, u.display_name, u.department_id, u.branch_id, u.status, u.must_change_password, "
                  "d.path, d.name, b.path, b.name, g.role_key, r.data_scope, r.permissions, g.org_unit_id, o.path")
PRINCIPAL_JOINS = ("LEFT JOIN org_units d ON d.id = u.department_id LEFT JOIN org_units b ON b.id = u.branch_id "
                   "LEFT JOIN user_roles g ON g.user_id = u.id LEFT JOIN roles r ON r.\"key\" = g.role_key "
                   "LEFT JOIN org_units o ON o.id = g.org_unit_id")


def principal_from_rows(rows: list[tuple], at: int = 0, *, session_id: str | None = None,
                        client: ClientInfo | None = None) -> Principal:
    """The Principal from the rows of a query selecting PRINCIPAL_COLS (from column `at` on) with
    PRINCIPAL_JOINS; NotFound when there is no active user."""
    first = rows[0][at:] if rows else None
    if first is None or first[0] is None or first[5] != "active":
        raise NotFound("用户不存在或已停用")
    uid, username, display_name, dept, branch, _status, must_change, dpath, dname, bpath, bname = first[:11]
    grants = [Grant(r[11], r[12], frozenset(Sql.from_json(r[13]) or ()), r[14], r[15])
              for r in (row[at:] for row in rows) if r[12] is not None]
    own = [(i, p, n) for i, p, n in ((dept, dpath, dname), (branch, bpath, bname)) if i is not None]
    return Principal(uid, username, display_name, dept, branch, grants,
                     session_id=session_id, must_change_password=bool(must_change),
                     client=client or ClientInfo(), own_paths={i: p for i, p, _n in own},
                     own_names={i: n for i, _p, n in own})


def load_principal(s: Session | Sql, user_id: int, *, session_id: str | None = None,
                   client: ClientInfo | None = None) -> Principal:
    """The principal for an active user, with its grants; Unauthenticated-worthy users raise NotFound.

    Raw SQL (engine/sql.py), one statement: authenticate() runs the same columns on every request,
    where the ORM version cost more than the approval action it guarded."""
    sql = s if isinstance(s, Sql) else Sql.of(s)
    rows = sql.rows(f"SELECT {PRINCIPAL_COLS} FROM users u {PRINCIPAL_JOINS} WHERE u.id = ?", (user_id,))
    return principal_from_rows(rows, session_id=session_id, client=client)
