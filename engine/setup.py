"""`djflow init`: migrate the schema, sync shipped definitions, create the first admin and,
with --demo, the 示范局 organisation with its people."""
from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import audit
from engine.config import Settings
from engine.db import Database
from engine.definitions import Deployed, deploy_paths
from engine.migrate import upgrade
from engine.models import InCharge, OrgUnit, Position, Role, User, UserRole

BUILTIN_ROLES = [
    # 三员分立: the system, security and audit administrators are three different people.
    ("sysadmin", "系统管理员", "all"),
    ("secadmin", "安全管理员", "all"),
    ("auditor", "安全审计员", "all"),
    ("designer", "流程设计员", "org_and_descendants"),
    ("org_admin", "党务工作者", "org_and_descendants"),
    ("staff", "普通用户", "self"),
]

# (code, name, kind, parent code)
DEMO_ORGS = [
    ("sfj", "示范局", "unit", None),
    ("sfj-bgs", "办公室", "department", "sfj"),
    ("sfj-cwk", "财务科", "department", "sfj"),
    ("sfj-jgdw", "机关党委", "party_committee", None),
    ("sfj-jgdw-zb1", "第一党支部", "branch", "sfj-jgdw"),
]
# (username, name, department, branch, party status, role, positions [(org, key)], in charge of [org])
DEMO_USERS = [
    ("auditor", "审计员", "sfj-bgs", None, "none", "auditor", [], []),
    ("staff1", "赵六", "sfj-cwk", "sfj-jgdw-zb1", "full", "staff", [], []),
    ("kezhang", "钱七", "sfj-cwk", "sfj-jgdw-zb1", "full", "staff", [("sfj-cwk", "head")], []),
    ("fenguan", "孙八", "sfj", "sfj-jgdw-zb1", "full", "staff", [("sfj", "deputy_head")], ["sfj-cwk"]),
    ("juzhang", "周九", "sfj", "sfj-jgdw-zb1", "full", "staff", [("sfj", "head")], []),
    ("shuji", "吴十", "sfj-bgs", "sfj-jgdw-zb1", "full", "org_admin", [("sfj-jgdw-zb1", "secretary")], []),
    ("dangwei", "郑一", "sfj-bgs", "sfj-jgdw-zb1", "full", "org_admin", [("sfj-jgdw", "secretary")], []),
]



def generate_password(length: int = 16) -> str:
    alphabet = string.ascii_letters + string.digits
    while True:
        pw = "".join(secrets.choice(alphabet) for _ in range(length))
        if any(c.isdigit() for c in pw) and any(c.islower() for c in pw) and any(c.isupper() for c in pw):
            return pw


def hash_password(password: str, settings: Settings) -> str:
    hasher = PasswordHasher(time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_kib)
    return hasher.hash(password)


@dataclass
class InitReport:
    migrations: list[str] = field(default_factory=list)
    deployed: list[Deployed] = field(default_factory=list)
    # username -> password, only for accounts created by this run (shown once, never stored in clear)
    passwords: dict[str, str] = field(default_factory=dict)
    demo_created: bool = False


def init(db: Database, settings: Settings, *, demo: bool = False,
         on_step: Callable[[str], None] | None = None) -> InitReport:
    report = InitReport()
    say = on_step or (lambda _msg: None)

    def migrated(step: str) -> None:
        report.migrations.append(step)
        say(f"迁移 {step}")

    upgrade(db, migrated)
    with db.unit_of_work() as s:
        _ensure_roles(s)
        admin_password = None
        if s.scalar(select(User.id).where(User.username == "admin")) is None:
            admin_password = settings.admin_password or generate_password()
            admin = User(username="admin", display_name="系统管理员", password_hash=hash_password(admin_password, settings))
            s.add(admin)
            s.flush()
            s.add(UserRole(user_id=admin.id, role_key="sysadmin"))
            audit.append(s, action="user.create", actor_id=None, payload={"username": "admin", "role": "sysadmin"},
                         hash_alg=settings.audit_hash)
            if not settings.admin_password:
                report.passwords["admin"] = admin_password
        say("部署 process_definitions/ 与 forms/")
        report.deployed = deploy_paths(s, [settings.forms_dir, settings.process_dir], settings)
        if demo and s.scalar(select(OrgUnit.id).where(OrgUnit.code == "sfj")) is None:
            password = settings.demo_password or generate_password()
            _create_demo(s, password, settings)
            report.demo_created = True
            if not settings.demo_password:
                report.passwords.update({u[0]: password for u in DEMO_USERS})
            say("创建演示单位 示范局 及其人员")
    return report


def _ensure_roles(s: Session) -> None:
    existing = set(s.scalars(select(Role.key)))
    for key, name, scope in BUILTIN_ROLES:
        if key not in existing:
            s.add(Role(key=key, name=name, data_scope=scope))
    s.flush()


def _create_demo(s: Session, password: str, settings: Settings) -> None:
    orgs: dict[str, OrgUnit] = {}
    for order, (code, name, kind, parent) in enumerate(DEMO_ORGS):
        org = OrgUnit(code=code, name=name, kind=kind, parent_id=orgs[parent].id if parent else None,
                      sort_order=order)
        s.add(org)
        s.flush()
        org.path = (orgs[parent].path if parent else "/") + f"{org.id}/"
        orgs[code] = org
    for n, (username, name, dept, branch, party, role, positions, in_charge) in enumerate(DEMO_USERS, 1):
        user = User(username=username, display_name=name, password_hash=hash_password(password, settings),
                    department_id=orgs[dept].id, branch_id=orgs[branch].id if branch else None,
                    party_status=party, member_code=f"SFJ-{n:04d}" if party != "none" else None)
        s.add(user)
        s.flush()
        s.add(UserRole(user_id=user.id, role_key=role, org_unit_id=orgs["sfj"].id if role != "auditor" else None))
        for org_code, key in positions:
            s.add(Position(org_unit_id=orgs[org_code].id, key=key, user_id=user.id))
        for org_code in in_charge:
            s.add(InCharge(leader_user_id=user.id, org_unit_id=orgs[org_code].id))
        audit.append(s, action="user.create", payload={"username": username, "role": role, "demo": True},
                     hash_alg=settings.audit_hash)
    s.flush()
