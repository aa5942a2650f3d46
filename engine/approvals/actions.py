"""The actions Chinese approvers expect, on one slot of one node.

Each handler checks who may do it and whether it is possible now, changes the slots (and the
workflow, for 退回 and 撤回), records the audit event, and leaves it to `Unit.settle()` to decide
the node. The caller (WorkflowEngine.act) wraps it in one unit of work.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta

from SpiffWorkflow.util.task import TaskState

from engine.approvals.quorum import Method, base_slots
from engine.approvals.rows import TaskRow, User, load_user
from engine.approvals.unit import ROUND, Unit
from engine.clock import local
from engine.bpmn.lint import parse_guards
from engine.forms.store import validate_data
from engine.errors import Conflict, FieldProblem, Forbidden, InvalidInput, NotFound, TooManyRequests
from engine.runtime import attachments
from engine.runtime.definitions import NodeConfig

ACTION_NAMES = {
    "submit": "提交", "approve": "同意", "reject": "驳回", "return": "退回", "withdraw": "撤回",
    "transfer": "转办", "delegate": "委派", "resolve": "办理完成", "add_sign": "加签", "remove_sign": "减签",
    "cc": "抄送", "urge": "催办", "claim": "认领",
}
# Actions a node's `buttons` property can switch off; the others follow from the slot's state.
BUTTONED = ("approve", "reject", "return", "transfer", "delegate", "add_sign", "cc", "withdraw")
OUTCOME_NAMES = {"approved": "同意", "rejected": "驳回", "submitted": "提交", "returned": "退回", "resolved": "办理"}
MAX_COMMENT = 2000
MAX_PEOPLE = 20
MAX_TITLE = 300


@dataclass
class ActionInput:
    """What an action may carry; each action reads the parts it needs."""

    comment: str | None = None
    data: dict | None = None
    to: str | None = None              # 转办 / 委派: the person
    users: list[str] = field(default_factory=list)  # 加签 / 抄送: the people
    position: str | None = None        # 加签: before | after
    target: str | None = None          # 退回: the node id (default: the previous node)
    signature: str | None = None       # a drawn signature, data:image/png;base64,…

    def digest(self) -> dict:
        return {"comment": self.comment, "data": self.data, "to": self.to, "users": self.users,
                "position": self.position, "target": self.target, "signature": bool(self.signature)}


def node_buttons(node: NodeConfig) -> set[str]:
    if node.initiator:
        return {"submit"}
    buttons = node.properties.get("buttons")
    if buttons:
        return {b.strip() for b in buttons.split(",")}
    return {"approve", "reject", "return", "transfer", "delegate", "add_sign", "cc", "withdraw"}


def field_permissions(node: NodeConfig) -> dict[str, str]:
    raw = node.properties.get("fieldPermissions")
    return json.loads(raw) if raw else {}


def _comment(inp: ActionInput, *, required: str | None = None) -> str | None:
    text = (inp.comment or "").strip() or None
    if text is None and isinstance(inp.data, dict) and isinstance(inp.data.get("opinion"), str):
        text = inp.data["opinion"].strip() or None
    if text is not None and len(text) > MAX_COMMENT:
        raise InvalidInput(f"审批意见最多 {MAX_COMMENT} 字", errors=[FieldProblem("comment", f"最多 {MAX_COMMENT} 字")])
    if required and text is None:
        raise InvalidInput(f"{required}须填写意见", errors=[FieldProblem("comment", "必填")])
    return text


def _mine(unit: Unit, row: TaskRow, user: User, verb: str) -> None:
    if row.status != "open":
        raise Conflict(f"任务 {row.id}「{row.node_name}」{state_text(unit, row)}，不能再处理（{verb}）")
    if row.assignee_id != user.id:
        raise Forbidden(f"任务 {row.id}「{row.node_name}」不是 {user.display_name} 的待办")


def state_text(unit: Unit, row: TaskRow) -> str:
    who = f"由 {unit.display_name(row.completed_by)} " if row.completed_by else ""
    when = f"{who}于 {local(row.completed_at):%Y-%m-%d %H:%M} " if row.completed_at else ""
    verb = OUTCOME_NAMES.get(row.outcome or "", "处理")
    return {
        "completed": f"已{when}{verb}", "waiting": "还没有轮到", "cancelled": "已取消", "transferred": "已转办",
        "removed": "已减签", "withdrawn": "已撤回", "cc": "是抄送",
    }.get(row.status, row.status)


def _button(node: NodeConfig, action: str) -> None:
    if action in BUTTONED and action not in node_buttons(node):
        _refuse(node, action)


def _refuse(node: NodeConfig, action: str):
    can = "、".join(ACTION_NAMES[a] for a in ACTION_NAMES if a in node_buttons(node))
    raise InvalidInput(f"「{node.name}」不能执行“{ACTION_NAMES[action]}”；可用：{can}")


def _running(unit: Unit) -> None:
    if unit.inst.status != "running":
        raise Conflict(f"流程实例 {unit.inst.id} 已结束（{unit.inst.status}）")


def _ready(unit: Unit, row: TaskRow):
    t = unit.spiff_task(row)
    if t is None or t.state != TaskState.READY:
        raise Conflict(f"任务 {row.id} 在流程中已不是待办状态")
    return t


# -- form data ------------------------------------------------------------------------------
def take_data(engine, unit: Unit, row: TaskRow, node: NodeConfig, data: dict | None,
              user: User | None = None) -> tuple[dict, dict]:
    """Split submitted data into the node form's own values (validated) and edits of earlier fields
    the node's fieldPermissions allow; a read-only or hidden field that is changed is refused. The
    attachment ids in file fields must be the instance's or `user`'s staged files (bound here)."""
    data = dict(data or {})
    spiff_task = unit.spiff_task(row)
    current = spiff_task.data if spiff_task is not None else {}
    perms = field_permissions(node)
    own_props: set[str] = set()
    own: dict = {}
    form = None
    if node.form_key:
        form = engine.definitions.form_for(unit.sql, node.form_key, unit.d.form_refs[node.form_key])
        own_props = set((form.schema.get("properties") or {}).keys())
    elif node.initiator and data:
        raise InvalidInput(f"「{node.name}」没有表单，不接受表单数据")
    problems = []
    edits = {}
    start = None if node.initiator else initiator_form(engine, unit)
    app_props = set((start.schema.get("properties") or {}).keys()) if start is not None else set()
    for k, v in data.items():
        if k not in app_props or k in own_props:
            # the node's own field (or an unknown one, which the node form's validation names)
            if perms.get(k, "edit") == "edit":
                own[k] = v
            else:
                problems.append(FieldProblem(k, "隐藏字段，不能提交" if perms[k] == "hidden" else "只读字段，不能修改"))
        elif perms.get(k, "read") == "edit":
            edits[k] = v
        elif current.get(k) != v or k not in current:
            problems.append(FieldProblem(k, "隐藏字段，不能提交" if perms.get(k) == "hidden" else "只读字段，不能修改"))
    if form is not None:
        for k, v in own.items():
            problems += readonly_changes((form.schema.get("properties") or {}).get(k), v, current.get(k), k)
    if problems:
        raise InvalidInput("提交了不允许修改的字段：" + "、".join(p.field for p in problems), errors=problems)
    if form is not None:
        found = validate_data(form.schema, own, form.validator)
        if found:
            raise InvalidInput(f"表单「{form.title}」填写有误：" + "；".join(
                f"{p.field or '表单'} {p.reason}" for p in found), errors=found)
    if edits:
        if start is not None:
            merged = {k: current.get(k) for k in (start.schema.get("properties") or {}) if k in current}
            merged.update(edits)
            found = validate_data(start.schema, merged, start.validator)
            if found:
                raise InvalidInput("修改的字段有误：" + "；".join(f"{p.field} {p.reason}" for p in found), errors=found)
    if user is not None:
        staged: list[int] = []
        if form is not None:
            staged += attachments.check_form_files(unit.sql, attachments.file_fields(form.schema, form.ui_schema),
                                                   own, instance_id=unit.inst.id, user_id=user.id)
        if edits and start is not None:
            staged += attachments.check_form_files(unit.sql, attachments.file_fields(start.schema, start.ui_schema),
                                                   edits, instance_id=unit.inst.id, user_id=user.id)
        if unit.inst.id is None:  # a start: the instance's id comes with its insert
            unit.staged += staged
        else:
            attachments.bind_staged(unit.sql, staged, instance_id=unit.inst.id, task_id=row.id, user_id=user.id)
    return own, edits


def _has_readonly(schema) -> bool:
    if not isinstance(schema, dict):
        return False
    if schema.get("readOnly") is True:
        return True
    return any(_has_readonly(v) for v in (schema.get("properties") or {}).values()) or _has_readonly(schema.get("items"))


def readonly_changes(schema, submitted, current, path: str) -> list[FieldProblem]:
    """A form's `readOnly` parts (what a step shows but must not change: the month being collected,
    the members a finding is about) compared with the instance's data: any change is refused, so
    what a later gateway or operator reads is what the process put there, not what was typed."""
    if not isinstance(schema, dict):
        return []
    if schema.get("readOnly") is True:
        return [] if submitted == current else [FieldProblem(path, "只读字段，不能修改")]
    out: list[FieldProblem] = []
    props = schema.get("properties")
    if isinstance(props, dict) and isinstance(submitted, dict):
        for k, v in submitted.items():
            out += readonly_changes(props.get(k), v, current.get(k) if isinstance(current, dict) else None,
                                    f"{path}/{k}")
    items = schema.get("items")
    if isinstance(items, dict) and isinstance(submitted, list) and _has_readonly(items):
        before = current if isinstance(current, list) else []
        if len(submitted) != len(before):
            return out + [FieldProblem(path, "含只读内容的列表不能增删行")]
        for n, (v, c) in enumerate(zip(submitted, before)):
            out += readonly_changes(items, v, c, f"{path}/{n}")
    return out


def check_guards(unit: Unit, node: NodeConfig, data: dict) -> None:
    """The node's `guards` (engine/bpmn/lint.py parse_guards), each an expression over the instance's
    data with what is being submitted: the first that does not hold refuses the action with its
    message, naming its field, before anything is written. Scripts' helpers and `settings` apply."""
    raw = node.properties.get("guards")
    if not raw:
        return
    env = unit.d.script_engine.environment
    for g in parse_guards(raw):
        try:
            ok = env.evaluate(g["rule"], dict(data))
        except Exception as exc:  # a field the rule needs is missing or malformed: say which rule
            message = getattr(exc, "message", None) or str(exc)
            raise InvalidInput(f"{g['message']}（无法判断：{message}）",
                               errors=[FieldProblem(g.get("field") or "data", g["message"])]) from None
        if not ok:
            raise InvalidInput(g["message"], errors=[FieldProblem(g.get("field") or "data", g["message"])])


def initiator_form(engine, unit: Unit):
    for raw in unit.d.nodes.values():
        if raw.get("initiator") and raw.get("form_key"):
            return engine.definitions.form_for(unit.sql, raw["form_key"], unit.d.form_refs[raw["form_key"]])
    return None


# -- handlers ----------------------------------------------------------------------------------
def submit(engine, unit: Unit, row: TaskRow, user: User, inp: ActionInput) -> None:
    _mine(unit, row, user, "提交")
    node = unit.d.node(row.node_id)
    if not node.initiator:
        _refuse(node, "submit")
    spiff_task = _ready(unit, row)
    own, _ = take_data(engine, unit, row, node, inp.data, user)
    check_guards(unit, node, {**spiff_task.data, **own})
    comment = _comment(inp)
    row.close("completed", at=unit.at, by=user.id, outcome="submitted", comment=comment)
    row.data = own
    spiff_task.data.update(own)
    if own.get("title"):
        unit.inst.title = str(own["title"])[:MAX_TITLE]
    unit.event("task.submit", user.id, row.on_behalf_of_id, row, {
        "node": row.node_id, "node_name": row.node_name, "outcome": "submitted", "comment": comment, "data": own,
        "resubmitted": bool(row.note and row.note.get("kind") == "returned")})


def decide(engine, unit: Unit, row: TaskRow, user: User, inp: ActionInput, outcome: str) -> None:
    action = "approve" if outcome == "approved" else "reject"
    _mine(unit, row, user, ACTION_NAMES[action])
    node = unit.d.node(row.node_id)
    if node.initiator:
        _refuse(node, action)
    if row.origin == "delegate":
        raise InvalidInput("委派给您的任务请“办理完成”后交还委派人决定，不能直接同意或驳回")
    _button(node, action)
    spiff_task = _ready(unit, row)
    need_opinion = action == "reject" or node.properties.get("opinionRequired") == "true"
    comment = _comment(inp, required=ACTION_NAMES[action] if need_opinion else None)
    own, edits = take_data(engine, unit, row, node, inp.data, user)
    if outcome == "approved":
        check_guards(unit, node, {**spiff_task.data, **edits, **own})
    if node.properties.get("signatureRequired") == "true":
        if not inp.signature:
            raise InvalidInput("本节点须手写签名", errors=[FieldProblem("signature", "必填")])
        content = attachments.decode_signature(inp.signature)
        row.signature_id = attachments.insert(
            unit.sql, engine.settings, instance_id=unit.inst.id, task_id=row.id, filename=f"签名-{row.id}.png",
            content_type="image/png", content=content, purpose="signature", user_id=user.id, at=unit.at)
    row.close("completed", at=unit.at, by=user.id, outcome=outcome, comment=comment)
    row.data = {**own, **edits} or None
    if edits and outcome == "approved":
        spiff_task.data.update(edits)
    unit.event(f"task.{action}", user.id, row.on_behalf_of_id, row, {
        "node": row.node_id, "node_name": row.node_name, "outcome": outcome, "comment": comment, "data": own,
        "edits": edits, "signature": row.signature_id})


def do_return(engine, unit: Unit, row: TaskRow, user: User, inp: ActionInput) -> None:
    _mine(unit, row, user, "退回")
    node = unit.d.node(row.node_id)
    _button(node, "return")
    if row.origin == "delegate":
        raise InvalidInput("委派给您的任务不能退回，请办理完成后交还委派人")
    spiff_task = _ready(unit, row)
    comment = _comment(inp, required="退回")
    targets = unit.return_targets(spiff_task)
    if not targets:
        raise Conflict(f"「{node.name}」之前没有可退回的节点")
    if inp.target:
        target = next((t for t in targets if t.task_spec.name == inp.target), None)
        if target is None:
            names = "、".join(f"{unit.d.node(t.task_spec.name).name}（{t.task_spec.name}）" for t in targets)
            raise InvalidInput(f"不能退回到 {inp.target}；可退回：{names}",
                               errors=[FieldProblem("target", "不在已走过的路径上")])
    else:
        target = targets[0]
    row.close("completed", at=unit.at, by=user.id, outcome="returned", comment=comment)
    for r in unit.activation_rows(row):
        if r.undecided:
            r.close("cancelled")
    target_node = unit.d.node(target.task_spec.name)
    unit.event("task.return", user.id, row.on_behalf_of_id, row, {
        "node": row.node_id, "node_name": row.node_name, "outcome": "returned", "comment": comment,
        "to_node": target_node.node_id, "to_node_name": target_node.name})
    unit.return_to(target, {"kind": "returned", "from_node": node.node_id, "from_node_name": node.name,
                            "by": user.display_name, "reason": comment})


def transfer(engine, unit: Unit, row: TaskRow, user: User, inp: ActionInput) -> None:
    _mine(unit, row, user, "转办")
    node = unit.d.node(row.node_id)
    _button(node, "transfer")
    target = _person(unit, inp.to, "to")
    _not_holding(unit, row, [target])
    if any(c.parent_id == row.id and c.undecided for c in unit.rows):
        raise Conflict("此任务还有加签或委派未完成，不能转办；请先减签或等待其办理")
    comment = _comment(inp)
    row.close("transferred", at=unit.at, by=user.id, outcome="transferred", comment=comment)
    new = unit.add(row.sibling(target.id, note={"kind": "transferred", "by": user.display_name, "reason": comment}))
    unit.event("task.transfer", user.id, row.on_behalf_of_id, row, {
        "node": row.node_id, "node_name": row.node_name, "to": target.username, "comment": comment})
    unit.notify(target.id, "task.assigned", f"转办给您：{unit.inst.title}「{row.node_name}」",
                f"{user.display_name}：{comment or ''}", new)


def delegate(engine, unit: Unit, row: TaskRow, user: User, inp: ActionInput) -> None:
    _mine(unit, row, user, "委派")
    node = unit.d.node(row.node_id)
    _button(node, "delegate")
    if row.origin == "delegate":
        raise InvalidInput("委派给您的任务不能再委派")
    target = _person(unit, inp.to, "to")
    _not_holding(unit, row, [target])
    comment = _comment(inp)
    child = unit.add(row.sibling(target.id, origin="delegate", parent_id=row.id,
                                 note={"kind": "delegated", "by": user.display_name, "reason": comment}))
    row.status, row.dirty = "waiting", True
    unit.event("task.delegate", user.id, row.on_behalf_of_id, row, {
        "node": row.node_id, "node_name": row.node_name, "to": target.username, "comment": comment})
    unit.notify(target.id, "task.assigned", f"委派给您：{unit.inst.title}「{row.node_name}」",
                f"{user.display_name}：{comment or ''}", child)


def resolve(engine, unit: Unit, row: TaskRow, user: User, inp: ActionInput) -> None:
    _mine(unit, row, user, "办理")
    if row.origin != "delegate":
        raise InvalidInput("只有委派来的任务需要“办理完成”")
    _ready(unit, row)
    comment = _comment(inp, required="办理完成")
    node = unit.d.node(row.node_id)
    own, _ = take_data(engine, unit, row, node, inp.data, user)
    row.close("completed", at=unit.at, by=user.id, outcome="resolved", comment=comment)
    row.data = own or None
    owner = next(r for r in unit.rows if r.id == row.parent_id)
    owner.note, owner.dirty = {"kind": "resolved", "by": user.display_name, "reason": comment}, True
    unit.event("task.resolve", user.id, None, row, {
        "node": row.node_id, "node_name": row.node_name, "comment": comment, "owner": unit.username(owner.assignee_id)})
    unit.notify(owner.assignee_id, "task.resolved", f"委派已办理：{unit.inst.title}「{row.node_name}」",
                f"{user.display_name}：{comment}", owner)


def add_sign(engine, unit: Unit, row: TaskRow, user: User, inp: ActionInput) -> None:
    _mine(unit, row, user, "加签")
    node = unit.d.node(row.node_id)
    _button(node, "add_sign")
    if row.origin == "delegate":
        raise InvalidInput("委派给您的任务不能加签")
    if inp.position not in ("before", "after"):
        raise InvalidInput("加签须指明 before（前加签）或 after（后加签）",
                           errors=[FieldProblem("position", "before 或 after")])
    targets = _people(unit, inp.users)
    _not_holding(unit, row, targets)
    comment = _comment(inp)
    origin = f"add_{inp.position}"
    for p in targets:
        new = unit.add(row.sibling(p.id, "waiting", origin=origin, parent_id=row.id,
                                   note={"kind": origin, "by": user.display_name, "reason": comment}))
        if inp.position == "before":
            unit.notify(p.id, "task.assigned", f"加签：{unit.inst.title}「{row.node_name}」",
                        f"{user.display_name}请您先审批：{comment or ''}", new)
    unit.event("task.add_sign", user.id, row.on_behalf_of_id, row, {
        "node": row.node_id, "node_name": row.node_name, "position": inp.position,
        "users": [p.username for p in targets], "comment": comment})


def remove_sign(engine, unit: Unit, row: TaskRow, user: User, inp: ActionInput) -> None:
    """减签: the slot that added `row` takes it back while it has not acted."""
    if row.origin not in ("add_before", "add_after"):
        raise InvalidInput("只能减去加签的审批人")
    parent = next((r for r in unit.rows if r.id == row.parent_id), None)
    if parent is None or parent.assignee_id != user.id:
        raise Forbidden(f"只有加签人可以减签任务 {row.id}")
    if not row.undecided:
        raise Conflict(f"任务 {row.id} {state_text(unit, row)}，不能减签")
    comment = _comment(inp)
    row.close("removed", at=unit.at, by=user.id, comment=comment)
    unit.event("task.remove_sign", user.id, None, row, {
        "node": row.node_id, "node_name": row.node_name, "removed": unit.username(row.assignee_id),
        "comment": comment})


def cc(engine, unit: Unit, row: TaskRow, user: User, inp: ActionInput) -> None:
    if row.assignee_id != user.id and unit.inst.initiator.id != user.id:
        raise Forbidden("只有本任务的处理人或发起人可以抄送")
    node = unit.d.node(row.node_id)
    if row.assignee_id == user.id:
        _button(node, "cc")
    targets = _people(unit, inp.users, need=None)
    comment = _comment(inp)
    have = {r.assignee_id for r in unit.rows if r.kind == "cc"}
    added = []
    for p in targets:
        if p.id in have:
            continue
        new = unit.add(row.sibling(p.id, "cc", kind="cc", form_key=None, form_version=None, candidate_rule=None,
                                   slot=0, origin=None, parent_id=None, due_at=None, completed_by=user.id,
                                   note={"kind": "cc", "by": user.display_name, "reason": comment}))
        added.append(p.username)
        unit.notify(p.id, "task.cc", f"抄送：{unit.inst.title}", f"{user.display_name}：{comment or ''}", new)
    unit.event("task.cc", user.id, None, row, {"node": row.node_id, "node_name": row.node_name, "users": added,
                                              "comment": comment})


def urge(engine, unit: Unit, row: TaskRow, user: User, inp: ActionInput) -> None:
    if unit.inst.initiator.id != user.id:
        raise Forbidden("只有发起人可以催办")
    _running(unit)
    if not row.undecided or row.assignee_id == user.id:
        raise Conflict(f"任务 {row.id}「{row.node_name}」{'是您自己的待办' if row.undecided else state_text(unit, row)}，无需催办")
    rows = [r for r in unit.activation_rows(row) if r.undecided]
    window = timedelta(minutes=engine.settings.urge_interval_minutes)
    last = max((r.urged_at for r in unit.activation_rows(row) if r.urged_at), default=None)
    if last is not None and unit.at - last < window:
        minutes = int((window - (unit.at - last)).total_seconds() // 60) + 1
        raise TooManyRequests(f"「{row.node_name}」{local(last):%H:%M} 已催办过，请 {minutes} 分钟后再催")
    comment = _comment(inp)
    for r in rows:
        r.urged_at, r.dirty = unit.at, True
        if r.status == "open":
            unit.notify(r.assignee_id, "task.urged", f"催办：{unit.inst.title}「{r.node_name}」",
                        f"{user.display_name}：{comment or '请尽快处理'}", r)
    unit.event("task.urge", user.id, None, row, {
        "node": row.node_id, "node_name": row.node_name, "comment": comment,
        "notified": [unit.username(r.assignee_id) for r in rows if r.status == "open"]})


def claim(engine, unit: Unit, row: TaskRow, user: User, inp: ActionInput) -> None:
    _mine(unit, row, user, "认领")
    node = unit.d.node(row.node_id)
    method = Method.parse(node.properties.get("approveMethod"))
    if method.kind not in ("single", "any"):
        raise InvalidInput(f"「{node.name}」是{method.label}，每位审批人都须审批，不能认领")
    others = [r for r in base_slots(unit.activation_rows(row)) if r is not row and r.undecided]
    if not others:
        raise Conflict("此任务只有您一位处理人，无需认领")
    for r in others:
        r.close("cancelled")
        r.note = {"kind": "claimed", "by": user.display_name}
    unit.event("task.claim", user.id, row.on_behalf_of_id, row, {
        "node": row.node_id, "node_name": row.node_name, "released": [unit.username(r.assignee_id) for r in others]})


def withdraw_decision(engine, unit: Unit, row: TaskRow, user: User, inp: ActionInput) -> None:
    """撤回 by an approver of their own approval, while nobody after them has acted."""
    _running(unit)
    if row.completed_by != user.id or row.outcome != "approved" or row.status != "completed":
        raise Forbidden("只能撤回自己作出的同意")
    node = unit.d.node(row.node_id)
    _button(node, "withdraw")
    comment = _comment(inp)
    spiff_task = unit.spiff_task(row)
    same = unit.activation_rows(row)
    active = spiff_task is not None and spiff_task.state == TaskState.READY and \
        spiff_task.internal_data.get(ROUND) == row.activation
    later = [r for r in unit.rows if r.completed_at and r.completed_at > row.completed_at and r.completed_by
             and r.kind != "cc" and r.status == "completed" and not (active and r in same)]
    if later:
        r = later[0]
        raise Conflict(f"「{r.node_name}」已由 {unit.display_name(r.completed_by)} 处理，不能再撤回")
    row.close("withdrawn")
    unit.event("task.withdraw", user.id, row.on_behalf_of_id, row, {
        "node": row.node_id, "node_name": row.node_name, "comment": comment})
    if active:
        unit.add(row.sibling(row.assignee_id, on_behalf_of_id=row.on_behalf_of_id,
                             note={"kind": "withdrawn", "by": user.display_name}))
        return
    if spiff_task is None or spiff_task.state != TaskState.COMPLETED:
        raise Conflict("该节点已不在流程路径上，不能撤回")
    unit.carry[row.node_id] = {(r.on_behalf_of_id or r.completed_by): r for r in same
                               if r.status == "completed" and r.outcome == "approved" and r.completed_by
                               and r is not row}
    unit.return_to(spiff_task, {"kind": "withdrawn", "by": user.display_name, "reason": comment})


HANDLERS = {
    "submit": submit,
    "approve": lambda e, u, r, user, i: decide(e, u, r, user, i, "approved"),
    "reject": lambda e, u, r, user, i: decide(e, u, r, user, i, "rejected"),
    "return": do_return, "transfer": transfer, "delegate": delegate, "resolve": resolve, "add_sign": add_sign,
    "remove_sign": remove_sign, "cc": cc, "urge": urge, "claim": claim, "withdraw": withdraw_decision,
}


def allowed_actions(unit: Unit, row: TaskRow, user: User) -> list[str]:
    """What `user` can do on `row` now; the task page shows these as buttons."""
    if unit.inst.status != "running":
        return []
    node = unit.d.node(row.node_id)
    out: list[str] = []
    if row.status == "open" and row.assignee_id == user.id:
        if node.initiator:
            out.append("submit")
        elif row.origin == "delegate":
            out.append("resolve")
        else:
            out += [a for a in ("approve", "reject", "return", "transfer", "delegate", "add_sign", "cc")
                    if a in node_buttons(node)]
            method = Method.parse(node.properties.get("approveMethod"))
            if method.kind in ("single", "any") and len([r for r in base_slots(unit.activation_rows(row))
                                                         if r.undecided]) > 1:
                out.append("claim")
    if row.undecided and unit.inst.initiator.id == user.id and row.assignee_id != user.id:
        out.append("urge")
    if row.status == "completed" and row.completed_by == user.id and row.outcome == "approved" \
            and "withdraw" in node_buttons(node):
        out.append("withdraw")
    if row.undecided and row.origin in ("add_before", "add_after"):
        parent = next((r for r in unit.rows if r.id == row.parent_id), None)
        if parent is not None and parent.assignee_id == user.id:
            out.append("remove_sign")
    return out


def _person(unit: Unit, username: str | None, field_name: str) -> User:
    if not username:
        raise InvalidInput("请选择人员", errors=[FieldProblem(field_name, "必填")])
    try:
        return load_user(unit.sql, username, need="task.act")
    except (NotFound, Forbidden) as exc:
        raise InvalidInput(exc.message, errors=[FieldProblem(field_name, exc.message)]) from None


def _people(unit: Unit, usernames: list[str], *, need: str | None = "task.act") -> list[User]:
    names = list(dict.fromkeys(u for u in (usernames or []) if u))
    if not names:
        raise InvalidInput("请选择人员", errors=[FieldProblem("users", "至少一人")])
    if len(names) > MAX_PEOPLE:
        raise InvalidInput(f"一次最多 {MAX_PEOPLE} 人", errors=[FieldProblem("users", f"最多 {MAX_PEOPLE} 人")])
    out = []
    for n in names:
        try:
            out.append(load_user(unit.sql, n, need=need))
        except (NotFound, Forbidden) as exc:
            raise InvalidInput(exc.message, errors=[FieldProblem("users", exc.message)]) from None
    return out


def _not_holding(unit: Unit, row: TaskRow, targets: list[User]) -> None:
    holding = {r.assignee_id for r in unit.activation_rows(row) if r.undecided}
    for p in targets:
        if p.id in holding:
            raise Conflict(f"{p.display_name} 已是「{row.node_name}」的处理人")
