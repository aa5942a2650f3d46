"""What the monitor shows of one instance beyond its tasks: its process data, masked, and whether
its audit events are intact.

Variables: the instance's current data (the newest live task's data over the workflow's own),
each with the title its form gives it. Masked, with the reason said, are ID and mobile numbers
(by field name or by shape, with the security policy's patterns), what a confidential node's
assignees filled in (民主测评), and the initiator's facts. The full values stay in the process.

Chain status: the stretch of the log around the instance's events is hashed again from the stored
fields and linked, and the newest checkpoint is asked how many of them it covers. That shows the
instance's events were not edited, dropped or reordered in place; the audit view's "verify chain"
recomputes the whole log, its Merkle trees and the checkpoints' signatures."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from SpiffWorkflow.util.task import TaskState

from engine.audit.checkpoints import verify_range
from engine.errors import Forbidden
from engine.identity.policy import load_policy
from engine.identity.principal import Principal
from engine.identity.protect import Masker

MAX_DEPTH = 6
MAX_SPAN = 50_000  # events of the log an instance's chain check rehashes at most
# Names that hold an ID or a mobile number whatever their value looks like.
_ID_NAMES = re.compile(r"(^|_)(id_?number|id_?card|identity|sfz|shenfenzheng)($|_)", re.I)
_PHONE_NAMES = re.compile(r"(^|_)(phone|mobile|tel|telephone|shouji|contact)($|_)", re.I)
_ID_SHAPE = re.compile(r"^\d{17}[\dXx]$|^\d{15}$")
_PHONE_SHAPE = re.compile(r"^1[3-9]\d{9}$")
# Kept whole: who started it is on every page anyway; the rest of `initiator` is personal data.
_INITIATOR_SHOWN = {"username", "display_name", "department", "branch", "unit"}


@dataclass
class Variable:
    name: str
    title: str | None
    value: Any
    masked: bool = False
    reason: str | None = None
    node: str | None = None  # the node whose form asks for it


@dataclass
class InstanceVariables:
    instance_id: int
    variables: list[Variable] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class ChainStatus:
    instance_id: int
    ok: bool
    events: int
    first_seq: int | None = None
    last_seq: int | None = None
    first_bad_seq: int | None = None
    reason: str | None = None
    checkpoint_seq: int | None = None  # the newest signed checkpoint
    checkpoint_tree_size: int | None = None
    covered: int = 0  # how many of the instance's events that checkpoint covers
    checked: int = 0  # events hashed again
    whole_span: bool = True  # every event from its first to its last was checked, not only its own

    def as_dict(self) -> dict:
        return asdict(self)


def _current_data(workflow) -> dict:
    """The newest live task's data (a running instance), or the last finished one's, over the
    workflow's own data."""
    live = [t for t in workflow.get_tasks() if t.state & (TaskState.READY | TaskState.WAITING | TaskState.STARTED)]
    done = [t for t in workflow.get_tasks() if t.state == TaskState.COMPLETED]
    pick = max(live or done, key=lambda t: t.last_state_change, default=None)
    data = dict(workflow.data or {})
    if pick is not None:
        data.update(pick.data or {})
    return data


def _mask_value(masker: Masker, name: str, value, depth: int = 0):
    """(value, reason) with ID and phone numbers masked, looking inside lists and objects."""
    if depth > MAX_DEPTH:
        return value, None
    if isinstance(value, dict):
        out, why = {}, None
        for k, v in value.items():
            out[k], r = _mask_value(masker, str(k), v, depth + 1)
            why = why or r
        return out, why
    if isinstance(value, list):
        out, why = [], None
        for v in value:
            m, r = _mask_value(masker, name, v, depth + 1)
            out.append(m)
            why = why or r
        return out, why
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        text = str(value)
        if _ID_NAMES.search(name) or _ID_SHAPE.match(text):
            return masker.mask("id_number", text), "身份证号"
        if _PHONE_NAMES.search(name) or _PHONE_SHAPE.match(text):
            return masker.mask("phone", text), "手机号"
    return value, None


def instance_variables(engine, principal: Principal, instance_id: int) -> InstanceVariables:
    """The monitor's variables panel (needs instance.read over the instance)."""
    if principal.scope("instance.read") is None:
        raise Forbidden("没有权限：查看流程数据")
    engine._check_visible(principal, instance_id)
    with engine.db.transaction(write=False) as sql:
        unit, _ = engine._load(sql, instance_id=instance_id)
        d = unit.d
        data = _current_data(unit.workflow)
        titles: dict[str, tuple[str | None, str | None]] = {}
        secret_fields: set[str] = set()
        for node_id, version in sorted(_form_nodes(d)):
            node = d.node(node_id)
            form = engine.definitions.form_for(sql, node.form_key, version)
            for name, prop in (form.schema.get("properties") or {}).items():
                titles.setdefault(name, ((prop or {}).get("title"), node.name or node_id))
                if node_id in d.confidential:
                    secret_fields.add(name)
        masker = Masker(load_policy(sql, engine.settings).mask_patterns())
    out = InstanceVariables(instance_id)
    for name in sorted(data):
        if name.startswith("_"):
            continue
        title, node = titles.get(name, (None, None))
        value = data[name]
        if name in secret_fields:
            out.variables.append(Variable(name, title, None, True, "保密节点填写，仅填写人可见", node))
            continue
        if name == "approvals" and isinstance(value, dict) and d.confidential & set(value):
            # each node's outcome, opinion and votes: at a secret ballot only when and how many voted
            hidden = {k: {"at": (v or {}).get("at"), "votes": len((v or {}).get("votes") or [])}
                      for k, v in value.items() if k in d.confidential}
            shown, why = _mask_value(masker, name, {k: v for k, v in value.items() if k not in d.confidential})
            names = "、".join(d.node(k).name or k for k in sorted(hidden))
            out.variables.append(Variable(name, title or "各节点审批结果", {**shown, **hidden}, True,
                                          f"保密节点（{names}）的意见和表决不显示", node))
            continue
        if name == "initiator" and isinstance(value, dict):
            shown = {k: v for k, v in value.items() if k in _INITIATOR_SHOWN}
            hidden = sorted(set(value) - set(shown))
            out.variables.append(Variable(name, title or "发起人信息", shown, bool(hidden),
                                          f"个人信息（{'、'.join(hidden)}）不显示" if hidden else None, node))
            continue
        masked, reason = _mask_value(masker, name, value)
        out.variables.append(Variable(name, title, masked, reason is not None,
                                      f"{reason}已脱敏" if reason else None, node))
    return out


def _form_nodes(d) -> set[tuple[str, int]]:
    refs = d.form_refs or {}
    found = set()
    for node_id in d.nodes:
        node = d.node(node_id)
        if node.form_key and node.form_key in refs:
            found.add((node_id, refs[node.form_key]))
    return found


def instance_chain(engine, principal: Principal, instance_id: int) -> ChainStatus:
    """Whether the instance's audit events are intact and linked (needs instance.read over it).

    Every event from the one before the instance's first to the one after its last (or to the end
    of the log) is hashed again and linked to its predecessor (engine/audit/checkpoints.py
    verify_range), so an event removed in between is caught too, whichever instance it was of.
    An instance spanning more than MAX_SPAN events of the log has its own events checked, each with
    its neighbours (`whole_span` false)."""
    if principal.scope("instance.read") is None:
        raise Forbidden("没有权限：查看审计链状态")
    engine._check_visible(principal, instance_id)
    with engine.db.transaction(write=False) as sql:
        first, last, count = sql.row("SELECT MIN(seq), MAX(seq), COUNT(*) FROM audit_events WHERE instance_id = ?",
                                     (instance_id,))
        status = ChainStatus(instance_id, ok=True, events=count, first_seq=first, last_seq=last)
        if not count:
            return status
        archived = sql.row("SELECT MAX(last_seq) FROM audit_archives")[0] or 0
        head = sql.row("SELECT seq FROM audit_head WHERE id = 1")
        end = max(sql.row("SELECT MAX(seq) FROM audit_events")[0], head[0] if head else 0)
        lo = max(first - 1, archived + 1, 1)
        # to the end of the log when that is near enough (an event removed from the end shows
        # against audit_head), else to the event after the instance's last
        hi = end if end - lo < MAX_SPAN else min(last + 1, end)
        status.whole_span = hi - lo < MAX_SPAN
        if status.whole_span:
            windows = [(lo, hi)]
        else:
            windows = []
            for (seq,) in sql.rows("SELECT seq FROM audit_events WHERE instance_id = ? ORDER BY seq", (instance_id,)):
                a, b = max(seq - 1, archived + 1, 1), min(seq + 1, end)
                if windows and a <= windows[-1][1] + 1:
                    windows[-1] = (windows[-1][0], b)
                else:
                    windows.append((a, b))
        for a, b in windows:
            checked, problem = verify_range(sql, a, b)
            status.checked += checked
            if problem is not None:
                status.ok, (status.first_bad_seq, status.reason) = False, problem
                return status
        cp = sql.row("SELECT seq, tree_size FROM audit_checkpoints ORDER BY seq DESC LIMIT 1")
        if cp is not None:
            status.checkpoint_seq, status.checkpoint_tree_size = cp
            status.covered = sql.row("SELECT COUNT(*) FROM audit_events WHERE instance_id = ? AND seq <= ?",
                                     (instance_id, cp[1]))[0]
    return status
