"""`djflow init`: migrate the schema, sync the built-in roles and shipped definitions, create the
first admin and, with --demo, the 示范局 organisation with its people."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import audit
from engine.audit.keys import LogKey, ensure_key
from engine.config import Settings
from engine.db import Database
from engine.definitions import Deployed, deploy_paths
from engine.identity.passwords import generate_password, hash_password
from engine.identity.permissions import BUILTIN_ROLES
from engine.identity.protect import make_id_number
from engine.migrate import upgrade
from engine.models import InCharge, OrgUnit, Position, Role, User, UserRole
from engine.org.names import pinyin_key
from engine.org.people import People, PersonCreate

# (code, name, kind, parent code)
DEMO_ORGS = [
    ("sfj", "示范局", "unit", None),
    ("sfj-bgs", "办公室", "department", "sfj"),
    ("sfj-cwk", "财务科", "department", "sfj"),
    ("sfj-jgdw", "机关党委", "party_committee", None),
    ("sfj-jgdw-zb1", "第一党支部", "branch", "sfj-jgdw"),
    ("sfj-jgdw-zb2", "第二党支部", "branch", "sfj-jgdw"),
    ("sfj-jgdw-zb1-xz1", "第一党支部第一党小组", "party_group", "sfj-jgdw-zb1"),
]
# (username, name, department, branch, party status, [(role, org scope)], positions [(org, key)], in charge of [org])
DEMO_USERS = [
    ("auditor", "审计员", "sfj-bgs", None, "none", [("auditor", None)], [], []),
    ("secadmin", "冯二", "sfj-bgs", None, "none", [("secadmin", None)], [], []),
    ("designer", "陈三", "sfj-bgs", "sfj-jgdw-zb1", "full", [("designer", "sfj"), ("staff", None)],
     [("sfj-jgdw-zb1", "organization_member")], []),
    ("staff1", "赵六", "sfj-cwk", "sfj-jgdw-zb1", "full", [("staff", None)], [("sfj-jgdw-zb1-xz1", "group_leader")], []),
    ("kezhang", "钱七", "sfj-cwk", "sfj-jgdw-zb1", "full", [("staff", None)],
     [("sfj-cwk", "head"), ("sfj-jgdw-zb1", "propaganda_member")], []),
    ("fenguan", "孙八", "sfj", "sfj-jgdw-zb1", "full", [("staff", None)], [("sfj", "deputy_head")], ["sfj-cwk"]),
    ("juzhang", "周九", "sfj", "sfj-jgdw-zb1", "full", [("staff", None)], [("sfj", "head")], []),
    ("shuji", "吴十", "sfj-bgs", "sfj-jgdw-zb1", "full", [("org_admin", "sfj-jgdw-zb1"), ("staff", None)],
     [("sfj-jgdw-zb1", "secretary")], []),
    ("dangwei", "郑一", "sfj-bgs", "sfj-jgdw-zb1", "full", [("org_admin", "sfj-jgdw"), ("staff", None)],
     [("sfj-jgdw", "secretary")], []),
    ("zb2shuji", "褚四", "sfj-bgs", "sfj-jgdw-zb2", "full", [("org_admin", "sfj-jgdw-zb2"), ("staff", None)],
     [("sfj-jgdw-zb2", "secretary")], []),
    ("zb2member", "卫五", "sfj-bgs", "sfj-jgdw-zb2", "probationary", [("staff", None)], [], []),
    # 入党申请人: starts 发展党员 in the demo (the branch of his unit receives the application)
    ("rudang", "蒋二", "sfj-cwk", "sfj-jgdw-zb1", "none", [("staff", None)], [], []),
]
DEMO_TERM_START = date(2024, 7, 1)


@dataclass
class InitReport:
    migrations: list[str] = field(default_factory=list)
    deployed: list[Deployed] = field(default_factory=list)
    # username -> password, only for accounts created by this run (shown once, never stored in clear)
    passwords: dict[str, str] = field(default_factory=dict)
    demo_created: bool = False
    audit_key: LogKey | None = None


def init(db: Database, settings: Settings, *, demo: bool = False,
         on_step: Callable[[str], None] | None = None) -> InitReport:
    report = InitReport()
    say = on_step or (lambda _msg: None)

    def migrated(step: str) -> None:
        report.migrations.append(step)
        say(f"迁移 {step}")

    upgrade(db, migrated)
    with db.unit_of_work() as s:
        sync_builtin_roles(s)
        if s.scalar(select(User.id).where(User.username == "admin")) is None:
            admin_password = settings.admin_password or generate_password()
            admin = User(username="admin", display_name="系统管理员", name_pinyin=pinyin_key("系统管理员"),
                         password_hash=hash_password(admin_password, settings), must_change_password=True)
            s.add(admin)
            s.flush()
            s.add(UserRole(user_id=admin.id, role_key="sysadmin"))
            audit.append(s, action="user.create", actor_id=None, payload={"username": "admin", "role": "sysadmin"},
                         hash_alg=settings.audit_hash)
            if not settings.admin_password:
                report.passwords["admin"] = admin_password
        report.audit_key, created = ensure_key(s, settings)
        if created:
            say(f"生成审计签名密钥 {report.audit_key.key_id}（{report.audit_key.alg}）于 {settings.audit_key_dir}")
        say("部署 process_definitions/ 与 forms/")
        report.deployed = deploy_paths(s, [settings.forms_dir, settings.process_dir], settings)
        demo_missing = demo and s.scalar(select(OrgUnit.id).where(OrgUnit.code == "sfj")) is None
    if demo_missing:
        password = settings.demo_password or generate_password()
        _create_demo(db, settings, password)
        report.demo_created = True
        if not settings.demo_password:
            report.passwords.update({u[0]: password for u in DEMO_USERS})
        say("创建演示单位 示范局 及其人员")
    return report


def sync_builtin_roles(s: Session) -> None:
    """Create the built-in roles, and bring their permissions and scope up to this version."""
    existing = {r.key: r for r in s.scalars(select(Role))}
    for r in BUILTIN_ROLES:
        role = existing.get(r.key) or Role(key=r.key)
        role.name, role.data_scope, role.permissions = r.name, r.data_scope, list(r.permissions)
        role.builtin, role.description = True, r.description
        s.add(role)
    s.flush()


def _create_demo(db: Database, settings: Settings, password: str) -> None:
    with db.unit_of_work() as s:
        orgs: dict[str, OrgUnit] = {}
        for order, (code, name, kind, parent) in enumerate(DEMO_ORGS):
            org = OrgUnit(code=code, name=name, kind=kind, parent_id=orgs[parent].id if parent else None,
                          sort_order=order, approval_authority=kind == "party_committee")
            s.add(org)
            s.flush()
            org.path = (orgs[parent].path if parent else "/") + f"{org.id}/"
            orgs[code] = org
    people = People(db, settings)
    for n, (username, name, dept, branch, party, _roles, _pos, _ic) in enumerate(DEMO_USERS, 1):
        people.create(None, PersonCreate(
            username=username, display_name=name, department_code=dept, branch_code=branch, party_status=party,
            member_code=f"SFJ-{n:04d}" if party != "none" else None,
            id_number=make_id_number("110101", date(1970 + n * 2, n % 12 + 1, n + 1), 100 + n),
            phone=f"1380000{n:04d}"))
    with db.unit_of_work() as s:
        orgs = {o.code: o for o in s.scalars(select(OrgUnit))}
        for username, _name, _dept, _branch, _party, roles, positions, in_charge in DEMO_USERS:
            user = s.scalar(select(User).where(User.username == username))
            user.password_hash, user.must_change_password = hash_password(password, settings), True
            for role, org_code in roles:
                s.add(UserRole(user_id=user.id, role_key=role, org_unit_id=orgs[org_code].id if org_code else None))
            for org_code, key in positions:
                s.add(Position(org_unit_id=orgs[org_code].id, key=key, user_id=user.id, starts_on=DEMO_TERM_START))
            for org_code in in_charge:
                s.add(InCharge(leader_user_id=user.id, org_unit_id=orgs[org_code].id))
        audit.append(s, action="demo.create", payload={"users": [u[0] for u in DEMO_USERS],
                                                       "orgs": [o[0] for o in DEMO_ORGS]},
                     hash_alg=settings.audit_hash)
