"""一人一档: one record per person, with party status history and protected personal data.

ID numbers and phone numbers are encrypted at rest and masked in every view; `unmask`
returns them in clear only to holders of `user.unmask` whose scope reaches the person, and
writes an audit event each time.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from pydantic import BaseModel, Field, field_validator
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from engine import audit
from engine.clock import as_utc, now
from engine.config import Settings
from engine.db import Database
from engine.errors import Conflict, FieldProblem, InvalidInput, NotFound
from engine.identity.passwords import generate_password, hash_password
from engine.identity.policy import load_policy
from engine.identity.principal import Principal
from engine.identity.protect import FieldCipher, Masker, check_id_number, check_phone, cipher_for, id_number_facts
from engine.models import OrgUnit, PartyStatusHistory, User, UserRole
from engine.models.org import ADMIN_KINDS, PARTY_KINDS, PARTY_STATUSES
from engine.org.names import USERNAME, pinyin_key

PARTY_STATUS_NAMES = {"applicant": "申请人", "activist": "入党积极分子", "candidate": "发展对象",
                      "probationary": "预备党员", "full": "正式党员", "none": "非党员"}
USERNAME_PATTERN = rf"^{USERNAME}$"


class PersonFields(BaseModel):
    """Fields of a person record that a caller may set (all optional on update)."""

    display_name: str | None = Field(None, min_length=1, max_length=100)
    member_code: str | None = Field(None, max_length=64)
    department_code: str | None = None
    branch_code: str | None = None
    party_status: str | None = None
    party_status_since: date | None = None
    id_number: str | None = None
    phone: str | None = None
    email: str | None = Field(None, max_length=200)
    status: str | None = None
    note: str | None = Field(None, max_length=500)

    @field_validator("party_status")
    @classmethod
    def _status(cls, v):
        if v is not None and v not in PARTY_STATUSES:
            raise ValueError(f"应为 {', '.join(PARTY_STATUSES)} 之一")
        return v

    @field_validator("status")
    @classmethod
    def _account_status(cls, v):
        if v is not None and v not in ("active", "disabled"):
            raise ValueError("应为 active 或 disabled")
        return v


class PersonCreate(PersonFields):
    username: str = Field(pattern=USERNAME_PATTERN)
    display_name: str = Field(min_length=1, max_length=100)
    # Create a login with a generated initial password (needs account.write); shown once.
    create_login: bool = False


@dataclass
class Page:
    items: list
    total: int
    page: int
    size: int


@dataclass
class DirectoryEntry:
    username: str
    display_name: str
    department_name: str | None


@dataclass
class DirectoryOrg:
    """A unit of the person picker's tree: its name and kind, nothing else."""
    id: int
    name: str
    kind: str
    children: list[DirectoryOrg] = field(default_factory=list)


@dataclass
class PersonView:
    id: int
    username: str
    display_name: str
    member_code: str | None
    department_id: int | None
    department_name: str | None
    branch_id: int | None
    branch_name: str | None
    party_status: str
    party_status_name: str
    party_status_since: date | None
    gender: str | None
    birth_date: date | None
    id_number: str | None
    phone: str | None
    email: str | None
    status: str
    has_login: bool
    locked: bool
    roles: list[str]
    masked: bool = True


def _within_org(s: Session, org_id: int):
    """People whose department or branch is `org_id` or below it; NotFound for an unknown org."""
    path = s.scalar(select(OrgUnit.path).where(OrgUnit.id == org_id))
    if path is None:
        raise NotFound("组织不存在")
    sub = select(OrgUnit.id).where(OrgUnit.path.startswith(path, autoescape=True))
    return or_(User.department_id.in_(sub), User.branch_id.in_(sub))


class People:
    """Person records for one installation: the settings give the data key and mask patterns."""

    def __init__(self, db: Database, settings: Settings):
        self.db, self.settings = db, settings
        self.cipher: FieldCipher = cipher_for(settings)

    # -- reading ----------------------------------------------------------------------------
    def list(self, principal: Principal, *, q: str | None = None, org_id: int | None = None,
             party_status: str | None = None, page: int = 1, size: int = 20) -> Page:
        """People the caller's `user.read` scope reaches, filtered in SQL, newest codes first."""
        scope = principal.require("user.read")
        size = max(1, min(size, 200))
        page = max(1, page)
        where = [scope.person_condition()]
        if q:
            like = f"%{q.strip().lower()}%"
            where.append(or_(User.display_name.like(f"%{q.strip()}%"), User.name_pinyin.like(like),
                             func.lower(User.username).like(like), User.member_code.like(f"%{q.strip()}%")))
        if org_id is not None:
            with self.db.read() as s:
                where.append(_within_org(s, org_id))
        if party_status:
            where.append(User.party_status == party_status)
        with self.db.read() as s:
            total = s.scalar(select(func.count()).select_from(User).where(*where))
            users = s.scalars(select(User).where(*where).order_by(User.display_name, User.id)
                              .offset((page - 1) * size).limit(size)).all()
            items = self._views(s, users)
        return Page(items, total, page, size)

    def directory(self, principal: Principal, *, q: str | None = None, org_id: int | None = None,
                  limit: int = 20) -> list[DirectoryEntry]:
        """The person picker of 转办, 委派, 加签 and 抄送: people who can sign in (a password or a
        single-sign-on identity), found by name, pinyin initials or username, with their department
        and nothing else (no ID or phone numbers, no party status).

        Deliberately across the whole installation, for anyone who may read the org tree: a task
        may be transferred or copied to anyone in the unit, as in Feishu and DingTalk; the
        person records themselves stay behind user.read and its scope."""
        principal.require("org.read")
        limit = max(1, min(limit, 50))
        where = [User.status == "active", User.username != "admin",
                 or_(User.password_hash.is_not(None), User.oidc_subject.is_not(None))]
        if q and q.strip():
            text = q.strip()
            where.append(or_(User.display_name.contains(text, autoescape=True),
                             User.name_pinyin.contains(text.lower(), autoescape=True),
                             func.lower(User.username).contains(text.lower(), autoescape=True)))
        with self.db.read() as s:
            if org_id is not None:
                where.append(_within_org(s, org_id))
            rows = s.execute(select(User.username, User.display_name, OrgUnit.name)
                             .outerjoin(OrgUnit, OrgUnit.id == User.department_id).where(*where)
                             .order_by(User.name_pinyin, User.id).limit(limit)).all()
        return [DirectoryEntry(u, n, d) for u, n, d in rows]

    def directory_orgs(self, principal: Principal) -> list[DirectoryOrg]:
        """The person picker's org tree: every active unit by name and kind, nested, across the
        installation like the directory itself (the names are what every person's department
        already shows). The unit records stay behind org.read and its scope. The 安全保密管理员
        (role.write without org.read) gets it too, to pick the unit a role grant is scoped to."""
        if not principal.has("role.write"):
            principal.require("org.read")
        with self.db.read() as s:
            rows = s.execute(select(OrgUnit.id, OrgUnit.name, OrgUnit.kind, OrgUnit.parent_id)
                             .where(OrgUnit.status == "active").order_by(OrgUnit.sort_order, OrgUnit.id)).all()
        nodes = {r.id: DirectoryOrg(r.id, r.name, r.kind) for r in rows}
        roots: list[DirectoryOrg] = []
        for r in rows:
            parent = nodes.get(r.parent_id) if r.parent_id is not None else None
            (parent.children if parent is not None else roots).append(nodes[r.id])
        return roots

    def get(self, principal: Principal, user_id: int) -> PersonView:
        with self.db.read() as s:
            user = principal.require_person(s, "user.read", s.get(User, user_id))
            return self._views(s, [user])[0]

    def status_history(self, principal: Principal, user_id: int) -> list[dict]:
        with self.db.read() as s:
            principal.require_person(s, "user.read", s.get(User, user_id))
            rows = s.scalars(select(PartyStatusHistory).where(PartyStatusHistory.user_id == user_id)
                             .order_by(PartyStatusHistory.id)).all()
            return [{"status": r.status, "status_name": PARTY_STATUS_NAMES.get(r.status, r.status), "since": r.since,
                     "note": r.note, "recorded_by": r.recorded_by, "recorded_at": r.recorded_at} for r in rows]

    def unmask(self, principal: Principal, user_id: int, fields: list[str]) -> dict[str, str | None]:
        """The clear values of `fields` (id_number, phone); audited as `user.unmask`."""
        bad = [f for f in fields if f not in ("id_number", "phone")]
        if bad or not fields:
            raise InvalidInput("只能查看 id_number 或 phone", errors=[FieldProblem("fields", "应为 id_number、phone")])
        with self.db.unit_of_work() as s:
            user = principal.require_person(s, "user.unmask", s.get(User, user_id))
            out = {f: self._clear(user, f) for f in fields}
            audit.append(s, action="user.unmask", actor_id=principal.user_id,
                         payload=principal.audit_payload(user_id=user.id, username=user.username, fields=fields),
                         hash_alg=self.settings.audit_hash)
            return out

    # -- writing ----------------------------------------------------------------------------
    def create(self, principal: Principal | None, data: PersonCreate) -> tuple[PersonView, str | None]:
        """Create a record (and optionally a login). Returns the view and, for a new login,
        the initial password, shown once; the person must change it at first sign-in."""
        with self.db.unit_of_work() as s:
            if s.scalar(select(User.id).where(User.username == data.username)) is not None:
                raise Conflict(f"用户名 {data.username} 已存在", errors=[FieldProblem("username", "已存在")])
            user = User(username=data.username, display_name=data.display_name, status="active")
            changes = self._apply(s, principal, user, data, creating=True)
            password = None
            if data.create_login:
                if principal is not None:
                    principal.require("account.write")
                password = generate_password()
                user.password_hash = hash_password(password, self.settings)
                user.must_change_password = True
            s.add(user)
            s.flush()
            self._record_status(s, principal, user, data.note)
            audit.append(s, action="user.create", actor_id=principal.user_id if principal else None,
                         payload=_payload(principal, user_id=user.id, username=user.username, changes=changes,
                                          login=data.create_login),
                         hash_alg=self.settings.audit_hash)
            return self._views(s, [user])[0], password

    def update(self, principal: Principal, user_id: int, data: PersonFields) -> PersonView:
        with self.db.unit_of_work() as s:
            user = principal.require_person(s, "user.write", s.get(User, user_id))
            if data.status is not None and data.status != user.status:
                principal.require("account.write")
            old_status = user.party_status
            changes = self._apply(s, principal, user, data, creating=False)
            if not changes:
                return self._views(s, [user])[0]
            user.updated_at = now()
            if user.party_status != old_status or "party_status_since" in changes:
                self._record_status(s, principal, user, data.note)
            audit.append(s, action="user.update", actor_id=principal.user_id,
                         payload=principal.audit_payload(user_id=user.id, username=user.username, changes=changes),
                         hash_alg=self.settings.audit_hash)
            return self._views(s, [user])[0]

    def reset_password(self, principal: Principal | None, user_id: int) -> str:
        """A new initial password for someone's login (account.write); shown once. With no
        principal the caller is the operator at the server console (`djflow account`)."""
        with self.db.unit_of_work() as s:
            user = self._account_target(s, principal, "account.write", user_id)
            password = generate_password()
            user.password_hash, user.must_change_password = hash_password(password, self.settings), True
            user.failed_logins, user.locked_until = 0, None
            audit.append(s, action="account.password_reset", actor_id=principal.user_id if principal else None,
                         payload=_payload(principal, user_id=user.id, username=user.username,
                                          **({} if principal else {"via": "console"})),
                         hash_alg=self.settings.audit_hash)
            return password

    def unlock(self, principal: Principal | None, user_id: int) -> PersonView:
        with self.db.unit_of_work() as s:
            user = self._account_target(s, principal, "account.unlock", user_id)
            user.failed_logins, user.locked_until = 0, None
            audit.append(s, action="account.unlock", actor_id=principal.user_id if principal else None,
                         payload=_payload(principal, user_id=user.id, username=user.username,
                                          **({} if principal else {"via": "console"})),
                         hash_alg=self.settings.audit_hash)
            return self._views(s, [user])[0]

    def rekey(self, *, progress=None) -> dict:
        """Re-encrypt every ID and phone number with the current data key and recompute the
        lookup hashes, in one transaction (all or nothing); audited without any value."""
        with self.db.unit_of_work() as s:
            rows = s.execute(select(User.id, User.id_number_enc, User.phone_enc).where(
                or_(User.id_number_enc.is_not(None), User.phone_enc.is_not(None)))).all()
            changed = 0
            for n, (uid, id_enc, phone_enc) in enumerate(rows, 1):
                values = {}
                for field, token in (("id_number", id_enc), ("phone", phone_enc)):
                    if token:
                        clear, _current = self.cipher.open(field, token)
                        values[f"{field}_enc"] = self.cipher.encrypt(field, clear)
                        values[f"{field}_hash"] = self.cipher.lookup_hash(field, clear)
                s.execute(update(User).where(User.id == uid).values(**values))
                changed += 1
                if progress is not None and (n % 1000 == 0 or n == len(rows)):
                    progress(n, len(rows))
            audit.append(s, action="data_key.rekey", payload={"records": changed, "via": "console"},
                         hash_alg=self.settings.audit_hash)
            return {"records": changed}

    def id_of(self, username: str) -> int:
        with self.db.read() as s:
            user_id = s.scalar(select(User.id).where(User.username == username))
        if user_id is None:
            raise NotFound(f"用户 {username} 不存在")
        return user_id

    @staticmethod
    def _account_target(s: Session, principal: Principal | None, perm: str, user_id: int) -> User:
        if principal is None:
            user = s.get(User, user_id)
            if user is None:
                raise NotFound("用户不存在")
            return user
        principal.require(perm)
        return principal.require_person(s, "user.read", s.get(User, user_id))

    # -- helpers ----------------------------------------------------------------------------
    def _apply(self, s: Session, principal: Principal | None, user: User, data: PersonFields, *,
               creating: bool) -> dict:
        """Copy `data` onto `user`, validating each field; returns what changed (sensitive
        values never appear in it, only that they changed)."""
        problems: list[FieldProblem] = []
        changes: dict = {}
        given = data.model_fields_set | ({"username", "display_name"} if creating else set())

        def put(attr: str, value, shown=None) -> None:
            if getattr(user, attr) != value:
                changes[attr] = shown if shown is not None else (value.isoformat() if isinstance(value, date)
                                                                  else value)
                setattr(user, attr, value)

        if "display_name" in given and data.display_name:
            put("display_name", data.display_name.strip())
            user.name_pinyin = pinyin_key(user.display_name)
        if "member_code" in given:
            code = (data.member_code or "").strip() or None
            if code and s.scalar(select(User.id).where(User.member_code == code, User.id != (user.id or -1))):
                problems.append(FieldProblem("member_code", f"党员编号 {code} 已被他人使用"))
            else:
                put("member_code", code)
        placed: dict[str, tuple[str, OrgUnit | None]] = {}
        for field, kinds, attr in (("department_code", ADMIN_KINDS, "department_id"),
                                   ("branch_code", PARTY_KINDS, "branch_id")):
            if field not in given:
                continue
            code = getattr(data, field)
            org = s.scalar(select(OrgUnit).where(OrgUnit.code == code)) if code else None
            if code and (org is None or org.kind not in kinds):
                what = "行政组织（单位或科室）" if kinds == ADMIN_KINDS else "党组织"
                problems.append(FieldProblem(field, f"没有编码为 {code} 的{what}"))
                continue
            if getattr(user, attr) != (org.id if org else None):
                placed[field] = (attr, org)
                put(attr, org.id if org else None)
        if principal is not None and placed:
            # A record stays the caller's to keep: after the change its department or its
            # party organisation must lie in the caller's scope. (A branch secretary files a
            # member of any 科室, but cannot hand the record to another branch.)
            scope = principal.require("user.write")
            final = [o for o in (s.get(OrgUnit, user.department_id) if user.department_id else None,
                                 s.get(OrgUnit, user.branch_id) if user.branch_id else None) if o is not None]
            if not any(scope.covers_org(o.id, o.path) for o in final):
                problems += [FieldProblem(f, f"{o.name if o else '（空）'} 不在您的管理范围内")
                             for f, (_a, o) in placed.items()]
        if "party_status" in given and data.party_status:
            put("party_status", data.party_status)
        if "party_status_since" in given:
            put("party_status_since", data.party_status_since)
        if "email" in given:
            put("email", data.email)
        if "status" in given and data.status:
            put("status", data.status)
        if "id_number" in given:
            try:
                self._set_sensitive(s, user, "id_number", data.id_number, changes)
            except InvalidInput as exc:
                problems.append(FieldProblem("id_number", exc.message))
        if "phone" in given:
            try:
                self._set_sensitive(s, user, "phone", data.phone, changes)
            except InvalidInput as exc:
                problems.append(FieldProblem("phone", exc.message))
        if problems:
            raise InvalidInput("人员信息有误", errors=problems)
        return changes

    def _set_sensitive(self, s: Session, user: User, field: str, value: str | None, changes: dict) -> None:
        if not value:
            if getattr(user, f"{field}_enc") is not None:
                setattr(user, f"{field}_enc", None)
                setattr(user, f"{field}_hash", None)
                changes[field] = "cleared"
            return
        clean = check_id_number(value) if field == "id_number" else check_phone(value)
        digest = self.cipher.lookup_hash(field, clean)
        if digest == getattr(user, f"{field}_hash"):
            return
        if field == "id_number":
            other = s.scalar(select(User.display_name).where(User.id_number_hash == digest, User.id != (user.id or -1)))
            if other is not None:
                raise InvalidInput("该身份证号已登记在另一人员档案中（一人一档）")
            user.birth_date, user.gender = id_number_facts(clean)
        setattr(user, f"{field}_enc", self.cipher.encrypt(field, clean))
        setattr(user, f"{field}_hash", digest)
        changes[field] = "changed"

    def _record_status(self, s: Session, principal: Principal | None, user: User, note: str | None) -> None:
        s.add(PartyStatusHistory(user_id=user.id, status=user.party_status, since=user.party_status_since,
                                 note=note, recorded_by=principal.user_id if principal else None))

    def _clear(self, user: User, field: str) -> str | None:
        token = getattr(user, f"{field}_enc")
        return self.cipher.decrypt(field, token) if token else None

    def _views(self, s: Session, users: list[User]) -> list[PersonView]:
        masker = Masker(load_policy(s, self.settings).mask_patterns())
        org_ids = {i for u in users for i in (u.department_id, u.branch_id) if i is not None}
        names = dict(s.execute(select(OrgUnit.id, OrgUnit.name).where(OrgUnit.id.in_(org_ids))).all()) if org_ids \
            else {}
        roles: dict[int, set[str]] = {}
        if users:
            for uid, key in s.execute(select(UserRole.user_id, UserRole.role_key)
                                      .where(UserRole.user_id.in_([u.id for u in users]))):
                roles.setdefault(uid, set()).add(key)
        at = now()
        return [PersonView(
            u.id, u.username, u.display_name, u.member_code, u.department_id, names.get(u.department_id),
            u.branch_id, names.get(u.branch_id), u.party_status, PARTY_STATUS_NAMES.get(u.party_status, u.party_status),
            u.party_status_since, u.gender, u.birth_date, masker.mask("id_number", self._clear(u, "id_number")),
            masker.mask("phone", self._clear(u, "phone")), u.email, u.status, u.password_hash is not None,
            u.locked_until is not None and as_utc(u.locked_until) > at, sorted(roles.get(u.id, ())))
            for u in users]


def _payload(principal: Principal | None, **payload) -> dict:
    return principal.audit_payload(**payload) if principal else payload
