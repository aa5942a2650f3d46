"""WorkflowEngine: start instances, act on tasks, list the inbox. One unit of work per action.

Every action loads the instance under a row lock (FOR UPDATE on PostgreSQL; BEGIN IMMEDIATE on
SQLite), restores the workflow around the cached spec, runs it, projects READY user tasks into
`tasks`, saves the state with an optimistic version check and appends the audit event, all in one
transaction: either the whole action happens or none of it does.
"""
from __future__ import annotations

from uuid import UUID

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from engine import audit
from engine.clock import local, now
from engine.config import Settings, get_settings
from engine.db import Database
from engine.definitions import latest_process
from engine.errors import Conflict, EngineError, Forbidden, InvalidInput, NotFound
from engine.forms.store import validate_data
from engine.models import ProcessInstance, Task, User
from engine.org.rules import RuleResolver, parse_rule
from engine.runtime.definitions import DefinitionCache, DefinitionRuntime
from engine.runtime.serializer import STATE_VERSION, dump_state, load_state
from engine.runtime.views import ActResult, InstanceView, TaskView, instance_view, task_views

ACTION_NAMES = {"submit": "提交", "approve": "同意", "reject": "驳回"}


class ProcessError(EngineError):
    """The process definition failed while running (a condition or script raised)."""

    status = 422
    title = "Process error"


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
        with self.db.unit_of_work() as s:
            user = _user(s, username)
            row = latest_process(s, key)
            if row is None:
                raise NotFound(f"没有已发布的流程 {key}")
            d = self.definitions.get(s, row.id, row)
            workflow = BpmnWorkflow(d.spec, d.subprocess_specs, script_engine=d.script_engine)
            instance = ProcessInstance(
                definition_id=d.id, definition_key=d.key, definition_version=d.version,
                business_key=business_key, title=title or f"{user.display_name}的{d.name}",
                initiator_id=user.id, status="running", state="", serializer_version=STATE_VERSION)
            s.add(instance)
            self._run(workflow, d)
            created = self._project(s, instance, workflow, d, user, [])
            submitted = None
            if data is not None:
                first = next((t for t in created if d.node(t.node_id).initiator), None)
                if first is None:
                    raise InvalidInput(f"流程 {key} 没有发起人任务，不能随启动提交数据")
                created, submitted = [t for t in created if t is not first], first
                created = self._apply(s, instance, workflow, d, first, "submit", user, user, data, None, created)
            instance.state = dump_state(workflow)
            s.flush()  # one INSERT of the instance and its tasks; ids exist from here on
            audit.append(s, action="instance.start", actor_id=user.id, instance_id=instance.id,
                         payload={"definition": d.key, "version": d.version, "title": instance.title,
                                  "business_key": business_key})
            if submitted is not None:
                self._log(s, instance, submitted, user)
            return ActResult(instance.id, instance.status, task_views(s, created))

    def act(self, *, task_id: int, action: str, username: str, data: dict | None = None,
            comment: str | None = None) -> ActResult:
        """Act on one task as `username`. Exactly one of two concurrent actions on an instance wins."""
        if action not in ACTION_NAMES:
            raise InvalidInput(f"未知的操作 {action}；可用：{'、'.join(ACTION_NAMES)}")
        try:
            with self.db.unit_of_work() as s:
                user = _user(s, username)
                instance = s.scalar(select(ProcessInstance).join(Task, Task.instance_id == ProcessInstance.id)
                                    .where(Task.id == task_id).with_for_update(of=ProcessInstance))
                if instance is None:
                    raise NotFound(f"任务 {task_id} 不存在")
                rows = s.scalars(select(Task).where(Task.instance_id == instance.id,
                                                    or_(Task.status == "open", Task.id == task_id))
                                 .order_by(Task.id).execution_options(populate_existing=True)).all()
                task = next(t for t in rows if t.id == task_id)
                _check_can_act(s, task, instance, user)
                d = self.definitions.get(s, instance.definition_id)
                node = d.node(task.node_id)
                if action not in node.actions:
                    raise InvalidInput(f"「{node.name}」不能执行“{ACTION_NAMES[action]}”；可用："
                                       f"{'、'.join(ACTION_NAMES[a] for a in node.actions)}")
                workflow = load_state(instance.state, instance.serializer_version, spec=d.spec,
                                      subprocess_specs=d.subprocess_specs, script_engine=d.script_engine)
                initiator = s.get(User, instance.initiator_id)
                others = [t for t in rows if t is not task]
                created = self._apply(s, instance, workflow, d, task, action, user, initiator, data, comment, others)
                instance.state = dump_state(workflow)
                self._log(s, instance, task, user)
                s.flush()  # one UPDATE of the instance, with the version check
                return ActResult(instance.id, instance.status, task_views(s, created))
        except StaleDataError:
            raise Conflict("该流程刚被其他人处理，请刷新后重试") from None

    # -- queries --------------------------------------------------------------------------
    def list_tasks(self, *, username: str, status: str = "open") -> list[TaskView]:
        if status not in ("open", "done"):
            raise InvalidInput("status 只能是 open 或 done")
        with self.db.read() as s:
            user = _user(s, username)
            q = select(Task).where(Task.assignee_id == user.id)
            q = q.where(Task.status == "open") if status == "open" else \
                q.where(Task.status == "completed", Task.completed_by == user.id)
            rows = s.scalars(q.order_by(Task.id)).all()
            return task_views(s, rows)

    def instance(self, *, instance_id: int) -> InstanceView:
        with self.db.read() as s:
            instance = s.get(ProcessInstance, instance_id)
            if instance is None:
                raise NotFound(f"流程实例 {instance_id} 不存在")
            return instance_view(s, instance)

    # -- internals ------------------------------------------------------------------------
    def _apply(self, s: Session, instance: ProcessInstance, workflow: BpmnWorkflow, d: DefinitionRuntime,
               task: Task, action: str, user: User, initiator: User, data: dict | None, comment: str | None,
               others: list[Task]) -> list[Task]:
        node = d.node(task.node_id)
        data = dict(data or {})
        if node.form_key:
            form = self.definitions.form(s, node.form_key, d.form_refs[node.form_key])
            problems = validate_data(form.schema, data)
            if problems:
                raise InvalidInput(f"表单「{form.title}」填写有误：" + "；".join(
                    f"{p.field or '表单'} {p.reason}" for p in problems), errors=problems)
        elif data:
            raise InvalidInput(f"「{node.name}」没有表单，不接受表单数据")
        if comment is not None and len(comment) > 2000:
            raise InvalidInput("审批意见最多 2000 字", errors=[])
        spiff_task = workflow.get_task_from_id(UUID(task.spiff_task_id))
        if spiff_task is None or spiff_task.state != TaskState.READY:
            raise Conflict(f"任务 {task.id} 在流程中已不是待办状态")

        at = now()
        outcome = {"submit": "submitted", "approve": "approved", "reject": "rejected"}[action]
        opinion = comment if comment is not None else data.get("opinion")
        task.status, task.outcome, task.comment = "completed", outcome, opinion
        task.data, task.completed_at, task.completed_by = data, at, user.id
        if action == "submit":
            spiff_task.data.update(data)
        else:
            approvals = dict(spiff_task.data.get("approvals") or {})
            approvals[task.node_id] = {"outcome": outcome, "by": user.username, "comment": opinion,
                                       "at": at.isoformat(), "data": data}
            spiff_task.data["approvals"] = approvals
        if action == "submit" and node.initiator and "title" in data and data["title"]:
            instance.title = str(data["title"])[:300]
        # Other approver slots of the same node: the first decision settles it (或签 until issue 4).
        for other in others:
            if other.spiff_task_id == task.spiff_task_id and other.status == "open":
                other.status = "cancelled"
        remaining = [t for t in others if t.status == "open"]

        if action == "reject":
            # rejectPolicy "end" (the default): the instance ends as rejected.
            workflow.cancel()
            for other in remaining:
                other.status = "cancelled"
            instance.status, instance.ended_at = "rejected", at
            created: list[Task] = []
        else:
            spiff_task.run()
            self._run(workflow, d)
            created = self._project(s, instance, workflow, d, initiator, remaining)
            if workflow.is_completed():
                instance.status, instance.ended_at = "completed", at
        return created

    @staticmethod
    def _log(s: Session, instance: ProcessInstance, task: Task, user: User) -> None:
        """The audit event of one task action, written in the action's own transaction."""
        action = {"submitted": "submit", "approved": "approve", "rejected": "reject"}[task.outcome]
        audit.append(s, action=f"task.{action}", actor_id=user.id, instance_id=instance.id, task_id=task.id,
                     payload={"node": task.node_id, "node_name": task.node_name, "outcome": task.outcome,
                              "comment": task.comment, "data": task.data, "instance_status": instance.status})

    def _run(self, workflow: BpmnWorkflow, d: DefinitionRuntime) -> None:
        try:
            workflow.do_engine_steps()
        except SpiffWorkflowException as exc:
            node = getattr(getattr(exc, "task_spec", None), "bpmn_name", None) or \
                getattr(getattr(exc, "task_spec", None), "name", "")
            raise ProcessError(f"流程 {d.key} v{d.version} 在节点 {node} 执行出错：{exc}") from None

    def _project(self, s: Session, instance: ProcessInstance, workflow: BpmnWorkflow, d: DefinitionRuntime,
                 initiator: User, open_rows: list[Task]) -> list[Task]:
        """Make `tasks` match the READY user tasks: cancel rows whose task moved on, create the new ones."""
        ready = workflow.get_tasks(state=TaskState.READY, manual=True)
        ready_ids = {str(t.id) for t in ready}
        for row in open_rows:
            if row.spiff_task_id not in ready_ids:
                row.status = "cancelled"
        have = {row.spiff_task_id for row in open_rows if row.status == "open"}
        created = []
        resolver: RuleResolver | None = None
        for spiff_task in ready:
            if str(spiff_task.id) in have:
                continue
            node = d.node(spiff_task.task_spec.name)
            if node.initiator or node.rule == "initiator":
                assignees = [initiator.id]
            else:
                resolver = resolver or RuleResolver(s, initiator=initiator, data=spiff_task.data)
                resolver.data = spiff_task.data
                with s.no_autoflush:  # org lookups must not push the half-built instance to the database
                    assignees = resolver.resolve(parse_rule(node.rule))
            if not assignees:
                raise InvalidInput(f"「{node.name}」的处理人规则 {node.rule} 没有找到任何人，"
                                   f"请先维护组织、职务或分管关系后重试")
            for slot, user_id in enumerate(assignees):
                row = Task(instance=instance, spiff_task_id=str(spiff_task.id), node_id=node.node_id,
                           node_name=node.name, lane=node.lane, form_key=node.form_key,
                           form_version=d.form_refs.get(node.form_key) if node.form_key else None,
                           assignee_id=user_id, candidate_rule=node.rule, status="open", slot=slot)
                s.add(row)
                created.append(row)
        return created


def _user(s: Session, username: str) -> User:
    user = s.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"用户 {username} 不存在")
    if user.status != "active":
        raise Forbidden(f"用户 {username} 已停用")
    return user


def _check_can_act(s: Session, task: Task, instance: ProcessInstance, user: User) -> None:
    if task.status != "open":
        who = s.get(User, task.completed_by) if task.completed_by else None
        done = f"已由 {who.display_name} 于 {local(task.completed_at):%Y-%m-%d %H:%M} " \
               f"{ {'approved': '同意', 'rejected': '驳回', 'submitted': '提交'}.get(task.outcome, '处理')}" \
            if who and task.completed_at else "已取消"
        raise Conflict(f"任务 {task.id}「{task.node_name}」{done}，不能再处理")
    if instance.status != "running":
        raise Conflict(f"流程实例 {instance.id} 已结束（{instance.status}）")
    if task.assignee_id != user.id:
        raise Forbidden(f"任务 {task.id}「{task.node_name}」不是 {user.display_name} 的待办")

