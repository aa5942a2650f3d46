"""一人一档 in and out of Excel: the workbook operators already keep (组织, 人员, 职务, 分管).

Import checks every row of every sheet before writing anything and reports each problem as
(sheet, row, column, reason); only a clean workbook is written, in one transaction, with one
`users.import` audit event. Rows are matched by 组织编码 and 人员编号, so importing the same
workbook again changes nothing, and a changed 上级编码 moves the unit (kept in its history).
Export writes the same layout, masked unless the caller may unmask.

Speed matters (a district has 11,200 members; we design for 112,000): everything already in
the database is read into dictionaries once, and rows are written with executemany.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import insert, select, update
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from engine import audit
from engine.clock import now
from engine.config import Settings
from engine.db import Database
from engine.errors import Conflict, InvalidInput
from engine.identity.policy import load_policy
from engine.identity.principal import Principal, Scope
from engine.identity.protect import Masker, check_id_number, check_phone, cipher_for, id_number_facts
from engine.models import InCharge, OrgUnit, OrgUnitHistory, PartyStatusHistory, Position, User
from engine.org.checks import KIND_NAMES, parent_problem
from engine.org.names import pinyin_key
from engine.org.people import PARTY_STATUS_NAMES, USERNAME_PATTERN
from engine.org.positions import POSITION_KEYS

ORG_SHEET, PEOPLE_SHEET, POSITION_SHEET, IN_CHARGE_SHEET = "组织", "人员", "职务", "分管"
HEADERS = {
    ORG_SHEET: ["编码", "名称", "类型", "上级编码", "排序", "成立日期", "审批权限"],
    PEOPLE_SHEET: ["人员编号", "用户名", "姓名", "身份证号", "手机号", "所在部门编码", "所在党组织编码", "党员状态",
                   "状态日期", "邮箱"],
    POSITION_SHEET: ["组织编码", "职务", "人员编号", "任期开始", "任期结束"],
    IN_CHARGE_SHEET: ["领导人员编号", "分管组织编码"],
}
# Other spellings of a header that operators' own sheets use, per sheet; read as the standard one.
HEADER_ALIASES: dict[str, dict[str, str]] = {
    ORG_SHEET: {"组织编码": "编码", "组织名称": "名称", "组织类型": "类型", "上级组织编码": "上级编码",
                "有审批权限": "审批权限"},
    PEOPLE_SHEET: {"人员编号(党员编号)": "人员编号", "人员编号（党员编号）": "人员编号", "党员编号": "人员编号",
                   "政治面貌": "党员状态", "政治面貌/党员状态": "党员状态", "党员状态/政治面貌": "党员状态",
                   "手机": "手机号", "电子邮箱": "邮箱", "所在部门": "所在部门编码", "所在党组织": "所在党组织编码",
                   "所在党支部编码": "所在党组织编码", "身份证号码": "身份证号"},
    POSITION_SHEET: {"职务名称": "职务"},
    IN_CHARGE_SHEET: {},
}
REQUIRED = {ORG_SHEET: {"编码", "名称", "类型"}, PEOPLE_SHEET: {"人员编号", "姓名"},
            POSITION_SHEET: {"组织编码", "职务", "人员编号"}, IN_CHARGE_SHEET: {"领导人员编号", "分管组织编码"}}
KIND_BY_NAME = {name: kind for kind, name in KIND_NAMES.items()} | {"基层党委": "party_committee",
                                                                    "总支": "general_branch", "支部": "branch",
                                                                    "局": "unit", "部门": "department"}
STATUS_BY_NAME = {name: key for key, name in PARTY_STATUS_NAMES.items()} | {"积极分子": "activist", "群众": "none"}
# Every name a 职务 cell may use: the generic names and the per-kind titles (科长, 局长 …).
# The one mapping from 职务 names to position keys (engine/org/positions.py).
POSITION_BY_NAME: dict[str, str] = {spec.name: key for key, spec in POSITION_KEYS.items()} | {
    t: key for key, spec in POSITION_KEYS.items() for t in spec.titles.values()} | {
    "支部书记": "secretary", "党委书记": "secretary", "总支书记": "secretary", "支部副书记": "deputy_secretary",
    "党小组长": "group_leader", "党小组组长": "group_leader", "主任": "head", "副主任": "deputy_head",
    "处长": "head", "副处长": "deputy_head", "主要负责人": "head"}
MASKED_WITHOUT_VALUE = "这是脱敏后的号码（含 *），系统中没有可保留的号码，请填写完整的"
YES = {"是", "有", "y", "yes", "true", "1"}


@dataclass(frozen=True)
class RowProblem:
    sheet: str
    row: int
    column: str
    reason: str

    def as_dict(self) -> dict:
        return {"sheet": self.sheet, "row": self.row, "column": self.column, "reason": self.reason}

    @property
    def location(self) -> str:
        """`sheet:row:column`, or "" for a problem with the whole file."""
        return f"{self.sheet}:{self.row}:{self.column}" if self.sheet else ""

    def __str__(self) -> str:
        return f"{self.location}: {self.reason}" if self.sheet else self.reason


@dataclass
class ImportReport:
    dry_run: bool
    problems: list[RowProblem] = field(default_factory=list)
    # sheet -> {"created": n, "updated": n, "unchanged": n}
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {"ok": self.ok, "dry_run": self.dry_run, "counts": self.counts,
                "problems": [p.as_dict() for p in self.problems]}


class WorkbookInvalid(InvalidInput):
    """The workbook has problems; nothing was written. Raised inside the import to roll back;
    import_workbook itself returns the report (with its problems) instead."""

    def __init__(self, report: ImportReport):
        super().__init__(f"工作簿有 {len(report.problems)} 处问题，未写入任何数据")
        self.report = report


Progress = Callable[[str, int, int], None]


# -- reading -----------------------------------------------------------------------------------
def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime):
        return v.date().isoformat()
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def _rows(wb, sheet: str, problems: list[RowProblem]) -> Iterator[tuple[int, dict[str, str]]]:
    """(row number, {header: text}) for each non-empty row; a missing sheet is simply empty."""
    if sheet not in wb.sheetnames:
        return
    it = wb[sheet].iter_rows(values_only=True)
    aliases = HEADER_ALIASES[sheet]
    header = [aliases.get(h, h) for h in (_cell(h).replace(" ", "") for h in next(it, ()))]
    missing = REQUIRED[sheet] - set(header)
    if missing:
        problems.append(RowProblem(sheet, 1, "、".join(sorted(missing)), "缺少必需的列"))
        return
    index = {h: i for i, h in enumerate(header) if h in HEADERS[sheet]}
    id_col = index.get("身份证号")
    for n, values in enumerate(it, start=2):
        row = {h: _cell(values[i]) if i < len(values) else "" for h, i in index.items()}
        if any(row.values()):
            if id_col is not None and id_col < len(values) and isinstance(values[id_col], int | float):
                # Excel keeps 15 significant digits: an ID number typed as a number has lost its end.
                row["_id_is_number"] = "1"
            yield n, row


def _date(value: str, sheet: str, n: int, column: str, problems: list[RowProblem]) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value.replace("/", "-").replace(".", "-")[:10])
    except ValueError:
        problems.append(RowProblem(sheet, n, column, f"日期 {value} 无法识别，应为 YYYY-MM-DD"))
        return None


# -- import ------------------------------------------------------------------------------------
def import_workbook(db: Database, settings: Settings, path: Path, *, principal: Principal | None = None,
                    dry_run: bool = False, progress: Progress | None = None) -> ImportReport:
    """Check every row, then (unless `dry_run` or anything is wrong) write all of it at once.

    Returns the report; when it lists problems (report.ok is False) nothing was written. Raises
    Forbidden when `principal` lacks user.import."""
    from openpyxl import load_workbook

    say = progress or (lambda _stage, _n, _total: None)
    report = ImportReport(dry_run)
    problems = report.problems
    scope = principal.require("user.import") if principal is not None else None
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same problem for the operator
        problems.append(RowProblem("", 0, "", f"无法读取 Excel 文件（{type(exc).__name__}），"
                                              "请上传 .xlsx 格式的工作簿"))
        return report
    try:
        if not set(HEADERS) & set(wb.sheetnames):
            problems.append(RowProblem("", 0, "", f"工作簿中没有「{'」「'.join(HEADERS)}」中的任何一个工作表"))
            return report
        sheets = {name: list(_rows(wb, name, problems)) for name in HEADERS}
    finally:
        wb.close()
    if problems:
        return report
    cipher = cipher_for(settings)
    try:
        with db.unit_of_work() as s:
            plan = _Plan(s, settings, cipher, scope, report, say)
            plan.orgs(sheets[ORG_SHEET])
            plan.people(sheets[PEOPLE_SHEET])
            plan.positions(sheets[POSITION_SHEET])
            plan.in_charge(sheets[IN_CHARGE_SHEET])
            plan.fail_if_problems()
            # A dry run writes too (so scope and database constraints are checked the same
            # way), then rolls everything back.
            plan.write(principal)
            if dry_run:
                raise _DryRun
            audit.append(s, action="users.import", actor_id=principal.user_id if principal else None,
                         payload=_payload(principal, file=Path(path).name, counts=report.counts),
                         hash_alg=settings.audit_hash)
    except (_DryRun, WorkbookInvalid):
        return report
    except IntegrityError:
        # Someone changed the same codes or usernames while this import ran. The statement's
        # parameters stay out of the message: they carry personal data.
        raise Conflict("导入期间组织或人员数据被同时修改，未写入任何数据，请重新导入") from None
    except DataError:
        raise InvalidInput("工作簿中有超出长度或格式不被数据库接受的值，未写入任何数据") from None
    written = sum(c["created"] + c["updated"] for c in report.counts.values())
    if written >= 1000:
        # Fresh planner statistics after a bulk load, so assignment-rule lookups use the indexes
        # at once instead of after the next autovacuum.
        with db.engine.begin() as conn:
            for table in ("org_units", "users", "positions", "in_charge", "party_status_history"):
                conn.exec_driver_sql(f"ANALYZE {table}")
    return report


class _DryRun(Exception):
    """Raised inside the unit of work to roll a dry run back."""


def _payload(principal: Principal | None, **payload) -> dict:
    return principal.audit_payload(**payload) if principal else {**payload, "via": "console"}


class _Plan:
    """Validated rows turned into inserts and updates; nothing touches the database until write()."""

    def __init__(self, s: Session, settings: Settings, cipher, scope: Scope | None, report: ImportReport,
                 say: Progress):
        self.s, self.settings, self.cipher, self.scope, self.say = s, settings, cipher, scope, say
        self.report, self.problems = report, report.problems
        self.counts: dict[str, dict[str, int]] = report.counts
        self._member_codes: list[str] | None = None
        # Every 人员编号 in the file, good rows or bad: a 职务 or 分管 row naming a bad row is
        # not reported again (the person's own row already says what is wrong).
        self.file_member_codes: set[str] = set()
        # code -> (id, parent_id, path, kind, name, sort_order, established_on, approval_authority)
        self.db_orgs = {r.code: r for r in s.execute(select(
            OrgUnit.id, OrgUnit.code, OrgUnit.parent_id, OrgUnit.path, OrgUnit.kind, OrgUnit.name, OrgUnit.sort_order,
            OrgUnit.established_on, OrgUnit.approval_authority))}
        self.code_of_id = {r.id: r.code for r in self.db_orgs.values()}
        self.file_orgs: dict[str, dict] = {}
        # Codes on the 组织 sheet whose rows have problems: rows naming them are not reported again.
        self.bad_org_codes: set[str] = set()
        self.people_rows: list[dict] = []
        self.position_rows: list[dict] = []
        self.in_charge_rows: list[tuple[str, str, int]] = []

    def fail_if_problems(self) -> None:
        if self.problems:
            self.problems.sort(key=lambda p: (list(HEADERS).index(p.sheet) if p.sheet in HEADERS else -1, p.row))
            raise WorkbookInvalid(self.report)

    def _count(self, sheet: str, what: str) -> None:
        c = self.counts.setdefault(sheet, {"created": 0, "updated": 0, "unchanged": 0})
        c[what] += 1

    def bad(self, sheet: str, n: int, column: str, reason: str) -> None:
        self.problems.append(RowProblem(sheet, n, column, reason))

    # -- 组织 -------------------------------------------------------------------------------
    def orgs(self, rows: list[tuple[int, dict]]) -> None:
        sheet = ORG_SHEET
        for i, (n, r) in enumerate(rows, 1):
            code, name, kind_name = r["编码"], r["名称"], r["类型"]
            ok = True
            if not code:
                self.bad(sheet, n, "编码", "不能为空")
                ok = False
            elif len(code) > 64:
                self.bad(sheet, n, "编码", "最多 64 个字符")
                ok = False
            elif code in self.file_orgs:
                self.bad(sheet, n, "编码", f"编码 {code} 在第 {self.file_orgs[code]['row']} 行已出现")
                ok = False
            if not name:
                self.bad(sheet, n, "名称", "不能为空")
                ok = False
            elif len(name) > 200:
                self.bad(sheet, n, "名称", "最多 200 字")
                ok = False
            kind = KIND_BY_NAME.get(kind_name) or (kind_name if kind_name in KIND_NAMES else None)
            if kind is None:
                self.bad(sheet, n, "类型", f"「{kind_name}」不是可用的类型（{'、'.join(KIND_NAMES.values())}）")
                ok = False
            order = 0
            if r.get("排序"):
                try:
                    order = int(r["排序"])
                except ValueError:
                    self.bad(sheet, n, "排序", "应为整数")
                    ok = False
            established = _date(r.get("成立日期", ""), sheet, n, "成立日期", self.problems)
            authority = r.get("审批权限", "").lower() in YES
            if authority and kind != "party_committee":
                self.bad(sheet, n, "审批权限", "只有党委可以有审批预备党员的权限（党总支、党支部没有）")
            if not ok and code:
                self.bad_org_codes.add(code)
            if ok:
                self.file_orgs[code] = {"row": n, "code": code, "name": name, "kind": kind, "parent": r["上级编码"],
                                        "sort_order": order, "established_on": established,
                                        "approval_authority": authority}
            if i % 1000 == 0:
                self.say("检查组织", i, len(rows))
        # Parents: in the file or the database, of the right kind, without cycles.
        for code, o in self.file_orgs.items():
            parent = o["parent"]
            if parent in self.bad_org_codes:
                continue  # the parent's own row already says what is wrong
            if parent and parent not in self.file_orgs and parent not in self.db_orgs:
                self.bad(sheet, o["row"], "上级编码", f"没有编码为 {parent} 的组织")
                continue
            problem = parent_problem(o["kind"], self._kind(parent) if parent else None)
            if problem:
                self.bad(sheet, o["row"], "上级编码", problem)
        for code, o in self.file_orgs.items():
            seen, at = {code}, o["parent"]
            while at:
                if at in seen:
                    self.bad(sheet, o["row"], "上级编码", f"上级关系形成循环（经过 {at}）")
                    break
                seen.add(at)
                at = self.file_orgs[at]["parent"] if at in self.file_orgs else self._db_parent_code(at)

    def _kind(self, code: str) -> str | None:
        if code in self.file_orgs:
            return self.file_orgs[code]["kind"]
        return self.db_orgs[code].kind if code in self.db_orgs else None

    def _db_parent_code(self, code: str) -> str | None:
        row = self.db_orgs.get(code)
        return self.code_of_id.get(row.parent_id) if row is not None and row.parent_id else None

    def _org_kind_ok(self, code: str, kinds: tuple[str, ...]) -> bool:
        kind = self._kind(code)
        return kind in kinds

    # -- 人员 -------------------------------------------------------------------------------
    def people(self, rows: list[tuple[int, dict]]) -> None:
        sheet = PEOPLE_SHEET
        everyone = self.s.execute(select(User.id, User.member_code, User.username, User.id_number_hash,
                                         User.phone_hash, User.department_id, User.branch_id)).all()
        db_people = {r.member_code: r for r in everyone if r.member_code}
        usernames = {r.username: r.member_code for r in everyone}
        # 一人一档: an ID number belongs to one record, whether or not that record has a 人员编号.
        id_owner = {r.id_number_hash: (r.id, r.member_code or r.username) for r in everyone if r.id_number_hash}
        seen_codes: dict[str, int] = {}
        seen_usernames: dict[str, int] = {}
        seen_ids: dict[str, int] = {}
        name_re = re.compile(USERNAME_PATTERN)
        for i, (n, r) in enumerate(rows, 1):
            ok = True
            code, name = r["人员编号"], r["姓名"]
            self.file_member_codes.add(code)
            if not code:
                self.bad(sheet, n, "人员编号", "不能为空")
                ok = False
            elif len(code) > 64:
                self.bad(sheet, n, "人员编号", "最多 64 个字符")
                ok = False
            elif code in seen_codes:
                self.bad(sheet, n, "人员编号", f"人员编号 {code} 与第 {seen_codes[code]} 行重复（一人一档）")
                ok = False
            else:
                seen_codes[code] = n
            if not name:
                self.bad(sheet, n, "姓名", "不能为空")
                ok = False
            elif len(name) > 100:
                self.bad(sheet, n, "姓名", "最多 100 字")
                ok = False
            existing = db_people.get(code)
            username = r.get("用户名") or (existing.username if existing else code)
            if not name_re.match(username):
                self.bad(sheet, n, "用户名", "只能包含字母、数字和 _ . - @，2 到 64 个字符")
                ok = False
            elif username in seen_usernames:
                self.bad(sheet, n, "用户名", f"用户名与第 {seen_usernames[username]} 行重复")
                ok = False
            elif username in usernames and usernames[username] != code:
                self.bad(sheet, n, "用户名", f"用户名 {username} 已属于另一人员")
                ok = False
            seen_usernames[username] = n
            values: dict = {"member_code": code, "username": username, "display_name": name,
                            "name_pinyin": pinyin_key(name) if name else ""}
            id_number = r.get("身份证号", "")
            if id_number and r.get("_id_is_number"):
                self.bad(sheet, n, "身份证号",
                         "身份证号被 Excel 存成了数字，末几位已丢失；请把该列设为文本格式后重新填写")
                ok = False
            elif "*" in id_number:
                # A masked value from an export: keep the number on file.
                if existing is not None and existing.id_number_hash:
                    values |= {"id_number_hash": existing.id_number_hash, "_keep_id": True}
                else:
                    self.bad(sheet, n, "身份证号", MASKED_WITHOUT_VALUE + "身份证号")
                    ok = False
            elif id_number:
                try:
                    clean = check_id_number(id_number)
                except InvalidInput as exc:
                    self.bad(sheet, n, "身份证号", exc.message)
                    ok = False
                else:
                    digest = self.cipher.lookup_hash("id_number", clean)
                    if digest in seen_ids:
                        self.bad(sheet, n, "身份证号", f"与第 {seen_ids[digest]} 行的身份证号相同（一人一档）")
                        ok = False
                    elif digest in id_owner and (existing is None or id_owner[digest][0] != existing.id):
                        self.bad(sheet, n, "身份证号",
                                 f"该身份证号已登记在人员 {id_owner[digest][1]} 的档案中（一人一档）")
                        ok = False
                    seen_ids[digest] = n
                    birth, gender = id_number_facts(clean)
                    values |= {"id_number_hash": digest, "birth_date": birth, "gender": gender,
                               "_id_clear": clean}
            phone = r.get("手机号", "")
            if phone and "*" in phone:
                if existing is not None and existing.phone_hash:
                    values["phone_hash"] = existing.phone_hash
                else:
                    self.bad(sheet, n, "手机号", MASKED_WITHOUT_VALUE + "手机号")
                    ok = False
            elif phone:
                try:
                    clean_phone = check_phone(phone)
                except InvalidInput as exc:
                    self.bad(sheet, n, "手机号", exc.message)
                    ok = False
                else:
                    values |= {"phone_hash": self.cipher.lookup_hash("phone", clean_phone), "_phone_clear": clean_phone}
            for column, kinds, attr in (("所在部门编码", ("unit", "department"), "department"),
                                        ("所在党组织编码", ("party_committee", "general_branch", "branch",
                                                          "party_group"), "branch")):
                org_code = r.get(column, "")
                if not org_code:
                    values[attr] = None
                elif org_code in self.bad_org_codes:
                    ok = False  # the org's own row already says what is wrong with it
                elif not self._org_kind_ok(org_code, kinds):
                    what = "行政组织（单位或科室）" if attr == "department" else "党组织"
                    known = org_code in self.file_orgs or org_code in self.db_orgs
                    self.bad(sheet, n, column, f"{org_code} 不是{what}" if known else f"没有编码为 {org_code} 的{what}")
                    ok = False
                else:
                    values[attr] = org_code
            status_name = r.get("党员状态", "") or "非党员"
            status = STATUS_BY_NAME.get(status_name) or (
                status_name if status_name in PARTY_STATUS_NAMES else None)
            if status is None:
                allowed = "、".join(PARTY_STATUS_NAMES.values())
                self.bad(sheet, n, "党员状态", f"「{status_name}」不是可用的状态（{allowed}）")
                ok = False
            values["party_status"] = status
            values["party_status_since"] = _date(r.get("状态日期", ""), sheet, n, "状态日期", self.problems)
            email = r.get("邮箱", "")
            if email and ("@" not in email or len(email) > 200):
                self.bad(sheet, n, "邮箱", "格式不正确")
                ok = False
            values["email"] = email or None
            if ok:
                values["_row"] = n
                values["_id"] = existing.id if existing else None
                values["_old_orgs"] = (existing.department_id, existing.branch_id) if existing else ()
                self.people_rows.append(values)
            if i % 5000 == 0:
                self.say("检查人员", i, len(rows))
        self.say("检查人员", len(rows), len(rows))

    # -- 职务, 分管 ----------------------------------------------------------------------------
    def positions(self, rows: list[tuple[int, dict]]) -> None:
        sheet = POSITION_SHEET
        codes = {p["member_code"] for p in self.people_rows} | set(self._db_member_codes())
        for n, r in rows:
            ok = True
            org, title, member = r["组织编码"], r["职务"], r["人员编号"]
            key = POSITION_BY_NAME.get(title) or (title if title in POSITION_KEYS else None)
            kind = self._kind(org)
            if kind is None:
                self.bad(sheet, n, "组织编码", f"没有编码为 {org} 的组织")
                ok = False
            if key is None:
                self.bad(sheet, n, "职务", f"「{title}」不是可用的职务（{'、'.join(POSITION_BY_NAME)}）")
                ok = False
            elif kind is not None and kind not in POSITION_KEYS[key].kinds:
                self.bad(sheet, n, "职务", f"{KIND_NAMES[kind]}不设{title}")
                ok = False
            if member not in codes:
                if member not in self.file_member_codes:
                    self.bad(sheet, n, "人员编号", f"没有人员编号为 {member} 的人员")
                ok = False
            starts = _date(r.get("任期开始", ""), sheet, n, "任期开始", self.problems)
            ends = _date(r.get("任期结束", ""), sheet, n, "任期结束", self.problems)
            if starts and ends and ends < starts:
                self.bad(sheet, n, "任期结束", "任期结束早于任期开始")
                ok = False
            if ok:
                self.position_rows.append({"org": org, "key": key, "member": member, "starts_on": starts,
                                           "ends_on": ends, "_row": n})

    def in_charge(self, rows: list[tuple[int, dict]]) -> None:
        sheet = IN_CHARGE_SHEET
        codes = {p["member_code"] for p in self.people_rows} | set(self._db_member_codes())
        for n, r in rows:
            leader, org = r["领导人员编号"], r["分管组织编码"]
            if leader not in codes:
                if leader not in self.file_member_codes:
                    self.bad(sheet, n, "领导人员编号", f"没有人员编号为 {leader} 的人员")
            elif self._kind(org) is None:
                self.bad(sheet, n, "分管组织编码", f"没有编码为 {org} 的组织")
            else:
                self.in_charge_rows.append((leader, org, n))

    def _db_member_codes(self) -> list[str]:
        if self._member_codes is None:
            self._member_codes = [c for (c,) in self.s.execute(select(User.member_code)) if c]
        return self._member_codes

    # -- scope ------------------------------------------------------------------------------
    def check_scope(self, paths: dict[str, str]) -> None:
        if self.scope is None or self.scope.everything:
            return
        ids = {code: int(path.strip("/").split("/")[-1]) for code, path in paths.items()}

        def covered(code: str | None) -> bool:
            return code is not None and self.scope.covers_org(ids[code], paths[code])

        for code, o in self.file_orgs.items():
            if not covered(code) and not (code in self.db_orgs and self._unchanged_org(o)):
                self.bad(ORG_SHEET, o["row"], "编码", f"{o['name']} 不在您的管理范围内")
        path_of_id = {ids[code]: path for code, path in paths.items()}
        for p in self.people_rows:
            if not (covered(p["department"]) or covered(p["branch"])):
                self.bad(PEOPLE_SHEET, p["_row"], "所在党组织编码", f"人员 {p['member_code']} 的组织不在您的管理范围内")
            elif p["_old_orgs"] and not any(self.scope.covers_org(i, path_of_id.get(i)) for i in p["_old_orgs"] if i):
                # An existing record elsewhere: moving it in would hand someone else's member over.
                self.bad(PEOPLE_SHEET, p["_row"], "人员编号", f"人员 {p['member_code']} 的现有档案不在您的管理范围内")
        for p in self.position_rows:
            if not covered(p["org"]):
                self.bad(POSITION_SHEET, p["_row"], "组织编码", f"组织 {p['org']} 不在您的管理范围内")
        for _leader, org, n in self.in_charge_rows:
            if not covered(org):
                self.bad(IN_CHARGE_SHEET, n, "分管组织编码", f"组织 {org} 不在您的管理范围内")

    def _unchanged_org(self, o: dict) -> bool:
        row = self.db_orgs[o["code"]]
        return (row.name, row.kind, self.code_of_id.get(row.parent_id) or "", row.sort_order, row.established_on,
                bool(row.approval_authority)) == (o["name"], o["kind"], o["parent"] or "", o["sort_order"],
                                                  o["established_on"], o["approval_authority"])

    # -- writing ----------------------------------------------------------------------------
    def write(self, principal: Principal | None) -> None:
        s, at = self.s, now()
        actor = principal.user_id if principal else None
        counts = self.counts
        for sheet in HEADERS:
            counts.setdefault(sheet, {"created": 0, "updated": 0, "unchanged": 0})
        # Orgs: insert the new ones, then give every file org its parent and path.
        new = [o for code, o in self.file_orgs.items() if code not in self.db_orgs]
        if new:
            s.execute(insert(OrgUnit), [{"code": o["code"], "name": o["name"], "kind": o["kind"], "path": "/",
                                         "sort_order": o["sort_order"], "status": "active",
                                         "established_on": o["established_on"],
                                         "approval_authority": o["approval_authority"]} for o in new])
        ids = dict(s.execute(select(OrgUnit.code, OrgUnit.id)).all())
        parent_of = {code: self._db_parent_code(code) for code in self.db_orgs}
        parent_of |= {code: (o["parent"] or None) for code, o in self.file_orgs.items()}
        paths: dict[str, str] = {}

        def path_of(code: str) -> str:
            if code not in paths:
                parent = parent_of.get(code)
                paths[code] = (path_of(parent) if parent else "/") + f"{ids[code]}/"
            return paths[code]

        for code in ids:
            path_of(code)
        self.check_scope(paths)
        self.fail_if_problems()
        changes, history = [], []
        for code, o in self.file_orgs.items():
            old = self.db_orgs.get(code)
            values = {"id": ids[code], "name": o["name"], "kind": o["kind"], "sort_order": o["sort_order"],
                      "parent_id": ids[o["parent"]] if o["parent"] else None, "path": paths[code],
                      "established_on": o["established_on"], "approval_authority": o["approval_authority"]}
            if old is None:
                counts[ORG_SHEET]["created"] += 1
                history.append({"org_unit_id": ids[code], "action": "create", "new_parent_id": values["parent_id"],
                                "new_path": paths[code], "changes": {"via": "import"}, "changed_by": actor,
                                "changed_at": at})
            elif (old.name, old.kind, old.sort_order, old.parent_id, old.path, old.established_on,
                  old.approval_authority) == (o["name"], o["kind"], o["sort_order"], values["parent_id"],
                                              paths[code], o["established_on"], o["approval_authority"]):
                counts[ORG_SHEET]["unchanged"] += 1
                continue
            else:
                counts[ORG_SHEET]["updated"] += 1
                if old.parent_id != values["parent_id"]:
                    history.append({"org_unit_id": old.id, "action": "move", "old_parent_id": old.parent_id,
                                    "new_parent_id": values["parent_id"], "old_path": old.path,
                                    "new_path": paths[code], "changes": {"via": "import"}, "changed_by": actor,
                                    "changed_at": at})
                values["updated_at"] = at
            changes.append(values)
        # Units not in the file but under a moved one get their new path too.
        for code, row in self.db_orgs.items():
            if code not in self.file_orgs and row.path != paths[code]:
                changes.append({"id": row.id, "name": row.name, "kind": row.kind, "sort_order": row.sort_order,
                                "parent_id": row.parent_id, "path": paths[code], "established_on": row.established_on,
                                "approval_authority": row.approval_authority})
        if changes:
            for c in changes:
                c.setdefault("updated_at", at)
            # ORM bulk UPDATE by primary key: one executemany.
            s.execute(update(OrgUnit), changes)
        if history:
            s.execute(insert(OrgUnitHistory), history)
        self.say("写入组织", len(self.file_orgs), len(self.file_orgs))
        self._write_people(ids, actor, at)
        self._write_positions(ids)

    def _write_people(self, org_ids: dict[str, int], actor: int | None, at: datetime) -> None:
        s, counts = self.s, self.counts[PEOPLE_SHEET]
        cols = ("username", "display_name", "name_pinyin", "member_code", "party_status", "party_status_since",
                "gender", "birth_date", "email", "department_id", "branch_id", "id_number_enc", "id_number_hash",
                "phone_enc", "phone_hash")
        existing = {r.id: r for r in s.execute(select(User.id, *[getattr(User, c) for c in cols])
                                               .where(User.member_code.is_not(None)))} if any(
            p["_id"] for p in self.people_rows) else {}
        inserts, updates, statuses = [], [], []
        total = len(self.people_rows)
        for i, p in enumerate(self.people_rows, 1):
            values = {c: p.get(c) for c in ("username", "display_name", "name_pinyin", "member_code", "party_status",
                                            "party_status_since", "gender", "birth_date", "email")}
            values["department_id"] = org_ids[p["department"]] if p["department"] else None
            values["branch_id"] = org_ids[p["branch"]] if p["branch"] else None
            values["id_number_hash"], values["phone_hash"] = p.get("id_number_hash"), p.get("phone_hash")
            old = existing.get(p["_id"]) if p["_id"] else None
            if old is not None:
                for f in ("id_number", "phone"):
                    same = getattr(old, f"{f}_hash") == values[f"{f}_hash"]
                    values[f"{f}_enc"] = getattr(old, f"{f}_enc") if same else None
                if p.get("_keep_id"):
                    values["birth_date"], values["gender"] = old.birth_date, old.gender
                if all(getattr(old, c) == values.get(c) for c in cols):
                    counts["unchanged"] += 1
                    continue
            if values.get("id_number_enc") is None and p.get("_id_clear"):
                values["id_number_enc"] = self.cipher.encrypt("id_number", p["_id_clear"])
            if values.get("phone_enc") is None and p.get("_phone_clear"):
                values["phone_enc"] = self.cipher.encrypt("phone", p["_phone_clear"])
            if old is None:
                values |= {"status": "active", "must_change_password": False, "failed_logins": 0, "created_at": at}
                inserts.append(values)
                counts["created"] += 1
            else:
                values |= {"id": old.id, "updated_at": at}
                updates.append(values)
                counts["updated"] += 1
                if old.party_status != values["party_status"] or old.party_status_since != values[
                        "party_status_since"]:
                    statuses.append((old.id, values["party_status"], values["party_status_since"]))
            if i % 5000 == 0:
                self.say("写入人员", i, total)
        for chunk in _chunks(inserts, 5000):
            s.execute(insert(User), chunk)
        if updates:
            s.execute(update(User), updates)
        if inserts:
            new_ids = dict(s.execute(select(User.member_code, User.id).where(
                User.member_code.in_([v["member_code"] for v in inserts]))).all()) if len(inserts) < 30000 else dict(
                s.execute(select(User.member_code, User.id).where(User.member_code.is_not(None))).all())
            statuses += [(new_ids[v["member_code"]], v["party_status"], v["party_status_since"]) for v in inserts]
        if statuses:
            rows = [{"user_id": uid, "status": st, "since": since, "note": "批量导入", "recorded_by": actor,
                     "recorded_at": at} for uid, st, since in statuses]
            for chunk in _chunks(rows, 5000):
                s.execute(insert(PartyStatusHistory), chunk)
        self.say("写入人员", total, total)

    def _write_positions(self, org_ids: dict[str, int]) -> None:
        s = self.s
        users = dict(s.execute(select(User.member_code, User.id).where(User.member_code.is_not(None))).all())
        have = {(r.org_unit_id, r.key, r.user_id, r.starts_on): r for r in s.execute(select(
            Position.id, Position.org_unit_id, Position.key, Position.user_id, Position.starts_on, Position.ends_on))}
        new, ends = [], []
        for p in self.position_rows:
            k = (org_ids[p["org"]], p["key"], users[p["member"]], p["starts_on"])
            old = have.get(k)
            if old is None:
                new.append({"org_unit_id": k[0], "key": k[1], "user_id": k[2], "starts_on": k[3],
                            "ends_on": p["ends_on"]})
                self._count(POSITION_SHEET, "created")
            elif old.ends_on != p["ends_on"]:
                ends.append({"id": old.id, "ends_on": p["ends_on"]})
                self._count(POSITION_SHEET, "updated")
            else:
                self._count(POSITION_SHEET, "unchanged")
        if new:
            s.execute(insert(Position), new)
        if ends:
            s.execute(update(Position), ends)
        pairs = set(s.execute(select(InCharge.leader_user_id, InCharge.org_unit_id)).all())
        add = []
        for leader, org in dict.fromkeys((leader, org) for leader, org, _n in self.in_charge_rows):
            pair = (users[leader], org_ids[org])
            if pair in pairs:
                self._count(IN_CHARGE_SHEET, "unchanged")
            else:
                pairs.add(pair)
                add.append({"leader_user_id": pair[0], "org_unit_id": pair[1]})
                self._count(IN_CHARGE_SHEET, "created")
        if add:
            s.execute(insert(InCharge), add)


def _chunks(rows: list, size: int) -> Iterator[list]:
    for i in range(0, len(rows), size):
        yield rows[i:i + size]


# -- export and template -------------------------------------------------------------------------
def export_workbook(db: Database, settings: Settings, path: Path, *, principal: Principal | None,
                    unmask: bool = False, progress: Progress | None = None) -> dict:
    """Write the caller's organisations and people in the import layout. ID and phone numbers
    are masked unless `unmask` and the caller holds user.unmask; every export is audited."""
    from openpyxl import Workbook

    say = progress or (lambda _stage, _n, _total: None)
    scope = principal.require("user.export") if principal is not None else None
    if unmask and principal is not None:
        principal.require("user.unmask")
    cipher = cipher_for(settings)
    wb = Workbook(write_only=True)
    counts = {}
    with db.unit_of_work() as s:
        masker = Masker(load_policy(s, settings).mask_patterns())
        org_q = select(OrgUnit).order_by(OrgUnit.path)
        if scope is not None and not scope.everything:
            org_q = org_q.where(scope.org_condition(OrgUnit.id))
        orgs = s.scalars(org_q).all()
        codes = dict(s.execute(select(OrgUnit.id, OrgUnit.code)).all())
        ws = wb.create_sheet(ORG_SHEET)
        ws.append(HEADERS[ORG_SHEET])
        for o in orgs:
            ws.append([o.code, o.name, KIND_NAMES.get(o.kind, o.kind), codes.get(o.parent_id, ""), o.sort_order,
                       o.established_on.isoformat() if o.established_on else "", "是" if o.approval_authority else ""])
        people_q = select(User).where(User.member_code.is_not(None)).order_by(User.member_code)
        if scope is not None:
            people_q = people_q.where(scope.person_condition())
        ws = wb.create_sheet(PEOPLE_SHEET)
        ws.append(HEADERS[PEOPLE_SHEET])
        n = 0
        member_of: dict[int, str] = {}
        for n, u in enumerate(s.scalars(people_q).yield_per(2000), 1):
            member_of[u.id] = u.member_code
            id_number = cipher.decrypt("id_number", u.id_number_enc) if u.id_number_enc else None
            phone = cipher.decrypt("phone", u.phone_enc) if u.phone_enc else None
            if not unmask:
                id_number, phone = masker.mask("id_number", id_number), masker.mask("phone", phone)
            ws.append([u.member_code, u.username, u.display_name, id_number or "", phone or "",
                       codes.get(u.department_id, ""), codes.get(u.branch_id, ""),
                       PARTY_STATUS_NAMES.get(u.party_status, u.party_status),
                       u.party_status_since.isoformat() if u.party_status_since else "", u.email or ""])
            if n % 5000 == 0:
                say("导出人员", n, 0)
        counts = {"orgs": len(orgs), "people": n}
        ws = wb.create_sheet(POSITION_SHEET)
        ws.append(HEADERS[POSITION_SHEET])
        org_kind = {o.id: o.kind for o in orgs}
        for p in s.scalars(select(Position).order_by(Position.org_unit_id, Position.id)):
            if p.org_unit_id in org_kind and p.user_id in member_of:
                spec = POSITION_KEYS.get(p.key)
                ws.append([codes[p.org_unit_id], spec.titles.get(org_kind[p.org_unit_id], spec.name) if spec else p.key,
                           member_of[p.user_id], p.starts_on.isoformat() if p.starts_on else "",
                           p.ends_on.isoformat() if p.ends_on else ""])
        ws = wb.create_sheet(IN_CHARGE_SHEET)
        ws.append(HEADERS[IN_CHARGE_SHEET])
        for ic in s.scalars(select(InCharge).order_by(InCharge.id)):
            if ic.org_unit_id in org_kind and ic.leader_user_id in member_of:
                ws.append([member_of[ic.leader_user_id], codes[ic.org_unit_id]])
        wb.save(path)
        audit.append(s, action="users.export", actor_id=principal.user_id if principal else None,
                     payload=_payload(principal, unmasked=unmask, **counts), hash_alg=settings.audit_hash)
    return counts


_KINDS = "、".join(KIND_NAMES.values())
_DATE = "日期，格式 YYYY-MM-DD（如 2024-07-01），也可用 Excel 日期单元格"
# (sheet, column, required, explanation): the 说明 sheet of the template.
TEMPLATE_NOTES: list[tuple[str, str, str, str]] = [
    (ORG_SHEET, "编码", "必填", "组织的唯一编码（字母、数字、短横线）；再次导入时按编码更新，不会重复创建"),
    (ORG_SHEET, "名称", "必填", "组织全称，如“机关第一党支部”“办公室”"),
    (ORG_SHEET, "类型", "必填", f"可填：{_KINDS}"),
    (ORG_SHEET, "上级编码", "选填",
     "上级组织的编码，可以是本表中（先后顺序不限）或系统中已有的组织；留空为顶级组织。"
     "党支部设在党委或党总支之下，党总支设在党委之下，党小组设在党支部之下，科室设在单位或科室之下。"
     "改变上级编码即调整隶属关系，系统保留调整记录"),
    (ORG_SHEET, "排序", "选填", "同一上级下的显示顺序，整数，小的在前"),
    (ORG_SHEET, "成立日期", "选填", _DATE),
    (ORG_SHEET, "审批权限", "选填", "是/否：是否为有审批预备党员权限的基层党委（只有党委可以填“是”）"),
    (PEOPLE_SHEET, "人员编号", "必填", "一人一档的唯一编号（党员编号）；再次导入时按编号更新。请把该列设为文本格式"),
    (PEOPLE_SHEET, "用户名", "选填",
     "登录用的用户名（字母、数字、_ . - @，2 至 64 位）；留空时新人员用人员编号。导入不设口令，"
     "需由管理员重置口令或通过统一身份认证登录"),
    (PEOPLE_SHEET, "姓名", "必填", "最多 100 字"),
    (PEOPLE_SHEET, "身份证号", "选填",
     "18 位居民身份证号码，校验位须正确；出生日期和性别由此自动填写。加密保存，界面和导出中脱敏显示。"
     "请把该列设为文本格式，否则 Excel 会把号码改成科学计数法而丢失末位。导出文件中脱敏的号码（含 *）"
     "原样导入时保留系统中的号码；留空则清除已登记的号码"),
    (PEOPLE_SHEET, "手机号", "选填",
     "11 位手机号，以 1 开头；加密保存，脱敏显示。脱敏号码（含 *）原样导入时保留原号码"),
    (PEOPLE_SHEET, "所在部门编码", "选填", "所在单位或科室的编码（行政隶属）"),
    (PEOPLE_SHEET, "所在党组织编码", "选填", "所在党支部（或党小组、党总支、党委）的编码（党组织隶属）"),
    (PEOPLE_SHEET, "党员状态", "选填", "可填：" + "、".join(PARTY_STATUS_NAMES.values()) + "；留空为非党员"),
    (PEOPLE_SHEET, "状态日期", "选填", "取得当前状态的日期（如成为预备党员、转为正式党员的日期）；" + _DATE),
    (PEOPLE_SHEET, "邮箱", "选填", "电子邮箱"),
    (POSITION_SHEET, "组织编码", "必填", "任职的组织"),
    (POSITION_SHEET, "职务", "必填",
     "可填：" + "、".join(dict.fromkeys(POSITION_BY_NAME)) + "。书记、委员等设在党组织，局长、科长等设在单位或科室"),
    (POSITION_SHEET, "人员编号", "必填", "任职人员的人员编号（人员表或系统中已有）"),
    (POSITION_SHEET, "任期开始", "选填", _DATE),
    (POSITION_SHEET, "任期结束", "选填", "留空表示在任；" + _DATE),
    (IN_CHARGE_SHEET, "领导人员编号", "必填", "分管领导的人员编号；一位领导分管多个组织时每个组织一行"),
    (IN_CHARGE_SHEET, "分管组织编码", "必填", "被分管的组织的编码"),
]
TEMPLATE_EXAMPLES = {
    ORG_SHEET: [["jgdw", "机关党委", "党委", "", 1, "2020-01-01", "是"],
                ["jgdw-zb1", "第一党支部", "党支部", "jgdw", 1, "2020-03-01", ""],
                ["ju", "某某局", "单位", "", 2, "", ""], ["ju-bgs", "办公室", "科室", "ju", 1, "", ""]],
    PEOPLE_SHEET: [["DY0001", "zhangsan", "张三", "11010519491231002X", "13800000000", "ju-bgs", "jgdw-zb1",
                    "正式党员", "2010-07-01", ""]],
    POSITION_SHEET: [["jgdw-zb1", "书记", "DY0001", "2024-07-01", ""]],
    IN_CHARGE_SHEET: [["DY0001", "ju-bgs"]],
}


_TEXT_COLUMNS = {"编码", "上级编码", "人员编号", "身份证号", "手机号", "所在部门编码", "所在党组织编码", "组织编码",
                 "领导人员编号", "分管组织编码"}


def write_template(path: Path) -> None:
    """An empty workbook to fill in: the four sheets with headers and an example each, and a
    说明 sheet explaining every column, so operators need no other manual."""
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
    for sheet, headers in HEADERS.items():
        ws = wb.create_sheet(sheet)
        ws.append(headers)
        for row in TEMPLATE_EXAMPLES[sheet]:
            ws.append(row)
        for col in ws.columns:
            letter = col[0].column_letter
            ws.column_dimensions[letter].width = 16
            if col[0].value in _TEXT_COLUMNS:
                # Text format, so Excel keeps all 18 digits of an ID number and leading zeros of codes.
                ws.column_dimensions[letter].number_format = "@"
    notes = wb.create_sheet("说明")
    notes.append(["工作表", "列", "是否必填", "说明"])
    for row in TEMPLATE_NOTES:
        notes.append(list(row))
    notes.append([])
    notes.append(["", "", "", "导入时先检查全部行，任何一行有问题都不写入，并逐条列出“工作表:行:列: 原因”；"
                              "全部无误后一次写入。同一工作簿重复导入不会产生重复数据。"])
    for letter, width in (("A", 10), ("B", 16), ("C", 10), ("D", 100)):
        notes.column_dimensions[letter].width = width
    wb.save(path)
