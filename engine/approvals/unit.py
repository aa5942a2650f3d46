"""One unit of work on one instance: its workflow, its slots, and what the action changes.

`settle()` is the heart of the approvals layer. It projects every READY user task into slots
(applying the automatic rules), arranges whose turn it is, and completes a node whose slots are
decided (quorum.verdict) by running the single Spiff task with the aggregate outcome, or applies
the node's rejectPolicy. It repeats until nothing more is decided, so a node approved
automatically (审批人去重, 空审批人) moves the instance on within the same action.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.util.task import TaskState

from engine.approvals import paths
from engine.approvals.quorum import APPROVED, PENDING, Method, arrange, verdict
from engine.approvals.rows import InstanceRow, TaskRow
from engine.audit import NewEvent
from engine.clock import now
from engine.errors import EngineError, InvalidInput
from engine.org.delegations import route_delegations
from engine.org.rules import Person, RuleResolver, parse_rule
from engine.runtime import services
from engine.runtime.definitions import DefinitionRuntime, NodeConfig, call_submission
from engine.scheduler import WorkCalendar, calendar_for
from engine.sql import Sql

ROUND = "djflow_activation"  # internal_data key: which activation of the node the READY task is
SUPERIOR_RULES = ("position:head@initiator.department", "in_charge_of:initiator.department",
                  "position:head@initiator.unit")


class ProcessError(EngineError):
    """The process definition failed while running (a condition or script raised)."""

    status = 422
    title = "Process error"


@dataclass
class Notice:
    user_id: int
    kind: str
    title: str
    body: str | None
    task: TaskRow | None = None


@dataclass
class Unit:
    sql: Sql
    inst: InstanceRow
    d: DefinitionRuntime
    workflow: BpmnWorkflow
    rows: list[TaskRow]
    at: datetime = field(default_factory=now)
    notices: list[Notice] = field(default_factory=list)
    # event → the created row it is about (its id is known only after the insert)
    event_rows: list[tuple[NewEvent, TaskRow]] = field(default_factory=list)
    # nodes decided in this unit of work; recorded with the action's audit event
    decided: list[dict] = field(default_factory=list)
    # node id → note for the slots the node gets next (退回 with its reason)
    pending_notes: dict[str, dict] = field(default_factory=dict)
    # node id → assignee id → the decision carried into the node's next activation (撤回 of one vote)
    carry: dict[str, dict[int, TaskRow]] = field(default_factory=dict)
    _resolver: RuleResolver | None = None
    # ids of slots that were waiting when the unit of work began (to tell whose turn came)
    waiting_before: set[int] = field(default_factory=set)
    # where the request came from (client address, request id), added to every audit event
    client: dict = field(default_factory=dict)
    # set when an Idempotency-Key replays an earlier result: nothing is written
    replayed: object | None = None
    # set by WorkflowEngine._write: the unit's rows are written, its audit events are next
    written: bool = False
    _calendar: WorkCalendar | None = None
    settings: object = None  # the engine's Settings (built-in service operators use them)
    # staged attachments a start's form names, bound to the instance once it has an id
    staged: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        who = self.inst.initiator
        self._names[who.id] = (who.username, who.display_name)

    def knows(self, user) -> None:
        """Remember a user's names, saving a lookup when their slots are shown."""
        self._names[user.id] = (user.username, user.display_name)

    # -- slots ------------------------------------------------------------------------------
    def activation_rows(self, row: TaskRow) -> list[TaskRow]:
        return [r for r in self.rows if r.spiff_task_id == row.spiff_task_id and r.activation == row.activation
                and r.kind != "cc"]

    def add(self, row: TaskRow) -> TaskRow:
        row.instance_id = self.inst.id
        self.rows.append(row)
        return row

    def event(self, action: str, actor: int | None, on_behalf_of: int | None, row: TaskRow | None,
              payload: dict) -> NewEvent:
        e = NewEvent(action, actor, on_behalf_of, self.inst.id, row.id if row else None, payload)
        self.inst.events.append(e)
        if row is not None and row.id is None:
            self.event_rows.append((e, row))
        return e

    def notify(self, user_id: int | None, kind: str, title: str, body: str | None = None,
               row: TaskRow | None = None) -> None:
        if user_id is not None:
            self.notices.append(Notice(user_id, kind, title, body, row))

    def notify_assigned(self) -> None:
        """A 待办 notice for every slot that is open now and was not before this unit of work
        (new slots, and slots whose turn came), unless an action already wrote a specific one."""
        told = {id(n.task) for n in self.notices if n.task is not None}
        for r in self.rows:
            if r.status == "open" and r.assignee_id and id(r) not in told and r.kind != "cc" \
                    and (r.id is None or r.id in self.waiting_before):
                self.notify(r.assignee_id, "task.assigned", f"待办：{self.inst.title}「{r.node_name}」", row=r)

    def spiff_task(self, row: TaskRow):
        return self.workflow.get_task_from_id(UUID(row.spiff_task_id))

    # -- running ------------------------------------------------------------------------------
    def run(self) -> None:
        try:
            self.workflow.do_engine_steps()
        except SpiffWorkflowException as exc:
            spec = getattr(exc, "task_spec", None)
            node = getattr(spec, "bpmn_name", None) or getattr(spec, "name", "")
            raise ProcessError(f"流程 {self.d.key} v{self.d.version} 在节点 {node} 执行出错：{exc}") from None

    def settle(self) -> None:
        """Project, arrange and complete decided nodes until nothing more happens."""
        for _ in range(1000):
            if self.inst.status != "running":
                return
            if self.d.has_services and self.inst.id is not None and self.run_builtins():
                continue
            ready = [t for t in self.workflow.get_tasks(state=TaskState.READY, manual=True)
                     if not services.is_service(t.task_spec)]
            self.project(ready)
            for spiff_task in ready:
                act = [r for r in self.rows if r.spiff_task_id == str(spiff_task.id) and r.kind != "cc"
                       and r.activation == spiff_task.internal_data.get(ROUND)]
                node = self.d.node(spiff_task.task_spec.name)
                method = Method.parse(node.properties.get("approveMethod"))
                for r in arrange(method, act):
                    r.dirty = True
                if node.initiator:
                    outcome = APPROVED if any(r.status == "completed" for r in act) else PENDING
                else:
                    outcome = verdict(method, act)
                if outcome == PENDING:
                    continue
                self.finish_node(spiff_task, node, act, outcome)
                break
            else:
                return
        raise ProcessError(f"流程 {self.d.key} 在一次操作中推进超过 1000 个节点，疑似无限循环")

    def run_builtins(self) -> bool:
        """Run READY service tasks whose operator is built in (engine/runtime/services.py) and move
        on; True when any ran. http/request tasks wait for a worker. Not before the instance has its
        id (a start runs them once its row is written)."""
        ran = False
        for t in services.ready(self.workflow):
            if t.task_spec.operation_name not in services.BUILTINS:
                continue
            try:
                result = services.run_builtin(self, t, self.settings)
            except (ValueError, EngineError) as exc:
                node = t.task_spec.bpmn_name or t.task_spec.bpmn_id
                raise ProcessError(f"流程 {self.d.key} v{self.d.version} 的服务任务 {node}"
                                   f"（{t.task_spec.operation_name}）失败：{exc}") from None
            services.complete(t, result)
            self.event("service.completed", None, None, None, {**services.describe(t), "result": result})
            ran = True
        if ran:
            self.run()
            self.end_if_completed()
        return ran

    def finish_node(self, spiff_task, node: NodeConfig, act: list[TaskRow], outcome: str) -> None:
        for r in act:
            if r.undecided:
                r.close("cancelled")
        votes = [{"by": r.assignee_id, "outcome": r.outcome, "comment": r.comment,
                  "at": r.completed_at.isoformat() if r.completed_at else None,
                  "auto": bool(r.note and r.note.get("kind") == "auto"),
                  **({"data": r.data} if r.data else {})}
                 for r in act if r.status == "completed" and r.origin != "delegate"]
        if not node.initiator:
            last = max((r for r in act if r.status == "completed"), key=lambda r: r.completed_at or self.at)
            approvals = dict(spiff_task.data.get("approvals") or {})
            by = self.username(last.completed_by)
            approvals[node.node_id] = {"outcome": outcome, "by": by, "comment": last.comment,
                                       "at": self.at.isoformat(), "method": node.properties.get("approveMethod",
                                                                                                  "single"),
                                       "votes": votes, "data": last.data}
            spiff_task.data["approvals"] = approvals
        self.decided.append({
            "node": node.node_id, "node_name": node.name, "outcome": outcome,
            "method": Method.parse(node.properties.get("approveMethod")).label,
            "approved": sum(1 for v in votes if v["outcome"] == "approved"),
            "rejected": sum(1 for v in votes if v["outcome"] == "rejected")})
        if outcome == APPROVED:
            if node.properties.get("mergeData") == "true" and not node.initiator:
                # a recording step (谈话记录, 会议记录 …): its form values become the instance's data,
                # so gateways and later steps read them by name
                spiff_task.data.update(last.data or {})
            spiff_task.run()
            self.run()
            self.end_if_completed()
            return
        policy = node.properties.get("rejectPolicy", "end")
        reason = next((r.comment for r in act if r.outcome == "rejected" and r.comment), None) or "驳回"
        rejecter = next((r for r in act if r.outcome == "rejected"), None)
        by = self.display_name(rejecter.completed_by) if rejecter and rejecter.completed_by else "系统"
        if policy == "end":
            self.workflow.cancel()
            self.end("rejected")
            self.notify(self.inst.initiator.id, "instance.rejected", f"已驳回：{self.inst.title}",
                        f"{by}：{reason}")
            return
        targets = self.return_targets(spiff_task)
        target = None
        if policy == "return_previous":
            target = next((t for t in targets if not self.d.node(t.task_spec.name).initiator), None)
        if target is None:
            target = next((t for t in targets if self.d.node(t.task_spec.name).initiator), None)
        if target is None:  # no earlier node: nothing to return to
            self.workflow.cancel()
            self.end("rejected")
            return
        self.decided[-1]["returned_to"] = target.task_spec.name
        self.return_to(target, {"kind": "returned", "from_node": node.node_id, "from_node_name": node.name,
                                "by": by, "reason": reason, "policy": policy})

    def end_if_completed(self) -> None:
        """A running instance whose workflow has reached its end is completed."""
        if self.inst.status == "running" and self.workflow.is_completed():
            self.end("completed")

    def end(self, status: str) -> None:
        self.inst.status, self.inst.ended_at = status, self.at
        for r in self.rows:
            if r.undecided:
                r.close("cancelled")
        if status == "completed":
            self.notify(self.inst.initiator.id, "instance.completed", f"已办结：{self.inst.title}")

    # -- moving back ------------------------------------------------------------------------------
    def return_targets(self, spiff_task) -> list:
        # a called process's 发起申请 was the call's, not a person's: never a place to return to
        nodes = [n for n, raw in self.d.nodes.items() if not raw.get("call_initiator")]
        return paths.executed(self.workflow, spiff_task, nodes)

    def return_to(self, target, note: dict) -> None:
        """Reset the workflow to `target` (a completed user task); its node gets new slots with `note`."""
        self.pending_notes[target.task_spec.name] = note
        paths.reset_to(self.workflow, target)

    # -- projection -------------------------------------------------------------------------------
    def project(self, ready_tasks: list) -> None:
        """Make the slots match the READY user tasks: cancel slots whose task moved on, create
        slots (a new activation) for tasks that have none."""
        ready = {str(t.id): t for t in ready_tasks}
        for r in self.rows:
            t = ready.get(r.spiff_task_id)
            if r.undecided and (t is None or t.internal_data.get(ROUND, r.activation) != r.activation):
                r.close("cancelled")
        for sid, spiff_task in ready.items():
            if ROUND in spiff_task.internal_data:
                continue
            earlier = [r for r in self.rows if r.spiff_task_id == sid and r.kind != "cc"]
            live = [r for r in earlier if r.undecided]
            if live:  # slots written before activations were tracked
                spiff_task.internal_data[ROUND] = live[0].activation
                continue
            spiff_task.internal_data[ROUND] = max((r.activation for r in earlier), default=0) + 1
            self.create_slots(spiff_task)

    def calendar(self) -> WorkCalendar:
        """The working-day calendar of the initiator's department (read when a node has a dueIn)."""
        if self._calendar is None:
            self._calendar = calendar_for(self.sql, self.inst.initiator.department_id, around=self.at.date())
        return self._calendar

    def due_at(self, node: NodeConfig) -> datetime | None:
        """When a slot of `node` created now is due: its `dueIn` (P3WD: working days) from now."""
        due_in = node.properties.get("dueIn")
        return self.calendar().due(due_in, self.at) if due_in else None

    def resolver(self, data: dict) -> RuleResolver:
        who = self.inst.initiator
        if self._resolver is None:
            self._resolver = RuleResolver(self.sql, initiator=who.person, department_id=who.department_id,
                                          branch_id=who.branch_id, data=data)
        self._resolver.data = data
        return self._resolver

    def create_slots(self, spiff_task) -> None:
        node = self.d.node(spiff_task.task_spec.name)
        activation = spiff_task.internal_data[ROUND]
        if node.call_initiator:
            self.submit_for_call(spiff_task, node, activation)
            return
        note = self.pending_notes.pop(node.node_id, None)
        props = node.properties
        due_at = self.due_at(node)

        def slot(person: Person | None, n: int, **kw) -> TaskRow:
            if person is not None:
                self._names.setdefault(person.id, (person.username, person.display_name))
            return self.add(TaskRow(
                None, self.inst.id, str(spiff_task.id), node.node_id, node.name, node.lane, node.form_key,
                self.d.form_refs.get(node.form_key) if node.form_key else None, person.id if person else None,
                node.rule, "open", n, None, activation=activation, note=note,
                kind="submit" if node.initiator else "approve", **{"due_at": due_at, **kw}))

        if node.initiator or node.rule == "initiator":
            row = slot(self.inst.initiator.person, 0)
            if note:
                self.notify(row.assignee_id, "task.returned", f"被退回：{self.inst.title}",
                            f"{note.get('by')}：{note.get('reason')}", row)
            return
        people = self.resolver(spiff_task.data).resolve(parse_rule(node.rule))
        auto: dict[int, tuple[str, str]] = {}
        initiator = self.inst.initiator
        if any(p.id == initiator.id for p in people):
            mode = props.get("initiatorIsApprover", "self")
            if mode == "skip":
                auto[initiator.id] = ("initiatorIsApprover", "发起人即审批人，按节点设置自动跳过")
            elif mode == "superior":
                superior = self.superior()
                people = [p for p in people if p.id != initiator.id]
                if superior and all(p.id != superior.id for p in people):
                    people.append(superior)
                self.event("task.reassigned", None, None, None, {
                    "node": node.node_id, "node_name": node.name, "rule": "initiatorIsApprover",
                    "reason": f"发起人即审批人，改由上级 {superior.display_name if superior else '（无）'} 审批"})
        if not people:
            self.empty_assignee(node, slot)
            return
        dedupe = props.get("dedupe", "off")
        for p in people:
            if p.id in auto:
                continue
            previous = self.approved_before(p.id, node.node_id, consecutive=dedupe == "consecutive") \
                if dedupe in ("once", "consecutive") else None
            if previous:
                auto[p.id] = ("dedupe", f"审批人去重：{p.display_name} 已在「{previous}」同意")
        routed = route_delegations(self.sql, self.d.key, [p for p in people if p.id not in auto],
                                   self.resolver(spiff_task.data).delegations)
        n = 0
        for p in people:
            if p.id in auto:
                rule, reason = auto[p.id]
                row = slot(p, n, completed_at=self.at, outcome="approved", comment=reason)
                row.status, row.note = "completed", {"kind": "auto", "rule": rule, "reason": reason}
                self.event("task.auto_approve", None, p.id, row, {
                    "node": node.node_id, "node_name": node.name, "rule": rule, "reason": reason})
                n += 1
        for person, meant_for in routed:
            carried = self.carry.get(node.node_id, {}).get((meant_for or person).id)
            row = slot(person, n, on_behalf_of_id=meant_for.id if meant_for else None)
            if carried is not None:
                row.status, row.outcome, row.comment = "completed", carried.outcome, carried.comment
                row.completed_at, row.completed_by, row.data = carried.completed_at, carried.completed_by, carried.data
                row.note = {"kind": "carried", "from_task": carried.id}
            n += 1
            if meant_for is not None:
                self.event("task.delegated", None, meant_for.id, row, {
                    "node": node.node_id, "node_name": node.name, "delegate": person.username,
                    "on_behalf_of": meant_for.username})
        self.carry.pop(node.node_id, None)

    def submit_for_call(self, spiff_task, node: NodeConfig, activation: int) -> None:
        """The 发起申请 of a process this one calls: the initiator submitted the caller already, so
        the call submits it on their behalf with the data it mapped in (checked against the form),
        recorded as an automatic step; the node then completes like an approved one."""
        self.pending_notes.pop(node.node_id, None)
        try:
            values = call_submission(self.sql, self.d, node, spiff_task.data)
        except ValueError as exc:
            raise ProcessError(f"流程 {self.d.key} v{self.d.version}：{exc}") from None
        who = self.inst.initiator
        reason = f"由「{self.d.name}」调用时自动提交（数据取自调用流程）"
        row = self.add(TaskRow(
            None, self.inst.id, str(spiff_task.id), node.node_id, node.name, node.lane, node.form_key,
            self.d.form_refs.get(node.form_key) if node.form_key else None, who.id, node.rule, "completed", 0,
            None, activation=activation, kind="approve", completed_at=self.at, outcome="approved",
            comment=reason, data=values or None, note={"kind": "auto", "rule": "callActivity", "reason": reason}))
        self.event("task.auto_submit", None, who.id, row, {
            "node": node.node_id, "node_name": node.name, "process": node.called, "rule": "callActivity",
            "reason": reason, "data": values})

    def empty_assignee(self, node: NodeConfig, slot) -> None:
        policy = node.properties.get("emptyAssignee")
        if policy == "process_admin":
            admin = self.process_admin()
            if admin is not None:
                row = slot(admin, 0)
                row.note = {"kind": "auto", "rule": "emptyAssignee", "reason": "未找到审批人，转流程管理员审批"}
                self.event("task.reassigned", None, None, row, {
                    "node": node.node_id, "node_name": node.name, "rule": "emptyAssignee",
                    "reason": f"未找到审批人，转流程管理员 {admin.display_name}"})
                return
        if policy in ("auto_approve", "reject"):
            outcome = "approved" if policy == "auto_approve" else "rejected"
            reason = f"处理人规则 {node.rule} 未找到审批人，按节点设置自动{'通过' if outcome == 'approved' else '驳回'}"
            row = slot(None, 0, completed_at=self.at, outcome=outcome, comment=reason)
            row.status, row.note = "completed", {"kind": "auto", "rule": "emptyAssignee", "reason": reason}
            self.event(f"task.auto_{'approve' if outcome == 'approved' else 'reject'}", None, None, row, {
                "node": node.node_id, "node_name": node.name, "rule": "emptyAssignee", "reason": reason})
            return
        raise InvalidInput(f"「{node.name}」的处理人规则 {node.rule} 没有找到任何人，"
                           f"请先维护组织、职务或分管关系后重试")

    def approved_before(self, user_id: int, node_id: str, *, consecutive: bool) -> str | None:
        """The name of an earlier node this person approved in (once), or of the node decided just
        before (consecutive) if they approved in it."""
        decided = [r for r in self.rows if r.kind == "approve" and r.status == "completed" and r.completed_at
                   and r.outcome == "approved"]
        if consecutive:
            if not decided:
                return None
            last = max(decided, key=lambda r: (r.completed_at, r.id or 0))
            decided = [r for r in decided if r.spiff_task_id == last.spiff_task_id
                       and r.activation == last.activation]
        for r in decided:
            if user_id in (r.completed_by, r.on_behalf_of_id) and not (r.note and r.note.get("kind") == "auto"):
                return r.node_name
        return None

    def superior(self) -> Person | None:
        for rule in SUPERIOR_RULES:
            found = [p for p in self.resolver({}).resolve(parse_rule(rule)) if p.id != self.inst.initiator.id]
            if found:
                return found[0]
        return None

    def process_admin(self) -> Person | None:
        row = self.sql.row("SELECT u.id, u.username, u.display_name FROM process_definitions d "
                           "JOIN users u ON u.id = d.published_by WHERE d.id = ? AND u.status = 'active'",
                           (self.d.id,))
        return Person(*row) if row else None

    # -- names --------------------------------------------------------------------------------
    _names: dict[int, tuple[str, str]] = field(default_factory=dict)

    def _name(self, user_id: int | None) -> tuple[str, str]:
        if user_id is None:
            return ("", "系统")
        if user_id not in self._names:
            r = self.sql.row("SELECT username, display_name FROM users WHERE id = ?", (user_id,))
            self._names[user_id] = (r[0], r[1]) if r else ("", "")
        return self._names[user_id]

    def username(self, user_id: int | None) -> str | None:
        return self._name(user_id)[0] or None

    def display_name(self, user_id: int | None) -> str:
        return self._name(user_id)[1]
