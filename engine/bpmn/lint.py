"""djflow's lint rules over a parsed BPMN tree. Every problem carries the element's real line.

Codes (stable; the designer pins them to elements):
  DJ101 user task without a form            DJ102 form not found
  DJ201 assignment rule does not parse      DJ202 user task with no assignment rule
  DJ203 first user task is not the initiator's
  DJ301 script or condition refused by the restricted compiler
  DJ401 node property with an invalid value (a `guards` expression that does not compile included)
  DJ701–DJ705 service task: no operator, unknown operator, parameters, retry, a parameter id that is
        also an element id
"""
from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Callable

from lxml import etree

from engine.bpmn.loader import NS, Problem
from engine.org.rules import RuleSyntaxError, parse_rule
from engine.runtime.scripts import check_script
from engine.scheduler.calendar import DurationError, parse_duration

BPMN = "{%s}" % NS["bpmn"]
SPIFF = "{%s}" % NS["spiffworkflow"]

BUTTONS = {"approve", "reject", "return", "transfer", "delegate", "add_sign", "cc", "withdraw", "submit"}
_ENUMS = {
    "rejectPolicy": {"end", "return_initiator", "return_previous"},
    "emptyAssignee": {"auto_approve", "process_admin", "reject"},
    "dedupe": {"off", "consecutive", "once"},
    "initiatorIsApprover": {"self", "skip", "superior"},
    "opinionRequired": {"true", "false"},
    "signatureRequired": {"true", "false"},
    "mergeData": {"true", "false"},
    "confidential": {"true", "false"},
}


def properties(el: etree._Element) -> dict[str, tuple[str, int]]:
    """spiffworkflow:property name → (value, line) of one element."""
    out = {}
    for prop in el.iterfind("bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property", NS):
        out[prop.get("name", "")] = (prop.get("value", ""), prop.sourceline or el.sourceline or 1)
    return out


def check_property(name: str, value: str) -> str | None:
    """The reason a node property value is invalid, or None."""
    if name in _ENUMS and value not in _ENUMS[name]:
        return f"{name} 的取值 '{value}' 无效；可用：{'、'.join(sorted(_ENUMS[name]))}"
    if name == "approveMethod":
        if value in ("single", "any", "all", "sequential"):
            return None
        m = re.fullmatch(r"ratio:(0?\.\d+|1(\.0+)?)", value)
        if not m or not 0 < float(m.group(1)) <= 1:
            return f"approveMethod 的取值 '{value}' 无效；可用：single、any、all、sequential、ratio:0.6"
    if name == "buttons":
        unknown = {b.strip() for b in value.split(",")} - BUTTONS
        if unknown:
            return f"buttons 中有未知按钮：{'、'.join(sorted(unknown))}"
    if name == "fieldPermissions":
        try:
            perms = json.loads(value)
        except json.JSONDecodeError as exc:
            return f"fieldPermissions 不是合法 JSON：{exc.msg}"
        if not isinstance(perms, dict) or any(v not in ("edit", "read", "hidden") for v in perms.values()):
            return "fieldPermissions 应为 {字段: edit|read|hidden}"
    if name == "guards":
        return guard_problem(value)
    if name == "dueIn":
        try:
            parse_duration(value)
        except DurationError as exc:
            return f"dueIn 的取值无效：{exc}"
    if name == "timeout":
        from engine.scheduler import sla

        try:
            policy = sla.parse(value)
            parse_duration(policy.every)
            if policy.then == "escalate":
                parse_rule(policy.escalation_rule)
        except (ValueError, DurationError, RuleSyntaxError) as exc:
            return str(exc) if "timeout" in str(exc) else f"timeout '{value}'：{exc}"
    return None


def parse_guards(value: str) -> list[dict]:
    """The `guards` property: a JSON list of {"rule": expression that must hold, "message": the
    reason shown when it does not, "field": the form field it is about (optional)}. ValueError."""
    try:
        guards = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f"guards 不是合法 JSON：{exc.msg}") from None
    if not isinstance(guards, list) or not guards:
        raise ValueError("guards 应为非空列表 [{rule, message, field}]")
    for n, g in enumerate(guards, 1):
        if not isinstance(g, dict) or not isinstance(g.get("rule"), str) or not g["rule"].strip() \
                or not isinstance(g.get("message"), str) or not g["message"].strip() \
                or not isinstance(g.get("field", ""), str) or set(g) - {"rule", "message", "field"}:
            raise ValueError(f"guards 第 {n} 条应为 {{rule: 表达式, message: 提示, field: 字段（可选）}}")
    return guards


def guard_problem(value: str) -> str | None:
    try:
        guards = parse_guards(value)
    except ValueError as exc:
        return str(exc)
    for n, g in enumerate(guards, 1):
        refused = check_script(g["rule"], "eval")
        if refused:
            return f"guards 第 {n} 条的表达式无法编译：{refused[0][1]}"
    return None


def first_user_task(process: etree._Element) -> etree._Element | None:
    """The first user task reached from the process's none start event(s), breadth first."""
    nodes = {el.get("id"): el for el in process if isinstance(el.tag, str) and el.get("id")}
    flows: dict[str, list[str]] = {}
    for flow in process.iterfind("bpmn:sequenceFlow", NS):
        flows.setdefault(flow.get("sourceRef"), []).append(flow.get("targetRef"))
    starts = _none_starts(process)
    queue, seen = deque(starts), set(starts)
    while queue:
        node = nodes.get(queue.popleft())
        if node is None:
            continue
        if node.tag == BPMN + "userTask":
            return node
        for target in flows.get(node.get("id"), []):
            if target not in seen:
                seen.add(target)
                queue.append(target)
    return None


def _none_starts(process: etree._Element) -> list[str]:
    """Start events a person triggers (no timer/message/signal definition): they need an initiator task."""
    return [el.get("id") for el in process.iterfind("bpmn:startEvent", NS)
            if not any(isinstance(c.tag, str) and c.tag.endswith("EventDefinition") for c in el)]


def lane_rules(process: etree._Element, configured: dict[str, str]) -> dict[str, tuple[str, int]]:
    """flow node id → (rule, line) from its lane: a lane property, or process.json "lanes"."""
    out = {}
    for lane in process.iterfind(".//bpmn:lane", NS):
        rule = properties(lane).get("assignee")
        if rule is None and lane.get("name") in configured:
            rule = (configured[lane.get("name")], lane.sourceline or 1)
        if rule is not None:
            for ref in lane.iterfind("bpmn:flowNodeRef", NS):
                out[(ref.text or "").strip()] = rule
    return out


def lint_tree(tree: etree._ElementTree, filename: str, *, process_id: str,
              form_exists: Callable[[str], bool], lanes: dict[str, str] | None = None) -> list[Problem]:
    root = tree.getroot()
    process = root.find(f"bpmn:process[@id='{process_id}']", NS)
    if process is None:
        return [Problem(filename, 1, "DJ030", f"没有 id 为 {process_id} 的流程")]
    problems: list[Problem] = []
    by_lane = lane_rules(process, lanes or {})

    for task in process.iter(BPMN + "userTask"):
        line, label = task.sourceline or 1, f"{task.get('name') or task.get('id')}（{task.get('id')}）"
        props = properties(task)
        form = props.get("formJsonSchemaFilename")
        if form is None or not form[0]:
            problems.append(Problem(filename, line, "DJ101", f"用户任务 {label} 没有指定表单 formJsonSchemaFilename"))
        elif not form_exists(form[0]):
            problems.append(Problem(filename, form[1], "DJ102", f"用户任务 {label} 的表单 '{form[0]}' 不存在"))
        rule = props.get("assignee") or by_lane.get(task.get("id"))
        if rule is None:
            problems.append(Problem(filename, line, "DJ202", f"用户任务 {label} 没有处理人规则（assignee 属性或泳道规则）"))
        else:
            try:
                parse_rule(rule[0])
            except RuleSyntaxError as exc:
                reason = str(exc) if f"'{rule[0]}'" in str(exc) else f"处理人规则 '{rule[0]}'：{exc}"
                problems.append(Problem(filename, rule[1], "DJ201", f"用户任务 {label}：{reason}"))
        for name, (value, pline) in props.items():
            reason = check_property(name, value)
            if reason:
                problems.append(Problem(filename, pline, "DJ401", f"用户任务 {label}：{reason}"))

    first = first_user_task(process)
    if first is not None:
        rule = properties(first).get("assignee") or by_lane.get(first.get("id"))
        if rule is not None and rule[0].strip() != "initiator":
            problems.append(Problem(filename, rule[1], "DJ203",
                                    f"第一个用户任务 {first.get('name') or first.get('id')} 必须由发起人处理"
                                    f"（assignee=initiator），而不是 '{rule[0]}'"))
    elif _none_starts(process):
        problems.append(Problem(filename, process.sourceline or 1, "DJ203", "流程没有发起人任务（发起申请）"))

    problems += script_problems(process, filename)
    for other in root.iterfind("bpmn:process", NS):
        problems += service_problems(other, filename)
    for other in root.iterfind("bpmn:process", NS):  # processes it calls run the same restricted code
        if other is not process:
            problems += script_problems(other, filename)
    return problems


def service_problems(process: etree._Element, filename: str) -> list[Problem]:
    """A service task names a known operator (engine/runtime/services.py) with its required
    parameters, and its retry settings are sane; the parameter expressions are checked with the
    other scripts."""
    from engine.runtime.services import OPERATORS

    problems = []
    # SpiffWorkflow looks flow targets up by id anywhere in the file, parameters included: a
    # parameter whose id is also an element's id makes the parser take it for the target
    element_ids = {el.get("id") for el in process.iter() if isinstance(el.tag, str) and el.tag.startswith(BPMN)}
    for param in process.iter(SPIFF + "parameter"):
        if param.get("id") in element_ids:
            problems.append(Problem(filename, param.sourceline or 1, "DJ705",
                                    f"服务参数 {param.get('id')} 与流程中某个元素的 id 相同，SpiffWorkflow 会把它当成连线目标；"
                                    "请给该元素另取一个 id"))
    for task in process.iter(BPMN + "serviceTask"):
        line, label = task.sourceline or 1, f"{task.get('name') or task.get('id')}（{task.get('id')}）"
        op = task.find(".//spiffworkflow:serviceTaskOperator", NS)
        if op is None:
            problems.append(Problem(filename, line, "DJ701", f"服务任务 {label} 没有 spiffworkflow:serviceTaskOperator"))
            continue
        name, oline = op.get("id") or "", op.sourceline or line
        known = OPERATORS.get(name)
        if known is None:
            problems.append(Problem(filename, oline, "DJ702", f"服务任务 {label}：未知的服务操作 '{name}'"
                                                               f"（可用：{', '.join(OPERATORS)}）"))
            continue
        given = {p.get("id"): p for p in op.iterfind(".//spiffworkflow:parameter", NS)}
        for need in known["required"]:
            if need not in given or given[need].get("value") is None:
                problems.append(Problem(filename, oline, "DJ703", f"服务任务 {label}：{name} 缺少参数 {need}"))
        for pid, p in given.items():
            if pid not in known["required"] + known["optional"]:
                problems.append(Problem(filename, p.sourceline or oline, "DJ703",
                                        f"服务任务 {label}：{name} 没有参数 {pid}"))
        retry = op.find("spiffworkflow:retry", NS)
        if retry is not None:
            for attr, top in (("retries", 10), ("backoff_base", 3600)):
                value = retry.get(attr)
                if value is not None and not (value.isdigit() and int(value) <= top):
                    problems.append(Problem(filename, retry.sourceline or oline, "DJ704",
                                            f"服务任务 {label}：retry {attr} 应为 0 到 {top} 的整数，而不是 '{value}'"))
    return problems


def script_problems(process: etree._Element, filename: str) -> list[Problem]:
    """Every condition, script and timer expression must compile in the restricted environment."""
    found: list[tuple[etree._Element, str, str]] = []
    for el in process.iter(BPMN + "conditionExpression"):
        found.append((el, el.text or "", "eval"))
    for tag in ("timeDate", "timeDuration", "timeCycle"):
        for el in process.iter(BPMN + tag):
            found.append((el, el.text or "", "eval"))
    for el in process.iter(BPMN + "script"):
        found.append((el, el.text or "", "exec"))
    for tag in ("preScript", "postScript"):
        for el in process.iter(SPIFF + tag):
            found.append((el, el.text or "", "exec"))
    params = [(el, el.get("value") or "", "eval") for el in process.iter(SPIFF + "parameter")]
    problems = []
    for el, source, mode in found + params:
        if not source.strip():
            continue
        owner = el.getparent()
        label = owner.get("id") if owner is not None else ""
        # An expression is compiled stripped: add back the lines its leading whitespace spans.
        lead = source[: len(source) - len(source.lstrip())].count("\n") if mode == "eval" else 0
        for line, message in check_script(source.strip() if mode == "eval" else source, mode):
            at = (el.sourceline or 1) + lead + (line or 1) - 1
            problems.append(Problem(filename, at, "DJ301", f"{label}：脚本不被允许：{message}"))
    return problems
