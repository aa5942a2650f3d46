"""WorkflowEngine: start instances, act on tasks, list the inbox. One unit of work per action.

Every action loads the instance under a row lock (FOR UPDATE on PostgreSQL; BEGIN IMMEDIATE on
SQLite), restores the workflow around the cached spec, runs it, projects READY user tasks into
`tasks`, saves the state with an optimistic version check and appends the audit events, all in
one transaction: either the whole action happens or none of it does. The statements go through
engine/sql.py (see there why not the ORM).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.util.task import TaskState

from engine.audit import NewEvent, append_events
from engine.clock import local, now
from engine.config import Settings, get_settings
from engine.db import Database
from engine.errors import Conflict, EngineError, FieldProblem, Forbidden, InvalidInput, NotFound
from engine.forms.store import validate_data
from engine.identity.permissions import PERMISSIONS
from engine.identity.principal import Principal
from engine.org.delegations import route_delegations
from engine.org.rules import Person, RuleResolver, parse_rule
from engine.runtime.definitions import DefinitionCache, DefinitionRuntime
from engine.runtime.serializer import STATE_VERSION, dump_state, load_state
from engine.runtime.views import ActResult, InstanceView, TaskView
from engine.sql import Sql

ACTION_NAMES = {"submit": "提交", "approve": "同意", "reject": "驳回"}
OUTCOMES = {"submit": "submitted", "approve": "approved", "reject": "rejected"}
MAX_COMMENT = 2000
MAX_TITLE = 300  # process_instances.title
MAX_BUSINESS_KEY = 100  # process_instances.business_key

_TASK_COLS = ("id, instance_id, spiff_task_id, node_id, node_name, lane, form_key, form_version, assignee_id, "
              "candidate_rule, status, slot, created_at, completed_at, completed_by, outcome, comment, data, on_behalf_of_id")
_INSERT_TASK = ("INSERT INTO tasks (instance_id, spiff_task_id, node_id, node_name, lane, form_key, form_version, "
                "assignee_id, candidate_rule, status, slot, created_at, completed_at, completed_by, outcome, comment,"
                " data, on_behalf_of_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id")


class ProcessError(EngineError):
    """The process definition failed while running (a condition or script raised)."""

    status = 422
    title = "Process error"


@dataclass
class User:
    id: int
    username: str
    display_name: str
    department_id: int | None
    branch_id: int | None

    @property
    def person(self) -> Person:
        return Person(self.id, self.username, self.display_name)


@dataclass
class TaskRow:
    """A `tasks` row as the hot path handles it; `dirty` rows are written back."""

    id: int | None
    instance_id: int | None
    spiff_task_id: str
    node_id: str
    node_name: str
    lane: str | None
    form_key: str | None
    form_version: int | None
    assignee_id: int | None
    candidate_rule: str | None
    status: str
    slot: int
    created_at: datetime | None
    completed_at: datetime | None = None
    completed_by: int | None = None
    outcome: str | None = None
    comment: str | None = None
    data: dict | None = None
    # 委托: whom the task was meant for when a delegate holds it.
    on_behalf_of_id: int | None = None
    dirty: bool = False
    assignee: Person | None = None
    on_behalf_of: Person | None = None

    @classmethod
    def from_db(cls, row: tuple) -> TaskRow:
        r = list(row)
        r[12], r[13], r[17] = Sql.from_ts(r[12]), Sql.from_ts(r[13]), Sql.from_json(r[17])
        return cls(*r)


@dataclass
class InstanceRow:
    id: int | None
    definition_id: int
    definition_key: str
    definition_version: int
    title: str
    status: str
    state: str
    serializer_version: int
    version: int
    initiator: User
    ended_at: datetime | None = None
    events: list[NewEvent] = field(default_factory=list)


class WorkflowEngine:
    def __init__(self, db: Database, settings: Settings | None = None):
        self.db = db
        self.settings = settings or get_settings()
        self.definitions = DefinitionCache(script_time_limit=self.settings.script_time_limit)

    # -- commands -------------------------------------------------------------------------
    def start(self, *, key: str, username: str, data: dict | None = None, title: str | None = None,
              business_key: str | None = None) -> ActResult:
        """Start the newest published version of `key` as `username`; with `data`, also submit
        the initiator's own first task (发起申请) in the same unit of work."""
        if title is not None and not 0 < len(title) <= MAX_TITLE:
            raise InvalidInput(f"标题应为 1 到 {MAX_TITLE} 个字符", errors=[FieldProblem("title", f"1 到 {MAX_TITLE} 个字符")])
        if business_key is not None and not 0 < len(business_key) <= MAX_BUSINESS_KEY:
            raise InvalidInput(f"业务编号应为 1 到 {MAX_BUSINESS_KEY} 个字符",
                               errors=[FieldProblem("business_key", f"1 到 {MAX_BUSINESS_KEY} 个字符")])
        with self.db.transaction() as sql:
            user = _user(sql, username, need="process.start")
            found = sql.row("SELECT id FROM process_definitions WHERE key = ? AND status = 'published' "
                            "ORDER BY version DESC LIMIT 1", (key,))
            if found is None:
                raise NotFound(f"没有已发布的流程 {key}")
            d = self.definitions.get(sql, found[0])
            workflow = BpmnWorkflow(d.spec, d.subprocess_specs, script_engine=d.script_engine)
            inst = InstanceRow(None, d.id, d.key, d.version, title or f"{user.display_name}的{d.name}", "running",
                               "", STATE_VERSION, 1, user)
            self._run(workflow, d)
            created = self._project(sql, inst, workflow, d, [])
            first = None
            if data is not None:
                first = next((t for t in created if d.node(t.node_id).initiator), None)
                if first is None:
                    raise InvalidInput(f"流程 {key} 没有发起人任务，不能随启动提交数据")
                created = self._apply(sql, inst, workflow, d, first, "submit", user, data, None,
                                      [t for t in created if t is not first])
            at = now()
            inst.id = sql.row(
                "INSERT INTO process_instances (definition_id, definition_key, definition_version, business_key, "
                "title, initiator_id, status, state, serializer_version, version, started_at, ended_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?) RETURNING id",
                (d.id, d.key, d.version, business_key, inst.title, user.id, inst.status, dump_state(workflow),
                 STATE_VERSION, sql.ts(at), sql.ts(inst.ended_at)))[0]
            for row in ([first] if first else []) + created:
                self._insert_task(sql, inst, row, at)
            inst.events.insert(0, NewEvent("instance.start", user.id, None, inst.id, None, {
                "definition": d.key, "version": d.version, "title": inst.title, "business_key": business_key}))
            for e in inst.events:
                e.instance_id = inst.id
            if first is not None:
                inst.events[1].task_id = first.id
            append_events(sql, inst.events, hash_alg=self.settings.audit_hash)
            return ActResult(inst.id, inst.status, [_view(inst, t) for t in created])

    def act(self, *, task_id: int, action: str, username: str, data: dict | None = None,
            comment: str | None = None) -> ActResult:
        """Act on one task as `username`. Exactly one of two concurrent actions on an instance wins."""
        if action not in ACTION_NAMES:
            raise InvalidInput(f"未知的操作 {action}；可用：{'、'.join(ACTION_NAMES)}")
        with self.db.transaction() as sql:
            user = _user(sql, username, need="task.act")
            found = sql.row(
                "SELECT i.id, i.definition_id, i.definition_key, i.definition_version, i.title, i.status, i.state, "
                "i.serializer_version, i.version, u.id, u.username, u.display_name, u.department_id, u.branch_id "
                "FROM process_instances i JOIN tasks t ON t.instance_id = i.id JOIN users u ON u.id = i.initiator_id "
                "WHERE t.id = ?" + sql.for_update("i"), (task_id,))
            if found is None:
                raise NotFound(f"任务 {task_id} 不存在")
            inst = InstanceRow(*found[:9], initiator=User(*found[9:]))
            rows = [TaskRow.from_db(r) for r in sql.rows(
                f"SELECT {_TASK_COLS} FROM tasks WHERE instance_id = ? AND (status = 'open' OR id = ?) ORDER BY id",
                (inst.id, task_id))]
            task = next(t for t in rows if t.id == task_id)
            _check_can_act(sql, task, inst, user)
            d = self.definitions.get(sql, inst.definition_id)
            node = d.node(task.node_id)
            if action not in node.actions:
                raise InvalidInput(f"「{node.name}」不能执行“{ACTION_NAMES[action]}”；可用："
                                   f"{'、'.join(ACTION_NAMES[a] for a in node.actions)}")
            workflow = load_state(inst.state, inst.serializer_version, spec=d.spec,
                                  subprocess_specs=d.subprocess_specs, script_engine=d.script_engine)
            created = self._apply(sql, inst, workflow, d, task, action, user, data, comment,
                                  [t for t in rows if t is not task])
            changed = sql.run("UPDATE process_instances SET state = ?, status = ?, title = ?, ended_at = ?, "
                              "version = ? WHERE id = ? AND version = ?",
                              (dump_state(workflow), inst.status, inst.title, sql.ts(inst.ended_at),
                               inst.version + 1, inst.id, inst.version))
            if changed != 1:  # cannot happen under the row lock; the version check is the second guard
                raise Conflict("该流程刚被其他人处理，请刷新后重试")
            for row in rows:
                if row.dirty:
                    sql.run("UPDATE tasks SET status = ?, outcome = ?, comment = ?, data = ?, completed_at = ?, "
                            "completed_by = ? WHERE id = ?", (row.status, row.outcome, row.comment, sql.json(row.data),
                                                              sql.ts(row.completed_at), row.completed_by, row.id))
            at = now()
            for row in created:
                self._insert_task(sql, inst, row, at)
            append_events(sql, inst.events, hash_alg=self.settings.audit_hash)
            return ActResult(inst.id, inst.status, [_view(inst, t) for t in created])

    # -- queries --------------------------------------------------------------------------
    def list_tasks(self, *, username: str, status: str = "open") -> list[TaskView]:
        """A person's open tasks (待办) or the tasks they completed (已办), oldest first."""
        if status not in ("open", "done"):
            raise InvalidInput("status 只能是 open 或 done")
        with self.db.transaction(write=False) as sql:
            user = _user(sql, username)
            where = "t.assignee_id = ? AND t.status = 'open'" if status == "open" else \
                "t.completed_by = ? AND t.status = 'completed'"
            return _task_views(sql, where, (user.id,))

    def instance(self, *, instance_id: int) -> InstanceView:
        """One instance with every task it has had (its history), oldest first."""
        with self.db.transaction(write=False) as sql:
            r = sql.row("SELECT i.id, i.definition_key, i.definition_version, i.title, i.status, u.username, "
                        "u.display_name, i.started_at, i.ended_at FROM process_instances i "
                        "JOIN users u ON u.id = i.initiator_id WHERE i.id = ?", (instance_id,))
            if r is None:
                raise NotFound(f"流程实例 {instance_id} 不存在")
            return InstanceView(*r[:7], started_at=_iso(Sql.from_ts(r[7])), ended_at=_iso(Sql.from_ts(r[8])),
                                tasks=_task_views(sql, "t.instance_id = ?", (instance_id,)))

    def visible_instance(self, *, principal: Principal, instance_id: int) -> InstanceView:
        """One instance, if the caller started it, has or had a task in it, or their
        instance.read scope covers the initiator; NotFound otherwise (no existence leak)."""
        with self.db.transaction(write=False) as sql:
            where, params = _visible(principal)
            if sql.row(f"SELECT 1 FROM process_instances i JOIN users u ON u.id = i.initiator_id "
                       f"WHERE i.id = ? AND {where}", (instance_id, *params)) is None:
                raise NotFound(f"流程实例 {instance_id} 不存在或您无权查看")
        return self.instance(instance_id=instance_id)

    def list_instances(self, *, principal: Principal, status: str | None = None, key: str | None = None,
                       page: int = 1, size: int = 20) -> tuple[list[InstanceView], int]:
        """Instances the caller may see (filtered in SQL), newest first, without their tasks."""
        where, params = _visible(principal)
        if status:
            where += " AND i.status = ?"
            params.append(status)
        if key:
            where += " AND i.definition_key = ?"
            params.append(key)
        size, page = max(1, min(size, 200)), max(1, page)
        with self.db.transaction(write=False) as sql:
            total = sql.row(f"SELECT COUNT(*) FROM process_instances i JOIN users u ON u.id = i.initiator_id "
                            f"WHERE {where}", params)[0]
            rows = sql.rows(f"SELECT i.id, i.definition_key, i.definition_version, i.title, i.status, u.username, "
                            f"u.display_name, i.started_at, i.ended_at FROM process_instances i "
                            f"JOIN users u ON u.id = i.initiator_id WHERE {where} ORDER BY i.id DESC "
                            f"LIMIT {size} OFFSET {(page - 1) * size}", params)
        return [InstanceView(*r[:7], started_at=_iso(Sql.from_ts(r[7])), ended_at=_iso(Sql.from_ts(r[8])))
                for r in rows], total

    # -- internals ------------------------------------------------------------------------
    def _apply(self, sql: Sql, inst: InstanceRow, workflow: BpmnWorkflow, d: DefinitionRuntime, task: TaskRow,
               action: str, user: User, data: dict | None, comment: str | None, others: list[TaskRow]
               ) -> list[TaskRow]:
        node = d.node(task.node_id)
        data = dict(data or {})
        if node.form_key:
            form = self.definitions.form_for(sql, node.form_key, d.form_refs[node.form_key])
            problems = validate_data(form.schema, data, form.validator)
            if problems:
                raise InvalidInput(f"表单「{form.title}」填写有误：" + "；".join(
                    f"{p.field or '表单'} {p.reason}" for p in problems), errors=problems)
        elif data:
            raise InvalidInput(f"「{node.name}」没有表单，不接受表单数据")
        if comment is not None and len(comment) > MAX_COMMENT:
            raise InvalidInput(f"审批意见最多 {MAX_COMMENT} 字")
        spiff_task = workflow.get_task_from_id(UUID(task.spiff_task_id))
        if spiff_task is None or spiff_task.state != TaskState.READY:
            raise Conflict(f"任务 {task.id} 在流程中已不是待办状态")

        at = now()
        outcome = OUTCOMES[action]
        opinion = comment if comment is not None else data.get("opinion")
        task.status, task.outcome, task.comment, task.data = "completed", outcome, opinion, data
        task.completed_at, task.completed_by, task.dirty = at, user.id, True
        if action == "submit":
            spiff_task.data.update(data)
            if node.initiator and data.get("title"):
                inst.title = str(data["title"])[:MAX_TITLE]
        else:
            approvals = dict(spiff_task.data.get("approvals") or {})
            approvals[task.node_id] = {"outcome": outcome, "by": user.username, "comment": opinion,
                                       "at": at.isoformat(), "data": data}
            spiff_task.data["approvals"] = approvals
        # Other approver slots of the same node: the first decision settles it (或签 until issue 4).
        for other in others:
            if other.spiff_task_id == task.spiff_task_id and other.status == "open":
                other.status, other.dirty = "cancelled", True
        remaining = [t for t in others if t.status == "open"]

        if action == "reject":
            # rejectPolicy "end" (the default): the instance ends as rejected.
            workflow.cancel()
            for other in remaining:
                other.status, other.dirty = "cancelled", True
            inst.status, inst.ended_at = "rejected", at
            created: list[TaskRow] = []
        else:
            spiff_task.run()
            self._run(workflow, d)
            created = self._project(sql, inst, workflow, d, remaining)
            if workflow.is_completed():
                inst.status, inst.ended_at = "completed", at
        inst.events.append(NewEvent(f"task.{action}", user.id, task.on_behalf_of_id, inst.id, task.id, {
            "node": task.node_id, "node_name": task.node_name, "outcome": outcome, "comment": opinion,
            "data": data, "instance_status": inst.status}))
        return created

    def _run(self, workflow: BpmnWorkflow, d: DefinitionRuntime) -> None:
        try:
            workflow.do_engine_steps()
        except SpiffWorkflowException as exc:
            spec = getattr(exc, "task_spec", None)
            node = getattr(spec, "bpmn_name", None) or getattr(spec, "name", "")
            raise ProcessError(f"流程 {d.key} v{d.version} 在节点 {node} 执行出错：{exc}") from None

    def _project(self, sql: Sql, inst: InstanceRow, workflow: BpmnWorkflow, d: DefinitionRuntime,
                 open_rows: list[TaskRow]) -> list[TaskRow]:
        """Make `tasks` match the READY user tasks: cancel rows whose task moved on, create the new ones."""
        ready = workflow.get_tasks(state=TaskState.READY, manual=True)
        ready_ids = {str(t.id) for t in ready}
        for row in open_rows:
            if row.spiff_task_id not in ready_ids:
                row.status, row.dirty = "cancelled", True
        have = {row.spiff_task_id for row in open_rows if row.status == "open"}
        created = []
        resolver: RuleResolver | None = None
        who = inst.initiator
        for spiff_task in ready:
            if str(spiff_task.id) in have:
                continue
            node = d.node(spiff_task.task_spec.name)
            if node.initiator or node.rule == "initiator":
                assignees = [who.person]
            else:
                resolver = resolver or RuleResolver(sql, initiator=who.person, department_id=who.department_id,
                                                    branch_id=who.branch_id, data=spiff_task.data)
                resolver.data = spiff_task.data
                assignees = resolver.resolve(parse_rule(node.rule))
            if not assignees:
                raise InvalidInput(f"「{node.name}」的处理人规则 {node.rule} 没有找到任何人，"
                                   f"请先维护组织、职务或分管关系后重试")
            # The initiator's own task is never delegated: only they can submit their application.
            routed = [(p, None) for p in assignees] if node.initiator else route_delegations(sql, d.key, assignees)
            for slot, (person, meant_for) in enumerate(routed):
                created.append(TaskRow(
                    None, inst.id, str(spiff_task.id), node.node_id, node.name, node.lane, node.form_key,
                    d.form_refs.get(node.form_key) if node.form_key else None, person.id, node.rule, "open", slot,
                    None, on_behalf_of_id=meant_for.id if meant_for else None, assignee=person,
                    on_behalf_of=meant_for))
                if meant_for is not None:
                    inst.events.append(NewEvent("task.delegated", None, meant_for.id, inst.id, None, {
                        "node": node.node_id, "node_name": node.name, "delegate": person.username,
                        "on_behalf_of": meant_for.username}))
        return created

    @staticmethod
    def _insert_task(sql: Sql, inst: InstanceRow, row: TaskRow, at: datetime) -> None:
        row.instance_id, row.created_at = inst.id, at
        row.id = sql.row(_INSERT_TASK, (
            inst.id, row.spiff_task_id, row.node_id, row.node_name, row.lane, row.form_key, row.form_version,
            row.assignee_id, row.candidate_rule, row.status, row.slot, sql.ts(at), sql.ts(row.completed_at),
            row.completed_by, row.outcome, row.comment, sql.json(row.data), row.on_behalf_of_id))[0]


def _user(sql: Sql, username: str, *, need: str | None = None) -> User:
    """The active user `username`; with `need`, one of their roles must grant that permission
    (三员分立: the system, security and audit administrators never start or approve business)."""
    found = sql.row("SELECT id, username, display_name, department_id, branch_id, status FROM users "
                    "WHERE username = ?", (username,))
    if found is None:
        raise NotFound(f"用户 {username} 不存在")
    if found[5] != "active":
        raise Forbidden(f"用户 {username} 已停用")
    if need is not None:
        granted = sql.rows("SELECT r.permissions FROM user_roles g JOIN roles r ON r.\"key\" = g.role_key "
                           "WHERE g.user_id = ?", (found[0],))
        if not any(need in (Sql.from_json(p) or ()) for (p,) in granted):
            raise Forbidden(f"{found[2]} 没有权限：{PERMISSIONS[need]}")
    return User(*found[:5])


def _check_can_act(sql: Sql, task: TaskRow, inst: InstanceRow, user: User) -> None:
    if task.status != "open":
        who = sql.row("SELECT display_name FROM users WHERE id = ?", (task.completed_by,)) \
            if task.completed_by else None
        verb = {"approved": "同意", "rejected": "驳回", "submitted": "提交"}.get(task.outcome or "", "处理")
        done = f"已由 {who[0]} 于 {local(task.completed_at):%Y-%m-%d %H:%M} {verb}" \
            if who and task.completed_at else "已取消"
        raise Conflict(f"任务 {task.id}「{task.node_name}」{done}，不能再处理")
    if inst.status != "running":
        raise Conflict(f"流程实例 {inst.id} 已结束（{inst.status}）")
    if task.assignee_id != user.id:
        raise Forbidden(f"任务 {task.id}「{task.node_name}」不是 {user.display_name} 的待办")


def _visible(principal: Principal) -> tuple[str, list]:
    """SQL (over `process_instances i JOIN users u` on the initiator) for what `principal` may see."""
    mine = ("(i.initiator_id = ? OR EXISTS (SELECT 1 FROM tasks t WHERE t.instance_id = i.id AND "
            "(t.assignee_id = ? OR t.completed_by = ? OR t.on_behalf_of_id = ?)))")
    params: list = [principal.user_id] * 4
    scope = principal.scope("instance.read")
    if scope is None or scope.only_self:
        return mine, params
    if scope.everything:
        return "1=1", []
    dept, p1 = scope.org_sql("u.department_id")
    branch, p2 = scope.org_sql("u.branch_id")
    return f"({mine} OR {dept} OR {branch})", params + p1 + p2


def _iso(v: datetime | None) -> str | None:
    return v.isoformat() if v else None


def _task_views(sql: Sql, where: str, params: tuple) -> list[TaskView]:
    rows = sql.rows(
        f"SELECT {', '.join('t.' + c for c in _TASK_COLS.split(', '))}, i.title, i.definition_key, "
        "a.username, a.display_name, b.username, o.username, o.display_name FROM tasks t "
        "JOIN process_instances i ON i.id = t.instance_id LEFT JOIN users a ON a.id = t.assignee_id "
        "LEFT JOIN users b ON b.id = t.completed_by LEFT JOIN users o ON o.id = t.on_behalf_of_id "
        f"WHERE {where} ORDER BY t.id", params)
    return [_task_view(TaskRow.from_db(r[:19]), *r[19:]) for r in rows]


def _task_view(t: TaskRow, title: str, key: str, assignee: str | None, assignee_name: str | None,
               completed_by: str | None, on_behalf_of: str | None = None,
               on_behalf_of_name: str | None = None) -> TaskView:
    return TaskView(id=t.id, instance_id=t.instance_id, instance_title=title, definition_key=key,
                    node_id=t.node_id, node_name=t.node_name, form_key=t.form_key, assignee=assignee,
                    assignee_name=assignee_name, status=t.status, outcome=t.outcome, comment=t.comment,
                    created_at=_iso(t.created_at), completed_at=_iso(t.completed_at), completed_by=completed_by,
                    data=t.data, on_behalf_of=on_behalf_of, on_behalf_of_name=on_behalf_of_name)


def _view(inst: InstanceRow, t: TaskRow) -> TaskView:
    a, o = t.assignee, t.on_behalf_of
    return _task_view(t, inst.title, inst.definition_key, a.username if a else None, a.display_name if a else None,
                      None, o.username if o else None, o.display_name if o else None)
