"""一人一档 from Excel: a district's workbook imports whole; a bad one is refused whole, every
bad row named; re-imports change nothing; exports are masked."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import date

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from engine import Database, Forbidden, export_workbook, import_workbook
from engine.config import REPO_ROOT
from engine.identity.principal import load_principal
from engine.identity.protect import make_id_number
from engine.models import AuditEvent, InCharge, OrgUnit, OrgUnitHistory, PartyStatusHistory, Position, User
from engine.org.synthetic import sample_rows, write_sample
from engine.org.workbook import HEADERS, write_template
from engine.setup import init
from tests.conftest import make_settings
from tests.helpers import write_workbook

ID_IN_CLEAR = re.compile(r"(?<!\d)\d{17}[\dX](?!\d)")


def _counts(db: Database) -> dict:
    with db.read() as s:
        return {m.__tablename__: s.scalar(select(func.count()).select_from(m)) for m in
                (OrgUnit, User, Position, InCharge, PartyStatusHistory, OrgUnitHistory, AuditEvent)}


@pytest.fixture
def demo(db_url):
    settings = make_settings(db_url)
    db = Database(db_url)
    init(db, settings, demo=True)
    return db, settings


def test_a_district_of_300_branches_and_11200_members_imports(demo, tmp_path):
    db, settings = demo
    write_sample(tmp_path / "district.xlsx", 300, 11200)
    before = _counts(db)
    stages = []
    report = import_workbook(db, settings, tmp_path / "district.xlsx", progress=lambda *a: stages.append(a[0]))
    assert report.ok and report.counts["人员"]["created"] == 11200
    after = _counts(db)
    assert after["users"] - before["users"] == 11200
    assert after["party_status_history"] - before["party_status_history"] == 11200
    with db.read() as s:
        branches = s.scalar(select(func.count()).where(OrgUnit.kind == "branch", OrgUnit.code.like("dw%")))
        assert branches == 300
        # paths are right: every member's branch lies under a 党委 of the sample
        member = s.scalar(select(User).where(User.member_code == "M0000042"))
        branch = s.get(OrgUnit, member.branch_id)
        committee = s.get(OrgUnit, branch.parent_id)
        assert branch.path == f"{committee.path}{branch.id}/" and committee.kind == "party_committee"
        assert member.id_number_enc.startswith("v1:") and member.birth_date is not None
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "users.import")).one()
    assert event.payload["counts"]["人员"]["created"] == 11200
    assert "检查人员" in stages and "写入人员" in stages

    again = import_workbook(db, settings, tmp_path / "district.xlsx")
    assert again.counts["人员"] == {"created": 0, "updated": 0, "unchanged": 11200}
    assert again.counts["组织"]["unchanged"] == 300 + len([r for r in sample_rows(300, 0)["组织"]]) - 300
    assert _counts(db)["users"] == after["users"]


def test_every_bad_row_is_reported_and_nothing_is_written(demo, tmp_path):
    db, settings = demo
    rows = sample_rows(3, 12)
    people = rows["人员"]
    people[5][6] = "no-such-branch"                   # row 7: unknown branch
    people[6][3] = people[6][3][:-1] + ("0" if people[6][3][-1] != "0" else "1")  # row 8: bad check digit
    people[8][2] = ""                                 # row 10: empty name
    people.append([people[2][0], "dup-user", "重复者", "", "", "", "", "正式党员", "", ""])  # row 14: duplicate code
    rows["职务"].append(["dw000-zb00000", "宣传部长", "M0000001", "", ""])
    write_workbook(tmp_path / "bad.xlsx", rows)
    before = _counts(db)
    bad = import_workbook(db, settings, tmp_path / "bad.xlsx")
    assert not bad.ok and not bad.dry_run
    found = {(p.sheet, p.row, p.column) for p in bad.problems}
    assert found == {("人员", 14, "人员编号"), ("人员", 7, "所在党组织编码"), ("人员", 8, "身份证号"),
                     ("人员", 10, "姓名"), ("职务", len(rows["职务"]) + 1, "职务")}
    assert _counts(db) == before
    assert not any(ID_IN_CLEAR.search(p.reason) for p in bad.problems)
    # a dry run of a good workbook reports the same counts as a real one and writes nothing
    write_workbook(tmp_path / "good.xlsx", sample_rows(3, 12))
    dry = import_workbook(db, settings, tmp_path / "good.xlsx", dry_run=True)
    assert dry.ok and dry.counts["人员"]["created"] == 12 and _counts(db) == before


def test_structure_rules_and_moves(demo, tmp_path):
    db, settings = demo
    write_workbook(tmp_path / "orgs.xlsx", {"组织": [
        ["c1", "机关党委", "党委", "", 1, "", "是"], ["z1", "第一支部", "党支部", "c1", 1, "", ""],
        ["z2", "第二支部", "党支部", "z1", 2, "", ""],                     # a branch under a branch
        ["g1", "党总支", "党总支", "c1", 3, "", "是"],                      # 党总支 cannot approve
        ["x1", "甲", "党委", "x2", 4, "", ""], ["x2", "乙", "党委", "x1", 5, "", ""]]})  # a cycle
    bad = import_workbook(db, settings, tmp_path / "orgs.xlsx")
    reasons = {(p.row, p.column): p.reason for p in bad.problems}
    assert "党支部只能设在" in reasons[(4, "上级编码")]
    assert "只有党委" in reasons[(5, "审批权限")]
    assert "循环" in reasons[(6, "上级编码")] and "循环" in reasons[(7, "上级编码")]

    rows = {"组织": [["c1", "机关党委", "党委", "", 1, "", "是"], ["c2", "直属党委", "党委", "", 2, "", ""],
                   ["z1", "第一支部", "党支部", "c1", 1, "", ""]]}
    write_workbook(tmp_path / "v1.xlsx", rows)
    import_workbook(db, settings, tmp_path / "v1.xlsx")
    rows["组织"][2][3] = "c2"
    write_workbook(tmp_path / "v2.xlsx", rows)
    report = import_workbook(db, settings, tmp_path / "v2.xlsx")
    assert report.counts["组织"]["updated"] == 1
    with db.read() as s:
        z1 = s.scalar(select(OrgUnit).where(OrgUnit.code == "z1"))
        c2 = s.scalar(select(OrgUnit).where(OrgUnit.code == "c2"))
        moved = s.scalars(select(OrgUnitHistory).where(OrgUnitHistory.org_unit_id == z1.id,
                                                       OrgUnitHistory.action == "move")).one()
    assert z1.path == f"{c2.path}{z1.id}/" and moved.new_parent_id == c2.id and moved.old_path != moved.new_path


def test_a_branch_secretary_imports_only_into_their_branch(demo, tmp_path):
    db, settings = demo
    with db.read() as s:
        shuji = load_principal(s, s.scalar(select(User.id).where(User.username == "shuji")))
    number = make_id_number("110101", date(1990, 1, 2), 11)
    write_workbook(tmp_path / "mine.xlsx", {"人员": [
        ["ZB1-1", "", "新党员", number, "", "sfj-cwk", "sfj-jgdw-zb1", "预备党员", "2026-07-01", ""],
        ["ZB2-1", "", "别人的", "", "", "", "sfj-jgdw-zb2", "正式党员", "", ""]]})
    report = import_workbook(db, settings, tmp_path / "mine.xlsx", principal=shuji)
    assert [(p.row, p.column) for p in report.problems] == [(3, "所在党组织编码")]
    # nor can they pull a member of another branch into theirs by naming their code
    stolen = [["SFJ-0011", "zb2member", "卫五", "", "", "sfj-bgs", "sfj-jgdw-zb1", "预备党员", "", ""]]
    write_workbook(tmp_path / "steal.xlsx", {"人员": stolen})
    report = import_workbook(db, settings, tmp_path / "steal.xlsx", principal=shuji)
    assert [(p.row, p.column) for p in report.problems] == [(2, "人员编号")]
    # nor appoint a secretary or a 分管 leader for another branch
    write_workbook(tmp_path / "posts.xlsx", {"职务": [["sfj-jgdw-zb2", "书记", "SFJ-0001", "", ""]],
                                             "分管": [["SFJ-0001", "sfj-jgdw-zb2"]]})
    with db.read() as s:
        member_code = s.scalar(select(User.member_code).where(User.username == "shuji"))
    write_workbook(tmp_path / "posts.xlsx", {"职务": [["sfj-jgdw-zb2", "书记", member_code, "", ""],
                                                      ["sfj-jgdw-zb1", "组织委员", member_code, "2026-01-01", ""]],
                                             "分管": [[member_code, "sfj-jgdw-zb2"]]})
    before = _counts(db)
    report = import_workbook(db, settings, tmp_path / "posts.xlsx", principal=shuji)
    assert [(p.sheet, p.row, p.column) for p in report.problems] == [("职务", 2, "组织编码"),
                                                                     ("分管", 2, "分管组织编码")]
    assert _counts(db) == before
    with db.read() as s:
        staff1 = load_principal(s, s.scalar(select(User.id).where(User.username == "staff1")))
    with pytest.raises(Forbidden):
        import_workbook(db, settings, tmp_path / "mine.xlsx", principal=staff1)


def test_exports_are_masked_unless_unmasked_by_a_permitted_person(demo, tmp_path):
    db, settings = demo
    write_sample(tmp_path / "s.xlsx", 3, 30)
    import_workbook(db, settings, tmp_path / "s.xlsx")
    with db.read() as s:
        ids = dict(s.execute(select(User.username, User.id)).all())
        admin, dangwei = (load_principal(s, ids[u]) for u in ("admin", "dangwei"))
    export_workbook(db, settings, tmp_path / "out.xlsx", principal=admin)
    cells = [str(c) for ws in load_workbook(tmp_path / "out.xlsx").worksheets for row in ws.iter_rows(values_only=True)
             for c in row if c is not None]
    assert not any(ID_IN_CLEAR.search(c) for c in cells)
    assert any(re.fullmatch(r"\d{6}\*{8}\d{3}[\dX]", c) for c in cells)
    assert any(re.fullmatch(r"1\d{2}\*{4}\d{4}", c) for c in cells)
    # the masked export re-imports unchanged: masked numbers keep what is on file
    before = _counts(db)
    with db.read() as s:
        sealed = dict(s.execute(select(User.member_code, User.id_number_enc)).all())
    report = import_workbook(db, settings, tmp_path / "out.xlsx")
    assert report.ok and all(c["created"] == c["updated"] == 0 for c in report.counts.values()), report.counts
    with db.read() as s:
        assert dict(s.execute(select(User.member_code, User.id_number_enc)).all()) == sealed
    assert _counts(db)["users"] == before["users"]
    with pytest.raises(Forbidden):  # sysadmin lacks user.unmask
        export_workbook(db, settings, tmp_path / "clear.xlsx", principal=admin, unmask=True)
    counts = export_workbook(db, settings, tmp_path / "clear.xlsx", principal=dangwei, unmask=True)
    cells = [str(c) for row in load_workbook(tmp_path / "clear.xlsx")["人员"].iter_rows(values_only=True)
             for c in row if c is not None]
    assert any(ID_IN_CLEAR.search(c) for c in cells)
    assert counts["people"] == 9  # 机关党委's members only: the demo's, none of the sample's
    with db.read() as s:
        events = [e.payload for e in s.scalars(select(AuditEvent).where(AuditEvent.action == "users.export"))]
    assert [e["unmasked"] for e in events] == [False, True]
    # the export re-imports as it is (a round trip), as long as the IDs were not masked
    report = import_workbook(db, settings, tmp_path / "clear.xlsx")
    assert report.counts["人员"]["created"] == 0


def test_the_command_line_reports_file_sheet_row_column(sqlite_url, tmp_path):
    env = {"DJFLOW_DATABASE_URL": sqlite_url, "DJFLOW_ADMIN_PASSWORD": "Admin-pass-2026",
           "DJFLOW_ARGON2_TIME_COST": "1", "DJFLOW_ARGON2_MEMORY_KIB": "8192", "PATH": "/usr/bin:/bin"}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=REPO_ROOT, env=env,
                              capture_output=True, text=True, timeout=120)

    assert run("init").returncode == 0
    assert run("users", "template", "--out", str(tmp_path / "t.xlsx")).returncode == 0
    assert {"组织", "人员", "职务", "分管", "说明"} <= set(load_workbook(tmp_path / "t.xlsx").sheetnames)
    rows = sample_rows(2, 5)
    rows["人员"][1][2] = ""
    write_workbook(tmp_path / "bad.xlsx", rows)
    bad = run("users", "import", str(tmp_path / "bad.xlsx"))
    assert bad.returncode == 1
    assert f"{tmp_path / 'bad.xlsx'}:人员:3:姓名: 不能为空" in bad.stdout
    good = run("users", "template", "--out", str(tmp_path / "g.xlsx"), "--sample-branches", "2",
               "--sample-members", "5")
    assert good.returncode == 0
    dry = run("users", "import", str(tmp_path / "g.xlsx"), "--dry-run", "--json")
    assert dry.returncode == 0 and json.loads(dry.stdout)["dry_run"] is True
    real = run("users", "import", str(tmp_path / "g.xlsx"))
    assert real.returncode == 0 and "人员：新增 5" in real.stdout
    exported = run("users", "export", "--out", str(tmp_path / "e.xlsx"), "--json")
    assert exported.returncode == 0 and json.loads(exported.stdout)["people"] == 5
    refused = run("users", "export", "--out", str(tmp_path / "e2.xlsx"), "--unmask")
    assert refused.returncode == 1


def test_the_template_explains_every_column_and_its_examples_import(demo, tmp_path):
    db, settings = demo
    write_template(tmp_path / "t.xlsx")
    wb = load_workbook(tmp_path / "t.xlsx")
    explained = {(row[0], row[1]) for row in wb["说明"].iter_rows(min_row=2, values_only=True) if row[0]}
    assert explained == {(sheet, column) for sheet, headers in HEADERS.items() for column in headers}
    report = import_workbook(db, settings, tmp_path / "t.xlsx")
    assert report.ok, report.problems
    assert {sheet: c["created"] for sheet, c in report.counts.items()} == {"组织": 4, "人员": 1, "职务": 1, "分管": 1}
    with db.read() as s:
        person = s.scalar(select(User).where(User.member_code == "DY0001"))
        history = s.scalars(select(PartyStatusHistory).where(PartyStatusHistory.user_id == person.id)).all()
    assert (person.gender, person.birth_date, person.name_pinyin) == ("女", date(1949, 12, 31), "zs zhangsan")
    assert [(h.status, h.since) for h in history] == [("full", date(2010, 7, 1))]


def test_operators_own_headers_and_odd_files(demo, tmp_path):
    """Common header spellings are understood; a file that is not a workbook is one problem."""
    from openpyxl import Workbook

    db, settings = demo
    wb = Workbook()
    ws = wb.active
    ws.title = "人员"
    ws.append(["党员编号", "姓名", "政治面貌", "身份证号"])
    ws.append(["X1", "李四", "预备党员", make_id_number("110101", date(1995, 5, 6), 12)])
    ws.append(["X2", "王五", "群众", 110101199505060000])  # typed as a number: digits lost
    wb.save(tmp_path / "own.xlsx")
    report = import_workbook(db, settings, tmp_path / "own.xlsx")
    assert [(p.sheet, p.row, p.column) for p in report.problems] == [("人员", 3, "身份证号")]
    assert "文本格式" in report.problems[0].reason
    ws.delete_rows(3)
    wb.save(tmp_path / "own.xlsx")
    report = import_workbook(db, settings, tmp_path / "own.xlsx")
    assert report.ok and report.counts["人员"]["created"] == 1
    with db.read() as s:
        assert s.scalar(select(User.party_status).where(User.member_code == "X1")) == "probationary"
    (tmp_path / "junk.xlsx").write_bytes(b"not a workbook")
    report = import_workbook(db, settings, tmp_path / "junk.xlsx")
    assert len(report.problems) == 1 and not report.problems[0].sheet and "无法读取" in report.problems[0].reason
