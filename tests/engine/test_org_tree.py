"""The org trees, positions with terms, 分管 and the rules.md §5 checks, at the engine level."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from engine import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    OrgTree,
    OrgUnitCreate,
    OrgUnitUpdate,
    People,
    PersonCreate,
    PositionAssign,
    Positions,
    WorkflowEngine,
)
from engine.identity.principal import Principal, load_principal
from engine.models import AuditEvent, InCharge, OrgUnit, OrgUnitHistory, Position, SystemSetting, User
from engine.org.checks import check_org, today
from tests.helpers import counts


def who(engine: WorkflowEngine, username: str) -> Principal:
    """A fresh principal (grants and own paths as they are now in the database)."""
    with engine.db.read() as s:
        return load_principal(s, s.scalar(select(User.id).where(User.username == username)))


def org_id(engine: WorkflowEngine, code: str) -> int:
    with engine.db.read() as s:
        return s.scalar(select(OrgUnit.id).where(OrgUnit.code == code))


def user_id(engine: WorkflowEngine, username: str) -> int:
    with engine.db.read() as s:
        return s.scalar(select(User.id).where(User.username == username))


def fingerprint(engine: WorkflowEngine) -> dict:
    with engine.db.read() as s:
        extra = {"history": s.scalar(select(func.count()).select_from(OrgUnitHistory)),
                 "paths": sorted(s.execute(select(OrgUnit.id, OrgUnit.parent_id, OrgUnit.path, OrgUnit.status)).all()),
                 "in_charge": s.scalar(select(func.count()).select_from(InCharge))}
    return {**counts(engine), **extra}


def member(engine: WorkflowEngine, username: str, branch: str, status: str = "full") -> int:
    view, _ = People(engine.db, engine.settings).create(None, PersonCreate(
        username=username, display_name=f"党员{username}", branch_code=branch, department_code="sfj-cwk",
        party_status=status))
    return view.id


def problems(exc: pytest.ExceptionInfo) -> dict[str, str]:
    return {p.field: p.reason for p in exc.value.errors}


# -- the tree ------------------------------------------------------------------------------------
def test_a_move_rewrites_the_subtree_keeps_history_and_scoping_follows(engine):
    tree, admin = OrgTree(engine.db, engine.settings), who(engine, "admin")
    jgdw, zb1, zb2 = (org_id(engine, c) for c in ("sfj-jgdw", "sfj-jgdw-zb1", "sfj-jgdw-zb2"))
    zzb = tree.create(admin, OrgUnitCreate(code="sfj-jgdw-zzb", name="机关第一党总支", kind="general_branch",
                                           parent_id=jgdw, established_on=date(2020, 1, 1), sort_order=10))
    group = tree.create(admin, OrgUnitCreate(code="sfj-jgdw-zb1-g1", name="第一党小组", kind="party_group",
                                             parent_id=zb1))
    old_zb1_path = tree.get(admin, zb1).path
    assert group.path == f"{old_zb1_path}{group.id}/"

    moved = tree.move(admin, zb1, zzb.id)
    assert moved.parent_id == zzb.id and moved.path == f"{zzb.path}{zb1}/"
    assert tree.get(admin, group.id).path == f"{zzb.path}{zb1}/{group.id}/"
    assert tree.get(admin, zb2).path == f"/{jgdw}/{zb2}/"  # siblings untouched

    history = tree.history(admin, zb1)
    assert [(h.action, h.old_parent_id, h.new_parent_id, h.old_path, h.new_path) for h in history] == [
        ("move", jgdw, zzb.id, old_zb1_path, moved.path)]
    # zb1, the demo's 第一党支部第一党小组 and the new group
    assert history[0].changes == {"subtree_units": 3} and history[0].changed_by_name == "系统管理员"
    assert [h.action for h in tree.history(admin, group.id)] == ["create"]
    with engine.db.read() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "org.move")).one()
    assert event.payload["old_path"] == old_zb1_path and event.payload["new_parent_id"] == zzb.id

    # the nested tree follows, siblings in sort order
    roots = {n.code: n for n in tree.tree(admin)}
    committee = roots["sfj-jgdw"]
    assert [c.code for c in committee.children] == ["sfj-jgdw-zb2", "sfj-jgdw-zzb"]
    assert [c.code for c in committee.children[1].children] == ["sfj-jgdw-zb1"]
    assert [c.code for c in committee.children[1].children[0].children] == ["sfj-jgdw-zb1-g1", "sfj-jgdw-zb1-xz1"]

    # scopes are paths: the branch secretary still reaches the branch and its group, not zb2;
    # the 党委 secretary reaches everything below the moved branch through the new path
    shuji, dangwei = who(engine, "shuji"), who(engine, "dangwei")
    seen = {o.code for o in tree.list(shuji, size=500).items if not o.limited}
    assert {"sfj-jgdw-zb1", "sfj-jgdw-zb1-g1"} <= seen and "sfj-jgdw-zb2" not in seen
    with pytest.raises(NotFound):
        tree.get(shuji, zb2)
    assert tree.get(dangwei, group.id).limited is False
    tree.update(dangwei, group.id, OrgUnitUpdate(name="第一党小组（财务）"))
    assert tree.get(shuji, group.id).name == "第一党小组（财务）"
    # above the branch, the secretary sees names only
    assert tree.get(shuji, zzb.id).limited is True and tree.get(shuji, zzb.id).established_on is None


def test_cycles_and_wrong_kind_parents_are_refused_with_the_field_and_nothing_written(engine):
    tree, admin = OrgTree(engine.db, engine.settings), who(engine, "admin")
    jgdw, zb1, sfj, cwk = (org_id(engine, c) for c in ("sfj-jgdw", "sfj-jgdw-zb1", "sfj", "sfj-cwk"))
    group = tree.create(admin, OrgUnitCreate(code="g1", name="第一党小组", kind="party_group", parent_id=zb1))
    before = fingerprint(engine)

    with pytest.raises(InvalidInput) as exc:
        tree.move(admin, jgdw, group.id)
    assert "环" in problems(exc)["parent_id"]
    with pytest.raises(InvalidInput) as exc:
        tree.move(admin, zb1, zb1)
    assert "环" in problems(exc)["parent_id"]
    with pytest.raises(InvalidInput) as exc:
        tree.move(admin, zb1, sfj)
    assert problems(exc)["parent_id"] == "党支部只能设在党总支、党委之下，不能设在单位之下"
    with pytest.raises(InvalidInput) as exc:
        tree.move(admin, group.id, jgdw)
    assert problems(exc)["parent_id"] == "党小组只能设在党支部之下，不能设在党委之下"
    with pytest.raises(InvalidInput) as exc:
        tree.move(admin, cwk, zb1)
    assert "科室只能设在单位、科室之下" in problems(exc)["parent_id"]
    with pytest.raises(InvalidInput) as exc:
        tree.move(admin, zb1, None)
    assert problems(exc)["parent_id"] == "党支部不能作为顶级组织，只能设在党总支、党委之下"
    with pytest.raises(InvalidInput) as exc:
        tree.move(admin, zb1, 999999)
    assert "不存在" in problems(exc)["parent_id"]
    with pytest.raises(InvalidInput) as exc:
        tree.create(admin, OrgUnitCreate(code="zzb", name="总支", kind="general_branch", parent_id=zb1))
    assert problems(exc)["parent_id"] == "党总支只能设在党委之下，不能设在党支部之下"
    # approval authority only on a 党委 (a 党总支 never approves 预备党员)
    with pytest.raises(InvalidInput) as exc:
        tree.create(admin, OrgUnitCreate(code="zzb", name="总支", kind="general_branch", parent_id=jgdw,
                                         approval_authority=True))
    assert "党总支不能审批预备党员" in problems(exc)["approval_authority"]
    with pytest.raises(InvalidInput) as exc:
        tree.update(admin, zb1, OrgUnitUpdate(approval_authority=True))
    assert "approval_authority" in problems(exc)
    with pytest.raises(Conflict) as exc:
        tree.create(admin, OrgUnitCreate(code="sfj-cwk", name="重复", kind="department", parent_id=sfj))
    assert problems(exc) == {"code": "已存在"}
    assert fingerprint(engine) == before


def test_dissolving_is_refused_while_children_or_members_remain(sqlite_engine):
    engine = sqlite_engine
    tree, positions, admin = OrgTree(engine.db, engine.settings), Positions(engine.db, engine.settings), \
        who(engine, "admin")
    jgdw, zb1 = org_id(engine, "sfj-jgdw"), org_id(engine, "sfj-jgdw-zb1")
    before = fingerprint(engine)
    with pytest.raises(Conflict) as exc:
        tree.update(admin, jgdw, OrgUnitUpdate(status="dissolved"))
    assert "2 个未撤销的下级组织：第一党支部、第二党支部" in exc.value.errors[0].reason
    with pytest.raises(Conflict) as exc:
        tree.update(admin, zb1, OrgUnitUpdate(status="dissolved", name="改名"))
    reasons = [(p.field, p.reason) for p in exc.value.errors]
    assert [f for f, _ in reasons] == ["status", "status"]  # its 党小组 and its 8 people
    assert "第一党支部第一党小组" in reasons[0][1] and "8 名人员" in reasons[1][1]
    assert fingerprint(engine) == before

    # an empty branch dissolves; its posts end and its 分管 goes
    empty = tree.create(admin, OrgUnitCreate(code="zb3", name="第三党支部", kind="branch", parent_id=jgdw))
    shuji = user_id(engine, "shuji")
    positions.assign(admin, PositionAssign(org_unit_id=empty.id, key="secretary", user_id=shuji,
                                           starts_on=today() - timedelta(days=30)))
    positions.add_in_charge(admin, empty.id, user_id(engine, "dangwei"))
    done = tree.update(admin, empty.id, OrgUnitUpdate(status="dissolved"))
    assert done.status == "dissolved"
    assert positions.list(admin, org_id=empty.id) == []
    assert positions.in_charge(admin, empty.id) == []
    last = tree.history(admin, empty.id)[-1]
    assert last.action == "dissolve" and len(last.changes["ended_positions"]) == 1
    assert empty.id not in {n.id for n in tree.tree(admin, root_id=jgdw)[0].children}
    with pytest.raises(InvalidInput):
        tree.create(admin, OrgUnitCreate(code="g9", name="小组", kind="party_group", parent_id=empty.id))


def test_out_of_scope_units_cannot_be_seen_or_changed(engine):
    tree, positions = OrgTree(engine.db, engine.settings), Positions(engine.db, engine.settings)
    shuji, staff1 = who(engine, "shuji"), who(engine, "staff1")
    zb1, zb2, jgdw = (org_id(engine, c) for c in ("sfj-jgdw-zb1", "sfj-jgdw-zb2", "sfj-jgdw"))
    before = fingerprint(engine)

    listed = {o.code: o for o in tree.list(shuji, size=500).items}
    assert "sfj-jgdw-zb2" not in listed and listed["sfj-jgdw-zb1"].limited is False
    assert listed["sfj-jgdw"].limited is True and listed["sfj-jgdw"].approval_authority is None
    assert tree.list(shuji, parent_id=jgdw).total == 1
    assert "sfj-jgdw-zb2" not in str(tree.tree(shuji))
    for call in (lambda: tree.get(shuji, zb2), lambda: tree.history(shuji, zb2), lambda: tree.checks(shuji, zb2),
                 lambda: tree.update(shuji, zb2, OrgUnitUpdate(name="x")), lambda: tree.move(shuji, zb2, jgdw),
                 lambda: positions.list(shuji, org_id=zb2), lambda: positions.in_charge(shuji, zb2),
                 lambda: positions.assign(shuji, PositionAssign(org_unit_id=zb2, key="committee_member",
                                                                user_id=user_id(engine, "zb2shuji"))),
                 lambda: tree.history(shuji, 999999), lambda: tree.get(shuji, jgdw + 100000)):
        with pytest.raises(NotFound, match="不存在或不在您的管理范围内"):
            call()
    # a move into the other branch's area is refused the same way
    group = tree.create(shuji, OrgUnitCreate(code="g1", name="第一党小组", kind="party_group", parent_id=zb1))
    with pytest.raises(InvalidInput) as exc:
        tree.move(shuji, group.id, zb2)
    assert problems(exc)["parent_id"] == "上级组织不存在或不在您的管理范围内"
    with pytest.raises(Forbidden):  # a root needs an installation-wide scope
        tree.create(shuji, OrgUnitCreate(code="x", name="x", kind="party_committee"))
    # holders outside the caller's reach are refused like unknown ones
    with pytest.raises(InvalidInput) as exc:
        positions.assign(shuji, PositionAssign(org_unit_id=zb1, key="committee_member",
                                               user_id=user_id(engine, "zb2member")))
    assert problems(exc)["user_id"] == "人员不存在或不在您的管理范围内"

    # staff: their own department and branch, and the names above them; no writes
    seen = {o.code: o.limited for o in tree.list(staff1, size=500).items}
    assert seen == {"sfj": True, "sfj-cwk": False, "sfj-jgdw": True, "sfj-jgdw-zb1": False}
    assert [(n.code, [c.code for c in n.children]) for n in tree.tree(staff1)] == [
        ("sfj", ["sfj-cwk"]), ("sfj-jgdw", ["sfj-jgdw-zb1"])]
    assert sorted(p.username for p in positions.list(staff1, org_id=zb1)) == ["designer", "kezhang", "shuji"]
    with pytest.raises(NotFound):
        positions.list(staff1, org_id=jgdw)  # names only above their own units
    with pytest.raises(Forbidden):
        tree.update(staff1, zb1, OrgUnitUpdate(name="x"))
    with pytest.raises(Forbidden):
        tree.create(staff1, OrgUnitCreate(code="g2", name="g2", kind="party_group", parent_id=zb1))
    with pytest.raises(Forbidden):
        positions.assign(staff1, PositionAssign(org_unit_id=zb1, key="committee_member", user_id=staff1.user_id))
    assert fingerprint(engine)["paths"] != before["paths"]  # only shuji's group was added
    assert fingerprint(engine)["positions"] == before["positions"]


# -- positions and the §5 rules -------------------------------------------------------------------
# the demo's 支委会 of 第一党支部 is 书记 吴十, 组织委员 陈三 and 宣传委员 钱七; these make it 7
COMMITTEE = ["deputy_secretary", "discipline_member", "committee_member", "committee_member"]


def test_the_eighth_committee_member_is_refused(engine):
    positions, admin = Positions(engine.db, engine.settings), who(engine, "admin")
    zb1 = org_id(engine, "sfj-jgdw-zb1")
    extra = member(engine, "dangyuan8", "sfj-jgdw-zb1")
    people = ["staff1", "fenguan", "juzhang", "dangwei"]
    for key, username in zip(COMMITTEE, people, strict=True):
        done = positions.assign(admin, PositionAssign(org_unit_id=zb1, key=key, user_id=user_id(engine, username),
                                                      starts_on=date(2024, 7, 1), ends_on=date(2027, 6, 30)))
        assert done.warnings == [], done.warnings
    assert len({p.user_id for p in positions.list(admin, org_id=zb1)}) == 7
    before = fingerprint(engine)
    with pytest.raises(InvalidInput) as exc:
        positions.assign(admin, PositionAssign(org_unit_id=zb1, key="committee_member", user_id=extra))
    assert problems(exc)["key"] == "第一党支部的支部委员会已有 7 人，一般不超过 7 人，不能再增加委员"
    assert fingerprint(engine) == before
    # a member already on the committee may take a second post
    positions.assign(admin, PositionAssign(org_unit_id=zb1, key="committee_member", user_id=user_id(engine, "kezhang")))
    # once a term ends, the place is free again
    old = positions.list(admin, org_id=zb1, key="discipline_member")[0]
    positions.end(admin, old.id)
    positions.assign(admin, PositionAssign(org_unit_id=zb1, key="discipline_member", user_id=extra))


def test_post_and_unit_kinds_must_fit_and_single_posts_have_one_holder(sqlite_engine):
    engine = sqlite_engine
    positions, admin = Positions(engine.db, engine.settings), who(engine, "admin")
    zb1, zb2, cwk = (org_id(engine, c) for c in ("sfj-jgdw-zb1", "sfj-jgdw-zb2", "sfj-cwk"))
    before = fingerprint(engine)
    for org, key, says in ((zb1, "head", "负责人只能设在单位、科室，第一党支部是党支部"),
                           (cwk, "secretary", "书记只能设在党委、党总支、党支部，财务科是科室"),
                           (zb1, "group_leader", "组长只能设在党小组"),
                           (zb1, "chairman", "未知职务")):
        with pytest.raises(InvalidInput) as exc:
            positions.assign(admin, PositionAssign(org_unit_id=org, key=key, user_id=user_id(engine, "staff1")))
        assert says in problems(exc)["key"]
    with pytest.raises(InvalidInput) as exc:
        positions.assign(admin, PositionAssign(org_unit_id=zb1, key="secretary", user_id=user_id(engine, "staff1")))
    assert problems(exc)["key"].startswith("第一党支部在该任期内已有书记：吴十（2024-07-01 起）")
    # a 预备党员 has no right to be elected
    with pytest.raises(InvalidInput) as exc:
        positions.assign(admin, PositionAssign(org_unit_id=zb2, key="committee_member",
                                               user_id=user_id(engine, "zb2member")))
    assert "不是正式党员" in problems(exc)["user_id"]
    # fewer than 7 正式党员: one 副书记 only
    a, b = member(engine, "zb2a", "sfj-jgdw-zb2"), member(engine, "zb2b", "sfj-jgdw-zb2")
    before = fingerprint(engine)
    positions.assign(admin, PositionAssign(org_unit_id=zb2, key="deputy_secretary", user_id=a))
    with pytest.raises(InvalidInput) as exc:
        positions.assign(admin, PositionAssign(org_unit_id=zb2, key="deputy_secretary", user_id=b))
    assert "只有 3 名正式党员" in problems(exc)["key"]
    assert fingerprint(engine)["positions"] == before["positions"] + 1
    # the head of a 科室 is its 科长
    head = positions.list(admin, org_id=cwk)[0]
    assert (head.key, head.key_name, head.username, head.current) == ("head", "科长", "kezhang", True)


def test_warnings_are_reported_with_their_rule_and_source(sqlite_engine):
    engine = sqlite_engine
    tree, positions, admin = OrgTree(engine.db, engine.settings), Positions(engine.db, engine.settings), \
        who(engine, "admin")
    zb1, zb2, jgdw = (org_id(engine, c) for c in ("sfj-jgdw-zb1", "sfj-jgdw-zb2", "sfj-jgdw"))

    assert tree.checks(admin, zb1) == []  # the demo's 第一党支部 has its 支委会
    for post in [p for p in positions.list(admin, org_id=zb1) if p.key != "secretary"]:
        positions.end(admin, post.id)  # without it, 7 正式党员 call for one
    found = {f.code: f for f in tree.checks(admin, zb1)}
    assert set(found) == {"committee_required"}
    assert (found["committee_required"].level, found["committee_required"].rule) == ("warning", "[C]")
    assert "S90" in found["committee_required"].source and "7 名正式党员" in found["committee_required"].message
    assert {f.code for f in tree.checks(admin, zb2)} == {"branch_too_small"}
    new = tree.create(admin, OrgUnitCreate(code="zb3", name="第三党支部", kind="branch", parent_id=jgdw))
    assert {f.code for f in tree.checks(admin, new.id)} == {"no_secretary", "branch_too_small"}
    assert {(f.org_name, f.code) for f in tree.checks(admin, jgdw, recursive=True)} >= {
        ("第一党支部", "committee_required"), ("第二党支部", "branch_too_small"), ("第三党支部", "no_secretary")}

    # an assignment meeting a "generally" rule goes through, with the warning
    deputy = member(engine, "zb2a", "sfj-jgdw-zb2")
    done = positions.assign(admin, PositionAssign(org_unit_id=zb2, key="deputy_secretary", user_id=deputy,
                                                  starts_on=date(2026, 1, 1), ends_on=date(2030, 12, 31)))
    assert [(w.code, w.level) for w in done.warnings] == [("term_too_long", "warning")]
    assert "任期一般为 3 年" in done.warnings[0].message
    done = positions.assign(admin, PositionAssign(org_unit_id=zb2, key="organization_member", user_id=deputy))
    assert [w.code for w in done.warnings] == ["committee_not_expected"]

    # a branch over 50 members; a term that has run past its years
    with engine.db.unit_of_work() as s:
        s.add_all(User(username=f"m{i}", display_name=f"党员{i}", branch_id=zb2, party_status="probationary")
                  for i in range(50))
        old = s.scalar(select(Position).where(Position.org_unit_id == zb1, Position.key == "secretary"))
        old.starts_on = today() - timedelta(days=3 * 366 + 1)
    assert {"branch_too_large", "branch_too_small"} <= {f.code for f in check_org_codes(engine, zb2)}
    assert "term_overdue" in {f.code for f in check_org_codes(engine, zb1)}
    # term years are a setting keyed by kind
    with engine.db.unit_of_work() as s:
        s.add(SystemSetting(key="org_term_years", value={"branch": 5}))
    assert "term_overdue" not in {f.code for f in check_org_codes(engine, zb1)}


def check_org_codes(engine, org):
    with engine.db.read() as s:
        return check_org(s, org)


def test_terms_and_in_charge_are_audited(sqlite_engine):
    engine = sqlite_engine
    positions, admin = Positions(engine.db, engine.settings), who(engine, "admin")
    cwk, bgs = org_id(engine, "sfj-cwk"), org_id(engine, "sfj-bgs")
    fenguan, juzhang = user_id(engine, "fenguan"), user_id(engine, "juzhang")
    head = positions.list(admin, org_id=cwk)[0]
    ended = positions.end(admin, head.id)
    assert ended.ends_on == today() - timedelta(days=1) and ended.current is False
    assert positions.list(admin, org_id=cwk) == []
    assert [p.id for p in positions.list(admin, org_id=cwk, current=False)] == [head.id]
    with pytest.raises(Conflict):
        positions.end(admin, head.id)
    assert [p.key for p in positions.list(admin, user_id=fenguan)] == ["deputy_head"]

    assert [v.username for v in positions.in_charge(admin, cwk)] == ["fenguan"]
    assert positions.in_charge(admin, cwk)[0].posts == ["示范局副局长"]
    positions.add_in_charge(admin, bgs, juzhang)
    with pytest.raises(Conflict):
        positions.add_in_charge(admin, bgs, juzhang)
    positions.remove_in_charge(admin, bgs, juzhang)
    with pytest.raises(NotFound):
        positions.remove_in_charge(admin, bgs, juzhang)
    with engine.db.read() as s:
        actions = [a for (a,) in s.execute(select(AuditEvent.action).order_by(AuditEvent.seq))]
    assert actions[-3:] == ["position.end", "in_charge.add", "in_charge.remove"]
