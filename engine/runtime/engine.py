"""WorkflowEngine: start instances, act on tasks, list the inbox. One unit of work per action.

Every action loads the instance under a row lock (FOR UPDATE on PostgreSQL; BEGIN IMMEDIATE on
SQLite), restores the workflow around the cached spec, lets engine/approvals change the slots and
decide nodes, saves the state with an optimistic version check, writes the slots, notifications
and audit events, all in one transaction: either the whole action happens or none of it does.
Exactly one of two concurrent actions on an instance wins; the loser gets 409.
The statements go through engine/sql.py (see there why not the ORM).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import time
from contextlib import contextmanager
from datetime import datetime, timedelta
from dataclasses import asdict
from pathlib import Path
from uuid import UUID

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from engine.approvals import actions as A
from engine.approvals.actions import ACTION_NAMES, ActionInput, allowed_actions, field_permissions
from engine.approvals.quorum import Method
from engine.approvals.rows import INSTANCE_COLS, TASK_COLS, InstanceRow, TaskRow, User, load_user
from engine.approvals.unit import ProcessError, Unit
from engine.audit import NewEvent, append_events, checkpoints
from engine.audit.auditor import Auditor
from engine.clock import SHANGHAI, as_utc, beijing_to_utc, now
from engine.config import Settings, get_settings
from engine.db import Database
from engine.errors import Conflict, EngineError, FieldProblem, Forbidden, InvalidInput, NotFound
from engine.identity.permissions import PERMISSIONS
from engine.identity.principal import ClientInfo, Principal
from engine.notify.email import Mailer
from engine.notify.webhooks import Webhooks
from engine.runtime import attachments, monitor, services
from engine.runtime.attachments import AttachmentView
from engine.runtime.monitor import ChainStatus, InstanceVariables
from engine.runtime.definitions import DefinitionCache
from engine.runtime.serializer import STATE_VERSION, dump_state, load_state
from engine.runtime.states import StateCache
from engine.runtime.views import (
    ActResult,
    CommentView,
    DiagramView,
    FormView,
    HistoryEntry,
    InstanceView,
    NodeRef,
    NodeState,
    TaskDetail,
    TaskView,
)
from engine.scheduler import schedules, sla, timers
from engine.sql import Sql

log = logging.getLogger("djflow.engine")

_WORKER = f"{socket.gethostname()}:{os.getpid()}"

__all__ = ["ACTION_NAMES", "ActionInput", "ProcessError", "WorkflowEngine"]

MAX_TITLE = 300  # process_instances.title
MAX_BUSINESS_KEY = 100  # process_instances.business_key
MAX_IDEMPOTENCY_KEY = 200
MAX_COMMENT_BODY = 2000
MAX_STAGED = 50  # files one person has uploaded for start forms not yet submitted
STAGED_TTL = timedelta(hours=24)  # a staged file not submitted with a start form by then is deleted
STAGED_PURGE_EVERY = 600  # seconds between two purges by the scheduler's tick, per process
BLOB_GRACE = 600  # seconds a stored file just written or reused is kept even when no row refers to it
MAX_PAGE = 1_000_000  # beyond, OFFSET would overflow a 64-bit integer
SCOPES = ("mine", "team", "cc", "done")
_INSTANCE_VIEW = ("SELECT i.id, i.definition_key, i.definition_version, i.title, i.status, u.username, "
                  "u.display_name, i.started_at, i.ended_at, i.business_key FROM process_instances i "
                  "JOIN users u ON u.id = i.initiator_id")


BUSY = -1  # fire_job: the instance is locked by an action right now


class WorkflowEngine:
    def __init__(self, db: Database, settings: Settings | None = None):
        self.db = db
        self.settings = settings or get_settings()
        self.definitions = DefinitionCache(script_time_limit=self.settings.script_time_limit)
        self.states = StateCache(self.settings.state_cache_size)
        self.webhooks = Webhooks(db, self.settings)  # notifications pushed out (engine/notify/webhooks.py)
        self.mailer = Mailer(db, self.settings)  # and mailed (engine/notify/email.py)
        self.auditor = Auditor(db, self.settings, self.webhooks)  # the auditor's side of the log
        self._planned = float("-inf")  # when process schedules were last planned (time.monotonic)
        self._checkpoint_warned = float("-inf")  # when a missing audit key was last logged
        self._staged_purged = float("-inf")  # when purge_staged_due last ran

    # -- commands -------------------------------------------------------------------------
    def start(self, *, key: str, username: str, data: dict | None = None, title: str | None = None,
              business_key: str | None = None, idempotency_key: str | None = None,
              client: ClientInfo | None = None, principal: Principal | None = None,
              variables: dict | None = None) -> ActResult:
        """Start the newest published version of `key` as `username`; with `data`, also submit
        the initiator's own first task (发起申请) in the same unit of work. `variables` go into the
        start event's data (a scheduled start's unit and period); a timer start event fires at once."""
        if title is not None and not 0 < len(title) <= MAX_TITLE:
            raise InvalidInput(f"标题应为 1 到 {MAX_TITLE} 个字符", errors=[FieldProblem("title", f"1 到 {MAX_TITLE} 个字符")])
        if business_key is not None and not 0 < len(business_key) <= MAX_BUSINESS_KEY:
            raise InvalidInput(f"业务编号应为 1 到 {MAX_BUSINESS_KEY} 个字符",
                               errors=[FieldProblem("business_key", f"1 到 {MAX_BUSINESS_KEY} 个字符")])
        # The request's digest identifies a retry; without an Idempotency-Key nothing reads it.
        request = (None if idempotency_key is None else
                   _digest({"start": key, "data": data, "title": title, "business_key": business_key}))
        with self.db.transaction() as sql:
            user = _actor(sql, username, "process.start", principal)
            client = client or (principal.client if principal else None)
            replay = _replayed(sql, user, idempotency_key, request)
            if replay is not None:
                return replay
            found = sql.row("SELECT id FROM process_definitions WHERE key = ? AND status = 'published' "
                            "ORDER BY version DESC LIMIT 1", (key,))
            if found is None:
                raise NotFound(f"没有已发布的流程 {key}")
            d = self.definitions.get(sql, found[0])
            workflow = BpmnWorkflow(d.spec, d.subprocess_specs, script_engine=d.script_engine)
            inst = InstanceRow(None, d.id, d.key, d.version, title or f"{user.display_name}的{d.name}", "running",
                               "", STATE_VERSION, 1, user)
            unit = Unit(sql, inst, d, workflow, [], settings=self.settings)
            unit.client = (client or ClientInfo()).audit()
            schedules.fire_start_timers(workflow, {"initiator": initiator_facts(sql, user.id), **(variables or {})})
            unit.run()
            unit.settle()
            if data is not None:
                first = next((r for r in unit.rows if r.kind == "submit" and r.status == "open"), None)
                if first is None:
                    raise InvalidInput(f"流程 {key} 没有发起人任务，不能随启动提交数据")
                A.submit(self, unit, first, user, ActionInput(data=data))
                unit.settle()
            unit.end_if_completed()
            inst.id = sql.row(
                "INSERT INTO process_instances (definition_id, definition_key, definition_version, business_key, "
                "title, initiator_id, status, state, serializer_version, version, started_at, ended_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?) RETURNING id",
                (d.id, d.key, d.version, business_key, inst.title, user.id, inst.status, dump_state(workflow),
                 STATE_VERSION, sql.ts(unit.at), sql.ts(inst.ended_at)))[0]
            attachments.bind_staged(sql, unit.staged, instance_id=inst.id, task_id=None, user_id=user.id)
            inst.events.insert(0, NewEvent("instance.start", user.id, None, inst.id, None, {
                "definition": d.key, "version": d.version, "title": inst.title, "business_key": business_key}))
            if d.has_services and services.ready(workflow):  # built-ins need the instance's id
                unit.settle()
                unit.end_if_completed()
                sql.defer("UPDATE process_instances SET state = ?, status = ?, ended_at = ? WHERE id = ?",
                          (dump_state(workflow), inst.status, sql.ts(inst.ended_at), inst.id))
            created = self._write(unit, [])
            result = ActResult(inst.id, inst.status, [self._view(unit, r) for r in created if r.status == "open"])
            _remember(sql, user, idempotency_key, request, result)
            self._log(unit)
        self.states.put(inst.id, 1, d.id, workflow)  # committed
        return result

    def act(self, *, task_id: int, action: str, username: str, data: dict | None = None,
            comment: str | None = None, inp: ActionInput | None = None,
            idempotency_key: str | None = None, client: ClientInfo | None = None,
            principal: Principal | None = None) -> ActResult:
        """Act on one task as `username` (with `principal`, the caller already signed in as them). Exactly one of two concurrent actions on an instance wins.
        With an `idempotency_key`, a retry of the same request returns the first result."""
        if action not in A.HANDLERS:
            raise InvalidInput(f"未知的操作 {action}；可用：{'、'.join(ACTION_NAMES[a] + '(' + a + ')' for a in A.HANDLERS)}")
        inp = inp or ActionInput()
        if data is not None:
            inp.data = data
        if comment is not None:
            inp.comment = comment
        request = None if idempotency_key is None else _digest({"task": task_id, "action": action, **inp.digest()})
        need = "process.start" if action == "urge" else "task.act"
        with self._unit(task_id=task_id, username=username, need=need, client=client,
                        principal=principal) as (unit, user, row):
            replay = _replayed(unit.sql, user, idempotency_key, request)
            if replay is not None:
                unit.replayed = replay
                return replay
            before = {r.id for r in unit.rows}
            A.HANDLERS[action](self, unit, row, user, inp)
            unit.settle()
            created = self._write(unit, before)
            result = ActResult(unit.inst.id, unit.inst.status,
                               [self._view(unit, r) for r in created if r.status == "open" and r.kind != "cc"])
            _remember(unit.sql, user, idempotency_key, request, result)
            return result

    def withdraw(self, *, instance_id: int, username: str, comment: str | None = None,
                 terminate: bool = False, client: ClientInfo | None = None) -> ActResult:
        """撤回 by the initiator while no approver has decided since the last submission: back to
        the initiator's task (发起申请) to edit and resubmit, or, with `terminate`, ended as withdrawn."""
        with self._unit(instance_id=instance_id, username=username, need="process.start",
                        client=client) as (unit, user, _):
            if unit.inst.initiator.id != user.id:
                raise Forbidden("只有发起人可以撤回申请")
            if unit.inst.status != "running":
                raise Conflict(f"流程实例 {instance_id} 已结束（{unit.inst.status}），不能撤回")
            submits = [r for r in unit.rows if r.kind == "submit" and r.status == "completed"]
            if not submits:
                raise Conflict("申请还没有提交，无需撤回")
            last = max(submits, key=lambda r: (r.completed_at, r.id))
            acted = [r for r in unit.rows if r.kind == "approve" and r.completed_by and r.completed_at
                     and r.completed_at >= last.completed_at and r.status in ("completed", "transferred")]
            if acted:
                r = acted[0]
                raise Conflict(f"「{r.node_name}」已由 {unit.display_name(r.completed_by)} 处理，不能撤回；可请其退回")
            text = (comment or "").strip() or None
            before = {r.id for r in unit.rows}
            unit.event("instance.withdraw", user.id, None, None, {"comment": text, "terminate": terminate})
            if terminate:
                unit.workflow.cancel()
                unit.end("withdrawn")
            else:
                target = unit.workflow.get_task_from_id(UUID(last.spiff_task_id))
                if target is None or target.state != TaskState.COMPLETED:
                    raise Conflict("发起节点已不在流程路径上，不能撤回")
                unit.return_to(target, {"kind": "withdrawn", "by": user.display_name, "reason": text})
                unit.settle()
            created = self._write(unit, before)
            return ActResult(unit.inst.id, unit.inst.status, [self._view(unit, r) for r in created
                                                              if r.status == "open"])

    def cancel(self, *, instance_id: int, principal: Principal, reason: str) -> ActResult:
        """Cancel a running instance (an administrator, within their scope, with a reason)."""
        text = (reason or "").strip()
        if not text:
            raise InvalidInput("撤销须填写原因", errors=[FieldProblem("reason", "必填")])
        if len(text) > MAX_COMMENT_BODY:
            raise InvalidInput(f"原因最多 {MAX_COMMENT_BODY} 字", errors=[FieldProblem("reason", "过长")])
        principal.require("instance.admin")
        self._check_visible(principal, instance_id, perm="instance.admin")
        with self._unit(instance_id=instance_id, username=principal.username, need="instance.admin",
                        client=principal.client) as (unit, user, _):
            if unit.inst.status not in ("running", "error"):  # one in error may be given up on
                raise Conflict(f"流程实例 {instance_id} 已结束（{unit.inst.status}）")
            before = {r.id for r in unit.rows}
            unit.workflow.cancel()
            unit.end("cancelled")
            unit.event("instance.cancel", user.id, None, None, {"reason": text})
            for uid in {r.assignee_id for r in unit.rows if r.kind != "cc"} | {unit.inst.initiator.id}:
                unit.notify(uid, "instance.cancelled", f"已撤销：{unit.inst.title}", f"{user.display_name}：{text}")
            self._write(unit, before)
            return ActResult(unit.inst.id, unit.inst.status, [])

    def add_comment(self, *, principal: Principal, instance_id: int, body: str) -> CommentView:
        text = (body or "").strip()
        if not 0 < len(text) <= MAX_COMMENT_BODY:
            raise InvalidInput(f"评论应为 1 到 {MAX_COMMENT_BODY} 字", errors=[FieldProblem("body", "1 到 2000 字")])
        self._check_visible(principal, instance_id)
        at = now()
        with self.db.transaction() as sql:
            cid = sql.row("INSERT INTO comments (instance_id, author_id, body, created_at) VALUES (?, ?, ?, ?) "
                          "RETURNING id", (instance_id, principal.user_id, text, sql.ts(at)))[0]
            append_events(sql, [NewEvent("instance.comment", principal.user_id, None, instance_id, None,
                                         {"comment_id": cid, "body": text, **principal.client.audit()})],
                          hash_alg=self.settings.audit_hash)
            name = sql.row("SELECT display_name FROM users WHERE id = ?", (principal.user_id,))[0]
        return CommentView(cid, instance_id, principal.username, name, text, at.isoformat())

    def comments(self, *, principal: Principal, instance_id: int) -> list[CommentView]:
        self._check_visible(principal, instance_id)
        with self.db.transaction(write=False) as sql:
            rows = sql.rows("SELECT c.id, c.instance_id, u.username, u.display_name, c.body, c.created_at "
                            "FROM comments c JOIN users u ON u.id = c.author_id WHERE c.instance_id = ? "
                            "ORDER BY c.id", (instance_id,))
        return [CommentView(*r[:5], created_at=_iso(Sql.from_ts(r[5]))) for r in rows]

    def add_attachment(self, *, principal: Principal, instance_id: int, filename: str, content_type: str,
                       content: bytes, task_id: int | None = None) -> AttachmentView:
        """A file added to a running instance by its initiator or by someone holding one of its open
        tasks (not a 抄送 reader, nor an administrator who only oversees it). A file added at a task of
        a confidential node is tied to that task and, like what is filled in there, seen by its uploader alone.
        `task_id` names the caller's open task the file is added at; without it, the caller's only open
        task of the instance (none: added as the initiator; several: refused, the upload must say which)."""
        self._check_visible(principal, instance_id)
        at = now()
        with self.db.transaction() as sql:
            status, initiator = sql.row("SELECT status, initiator_id FROM process_instances WHERE id = ?",
                                        (instance_id,))
            if status != "running":
                raise Conflict(f"流程实例 {instance_id} 已结束，不能再上传附件")
            open_tasks = [r[0] for r in sql.rows(
                "SELECT id FROM tasks WHERE instance_id = ? AND assignee_id = ? AND status = 'open' "
                "AND kind <> 'cc' ORDER BY id", (instance_id, principal.user_id))]
            if task_id is not None:
                if task_id not in open_tasks:
                    raise InvalidInput(f"任务 {task_id} 不是您在本流程中的待办，不能在此上传附件",
                                       errors=[FieldProblem("task_id", "不是您在本流程中的待办")])
                mine: int | None = task_id
            elif len(open_tasks) > 1:
                raise InvalidInput("您在本流程中有多个待办，请在任务页面上传附件（须指明 task_id）",
                                   errors=[FieldProblem("task_id", "请指明在哪个待办上传")])
            else:
                mine = open_tasks[0] if open_tasks else None
            if mine is None and initiator != principal.user_id:
                raise Forbidden("只有发起人和当前办理人可以上传附件")
            aid = attachments.insert(sql, self.settings, instance_id=instance_id, task_id=mine,
                                     filename=filename, content_type=content_type, content=content, purpose="file",
                                     user_id=principal.user_id, at=at)
            row = sql.row("SELECT sha256 FROM attachments WHERE id = ?", (aid,))
            append_events(sql, [NewEvent("instance.attach", principal.user_id, None, instance_id, mine, {
                "attachment_id": aid, "filename": filename, "sha256": row[0], "size": len(content),
                **principal.client.audit()})],
                hash_alg=self.settings.audit_hash)
        return self.attachment(principal=principal, attachment_id=aid)[0]

    def stage_attachment(self, *, principal: Principal, filename: str, content_type: str,
                         content: bytes) -> AttachmentView:
        """A file uploaded for a start form before the instance exists: kept for its uploader alone
        (purpose `staged`) until a start names it in a file field, which binds it to the new instance."""
        principal.require("process.start")
        at = now()
        with self.db.transaction() as sql:
            # the uploader's row lock serialises their uploads, so two at once cannot both pass the cap
            # (SQLite: BEGIN IMMEDIATE already holds the write lock)
            sql.row("SELECT id FROM users WHERE id = ?" + sql.for_update(), (principal.user_id,))
            waiting = sql.row("SELECT COUNT(*) FROM attachments WHERE instance_id IS NULL AND purpose = 'staged' "
                              "AND uploaded_by = ?", (principal.user_id,))[0]
            if waiting >= MAX_STAGED:
                raise Conflict(f"已有 {waiting} 个尚未提交的附件，请先提交申请后再上传")
            aid = attachments.insert(sql, self.settings, instance_id=None, task_id=None, filename=filename,
                                     content_type=content_type, content=content, purpose="staged",
                                     user_id=principal.user_id, at=at)
            r = sql.row(_ATTACHMENT_SQL + " WHERE a.id = ?", (aid,))
            append_events(sql, [NewEvent("attachment.stage", principal.user_id, None, None, None, {
                "attachment_id": aid, "filename": r[2], "sha256": r[5], "size": len(content),
                **principal.client.audit()})], hash_alg=self.settings.audit_hash)
        return _attachment_view(r)

    def discard_staged(self, *, principal: Principal, attachment_id: int) -> None:
        """The uploader takes back a file staged for a start form that was not submitted with it."""
        with self.db.transaction() as sql:
            r = sql.row("SELECT filename, sha256 FROM attachments WHERE id = ? AND instance_id IS NULL AND "
                        "purpose = 'staged' AND uploaded_by = ?" + sql.for_update(), (attachment_id, principal.user_id))
            if r is None:  # someone else's, bound to a request, or gone: all look the same
                raise NotFound(f"附件 {attachment_id} 不存在，或已随申请提交、不能删除")
            self._drop_attachments(sql, [attachment_id])
            append_events(sql, [NewEvent("attachment.discard", principal.user_id, None, None, None, {
                "attachment_id": attachment_id, "filename": r[0], "sha256": r[1], **principal.client.audit()})],
                hash_alg=self.settings.audit_hash)
        self._unlink_unused({r[1]})

    def purge_staged(self, *, max_age: timedelta = STAGED_TTL) -> int:
        """Staged files never submitted with a start form, older than `max_age`: deleted (for the
        scheduler's tick, at most every STAGED_PURGE_EVERY seconds unless called directly)."""
        cut = now() - max_age
        with self.db.transaction() as sql:
            rows = sql.rows("SELECT id, sha256, filename, uploaded_by FROM attachments WHERE instance_id IS NULL "
                            "AND purpose = 'staged' AND created_at < ? ORDER BY id LIMIT 1000" + sql.for_update(),
                            (sql.ts(cut),))
            if not rows:
                return 0
            self._drop_attachments(sql, [r[0] for r in rows])
            append_events(sql, [NewEvent("attachment.discard", None, None, None, None, {
                "attachment_id": aid, "filename": name, "sha256": digest, "uploaded_by": who, "expired": True})
                for aid, digest, name, who in rows], hash_alg=self.settings.audit_hash)
        self._unlink_unused({r[1] for r in rows})
        return len(rows)

    def purge_staged_due(self) -> int:
        """purge_staged, when STAGED_PURGE_EVERY seconds have passed since this process last ran it."""
        if time.monotonic() - self._staged_purged < STAGED_PURGE_EVERY:
            return 0
        self._staged_purged = time.monotonic()
        return self.purge_staged()

    @staticmethod
    def _drop_attachments(sql: Sql, ids: list[int]) -> None:
        sql.run(f"DELETE FROM attachments WHERE id IN ({', '.join('?' * len(ids))})", ids)

    def _unlink_unused(self, digests: set[str]) -> None:
        """Remove stored files no attachment row refers to any more (after the deleting commit). A
        file written or reused by an upload in the last BLOB_GRACE seconds is kept: that upload's
        row may not be committed yet (attachments.store_blob touches a file it reuses)."""
        with self.db.transaction(write=False) as sql:
            unused = [d for d in digests if sql.row("SELECT 1 FROM attachments WHERE sha256 = ?", (d,)) is None]
        for d in unused:
            attachments.unlink_blob(self.settings, d, grace=BLOB_GRACE)

    def attachments(self, *, principal: Principal, instance_id: int) -> list[AttachmentView]:
        self._check_visible(principal, instance_id)
        with self.db.transaction(write=False) as sql:
            rows = sql.rows(_ATTACHMENT_SQL + " WHERE a.instance_id = ? ORDER BY a.id", (instance_id,))
            hidden = self._secret_files(sql, principal, instance_id)
        return [_attachment_view(r) for r in rows if r[0] not in hidden]

    def _secret_files(self, sql: Sql, principal: Principal, instance_id: int) -> set[int]:
        """Attachments of an instance added at a confidential node's task by someone else: hidden."""
        secret = self.definitions.get(sql, sql.row("SELECT definition_id FROM process_instances WHERE id = ?",
                                                   (instance_id,))[0]).confidential
        if not secret:
            return set()
        rows = sql.rows("SELECT a.id, t.node_id FROM attachments a JOIN tasks t ON t.id = a.task_id "
                        "WHERE a.instance_id = ? AND a.uploaded_by <> ?", (instance_id, principal.user_id))
        return {aid for aid, node_id in rows if node_id in secret}

    def attachment(self, *, principal: Principal, attachment_id: int) -> tuple[AttachmentView, Path]:
        """One attachment and the path of its bytes, if the caller may see its instance (and, at a
        confidential node, uploaded it); a staged file (not yet bound to an instance) only to its uploader."""
        missing = f"附件 {attachment_id} 不存在或您无权查看"
        with self.db.transaction(write=False) as sql:
            r = sql.row(_ATTACHMENT_SQL + " WHERE a.id = ?", (attachment_id,))
            if r is None:
                raise NotFound(f"附件 {attachment_id} 不存在")
            view = _attachment_view(r)
            if view.instance_id is None:
                if view.purpose != "staged" or view.uploaded_by != principal.username:
                    raise NotFound(missing)
                return view, attachments.blob_path(self.settings, view.sha256)
            self._check_visible(principal, view.instance_id, sql=sql, missing=missing)
            if view.id in self._secret_files(sql, principal, view.instance_id):
                raise NotFound(missing)
        if view.purpose in SENSITIVE_PURPOSES:
            self._sensitive_download(principal, view)
        return view, attachments.blob_path(self.settings, view.sha256)

    def _sensitive_download(self, principal: Principal, view: AttachmentView) -> None:
        """A document carrying a person's ID number in clear (the 介绍信) goes to the person
        themselves or to a holder of user.unmask over them — not to everyone who can see the
        instance (抄送, 转办, earlier approvers) — and each download is audited like an unmasking."""
        from engine.models import ProcessInstance, User

        with self.db.read() as s:
            member = s.get(User, s.get(ProcessInstance, view.instance_id).initiator_id)
            if member.id != principal.user_id:
                try:
                    principal.require_person(s, "user.unmask", member)
                except (Forbidden, NotFound):
                    raise Forbidden(f"「{view.filename}」载有{member.display_name}的身份证号码，"
                                    "只有本人和有权查看其敏感信息的人员可以下载") from None
        with self.db.transaction() as sql:
            append_events(sql, [NewEvent("attachment.download", principal.user_id, None, view.instance_id, None, {
                "attachment_id": view.id, "filename": view.filename, "purpose": view.purpose,
                "subject_user_id": member.id, **principal.client.audit()})], hash_alg=self.settings.audit_hash)

    # -- queries --------------------------------------------------------------------------
    def list_tasks(self, *, username: str, status: str = "open") -> list[TaskView]:
        """A person's open tasks (待办) or the tasks they completed (已办), oldest first."""
        if status not in ("open", "done"):
            raise InvalidInput("status 只能是 open 或 done")
        with self.db.transaction(write=False) as sql:
            user = load_user(sql, username)
            where = "t.assignee_id = ? AND t.status = 'open'" if status == "open" else \
                "t.completed_by = ? AND t.status = 'completed' AND t.kind <> 'cc'"
            return _task_views(sql, where, (user.id,))

    def inbox(self, *, principal: Principal, scope: str = "mine", status: str = "open", key: str | None = None,
              overdue: bool = False, initiator: str | None = None, arrived_from: datetime | None = None,
              arrived_to: datetime | None = None, page: int = 1, size: int = 20) -> tuple[list[TaskView], int]:
        """The inbox, newest first: mine (待办 / 已办), team (my orgs' open tasks), cc (抄送我), done.
        Filters narrow the scope's own tasks: the process, overdue, the initiator's username and the
        task's arrival time (`arrived_from` inclusive, `arrived_to` exclusive; no zone = Beijing time)."""
        if scope not in SCOPES:
            raise InvalidInput(f"scope 只能是 {'、'.join(SCOPES)}", errors=[FieldProblem("scope", "无效")])
        if status not in ("open", "done"):
            raise InvalidInput("status 只能是 open 或 done", errors=[FieldProblem("status", "open 或 done")])
        me = principal.user_id
        params: list = []
        if scope == "cc":
            where, params = "t.assignee_id = ? AND t.kind = 'cc'", [me]
        elif scope == "done" or (scope == "mine" and status == "done"):
            where, params = "t.completed_by = ? AND t.status IN ('completed', 'transferred') AND t.kind <> 'cc'", [me]
        elif scope == "mine":
            where, params = "t.assignee_id = ? AND t.status = 'open'", [me]
        else:
            sc = principal.scope("instance.read")
            if sc is None:
                raise Forbidden("您没有查看本组织待办的权限")
            where = "t.status = 'open'" if status == "open" else "t.status = 'completed'"
            if not sc.everything:
                dept, p1 = sc.org_sql("a.department_id")
                branch, p2 = sc.org_sql("a.branch_id")
                where += f" AND ({dept} OR {branch})"
                params = p1 + p2
        if key:
            where += " AND i.definition_key = ?"
            params.append(key)
        if initiator:
            where += " AND i.initiator_id IN (SELECT id FROM users WHERE username = ?)"
            params.append(initiator)
        arrived_from, arrived_to = (beijing_to_utc(b) if b is not None else None for b in (arrived_from, arrived_to))
        if arrived_from and arrived_to and arrived_from >= arrived_to:
            raise InvalidInput("到达时间的起点应早于终点", errors=[FieldProblem("arrived_to", "应晚于 arrived_from")])
        bounds = [(b, op) for b, op in ((arrived_from, ">="), (arrived_to, "<")) if b is not None]
        if overdue:
            where += " AND t.due_at IS NOT NULL AND t.due_at <= ?"  # as _due_state: due at 24:00 is late at 24:00
        size, page = max(1, min(size, 200)), max(1, min(page, MAX_PAGE))
        # One statement, outside a transaction: the page and (a subquery, evaluated once) the total
        # come from the same snapshot, without BEGIN/ROLLBACK round trips.
        with self.db.autocommit() as sql:
            if overdue:
                params.append(sql.ts(now()))
            for bound, op in bounds:
                where += f" AND t.created_at {op} ?"
                params.append(sql.ts(bound))
            # the count joins only what the filters use: it visits every matching task, not 20
            joins = (" JOIN process_instances i ON i.id = t.instance_id" if key or initiator else "") + \
                (" LEFT JOIN users a ON a.id = t.assignee_id" if scope == "team" else "")
            count = f"SELECT COUNT(*) FROM tasks t{joins} WHERE {where}"
            items, totals = _task_views(sql, where, tuple(params), order="t.id DESC",
                                        limit=f" LIMIT {size} OFFSET {(page - 1) * size}", extra=(count, params))
            if items:
                total = totals[0]
            else:  # no row to carry the total: past the last page (or an empty inbox)
                total = 0 if page == 1 else sql.row(count, params)[0]
        return items, total

    def task_detail(self, *, principal: Principal, task_id: int) -> TaskDetail:
        """The task page: form (with field permissions), data, the application, allowed actions."""
        with self.db.transaction(write=False) as sql:
            user = load_user(sql, principal.username)
            inst_id = sql.row("SELECT instance_id FROM tasks WHERE id = ?", (task_id,))
            if inst_id is None:
                raise NotFound(f"任务 {task_id} 不存在")
            self._check_visible(principal, inst_id[0], sql=sql, missing=f"任务 {task_id} 不存在或您无权查看")
            unit, row = self._load(sql, task_id=task_id)
            node = unit.d.node(row.node_id)
            perms = field_permissions(node)
            spiff_task = unit.spiff_task(row)
            current = dict(spiff_task.data) if spiff_task is not None else {}
            form = data = None
            if node.form_key:
                f = self.definitions.form_for(sql, node.form_key, unit.d.form_refs[node.form_key])
                form = _apply_permissions(f, perms, default="edit")
                props = (f.schema.get("properties") or {})
                if row.data:
                    data = dict(row.data)
                elif node.initiator:  # returned or withdrawn: prefill the last submission
                    last = max((r for r in unit.rows if r.node_id == row.node_id and r.status == "completed"
                                and r.data), key=lambda r: r.id or 0, default=None)
                    data = dict(last.data) if last else {k: current[k] for k in props if k in current}
                else:
                    data = {k: current[k] for k in props if k in current and k != "opinion"}
                data = {k: v for k, v in data.items() if perms.get(k) != "hidden"}
            application = None
            app_data: dict = {}
            start = A.initiator_form(self, unit)
            if start is not None and not node.initiator:
                application = _apply_permissions(start, perms, default="read")
                app_data = {k: v for k, v in current.items()
                            if k in (application.schema.get("properties") or {})}
            slots = [self._view(unit, r) for r in unit.activation_rows(row)]
            targets = []
            if row.status == "open" and not node.initiator and spiff_task is not None \
                    and spiff_task.state == TaskState.READY:
                targets = [NodeRef(t.task_spec.name, unit.d.node(t.task_spec.name).name)
                           for t in unit.return_targets(spiff_task)]
            return TaskDetail(
                task=self._view(unit, row), instance=self._instance_view(sql, unit.inst.id), form=form,
                data=data or {}, application=application, application_data=app_data, field_permissions=perms,
                allowed_actions=allowed_actions(unit, row, user), return_targets=targets,
                approve_method=Method.parse(node.properties.get("approveMethod")).label,
                opinion_required=node.properties.get("opinionRequired") == "true",
                signature_required=node.properties.get("signatureRequired") == "true", slots=slots)

    def instance(self, *, instance_id: int) -> InstanceView:
        """One instance with every task it has had (its history), oldest first."""
        with self.db.transaction(write=False) as sql:
            view = self._instance_view(sql, instance_id)
            view.tasks = _task_views(sql, "t.instance_id = ?", (instance_id,))
            return view

    def visible_instance(self, *, principal: Principal, instance_id: int) -> InstanceView:
        """One instance, if the caller started it, has or had a task in it, or their
        instance.read scope covers the initiator; NotFound otherwise (no existence leak)."""
        self._check_visible(principal, instance_id)
        with self.db.transaction(write=False) as sql:
            view = self._instance_view(sql, instance_id)
            view.tasks = _task_views(sql, "t.instance_id = ?", (instance_id,))
            secret = self.definitions.get(sql, sql.row("SELECT definition_id FROM process_instances WHERE id = ?",
                                                       (instance_id,))[0]).confidential
        for t in view.tasks:  # a secret ballot (民主测评): what each person filled in is theirs alone
            if t.node_id in secret and t.assignee != principal.username:
                t.data = None
        return view

    def instance_variables(self, *, principal: Principal, instance_id: int) -> InstanceVariables:
        """The monitor's process data of an instance, masked (engine/runtime/monitor.py)."""
        return monitor.instance_variables(self, principal, instance_id)

    def instance_chain(self, *, principal: Principal, instance_id: int) -> ChainStatus:
        """Whether an instance's audit events are intact and linked (engine/runtime/monitor.py)."""
        return monitor.instance_chain(self, principal, instance_id)

    def list_instances(self, *, principal: Principal, status: str | None = None, key: str | None = None,
                       mine: bool = False, q: str | None = None, initiator: str | None = None,
                       started_from: datetime | None = None, started_to: datetime | None = None,
                       page: int = 1, size: int = 20) -> tuple[list[InstanceView], int]:
        """Instances the caller may see (filtered in SQL), newest first, without their tasks.
        `q` matches the title or business key; `started_from`/`started_to` bound the start time."""
        where, params = _visible(principal)
        if q:
            where += " AND (i.title LIKE ? OR i.business_key LIKE ?)"
            like = "%" + q.replace("%", "").replace("_", "") + "%"
            params += [like, like]
        if initiator:
            where += " AND u.username = ?"
            params.append(initiator)
        if mine:
            where += " AND i.initiator_id = ?"
            params.append(principal.user_id)
        if status:
            where += " AND i.status = ?"
            params.append(status)
        if key:
            where += " AND i.definition_key = ?"
            params.append(key)
        size, page = max(1, min(size, 200)), max(1, min(page, MAX_PAGE))
        with self.db.transaction(write=False) as sql:
            for bound, op in ((started_from, ">="), (started_to, "<")):
                if bound is not None:
                    where += f" AND i.started_at {op} ?"
                    params.append(sql.ts(beijing_to_utc(bound)))  # a time without zone is Beijing time
            total = sql.row(f"SELECT COUNT(*) FROM process_instances i JOIN users u ON u.id = i.initiator_id "
                            f"WHERE {where}", params)[0]
            rows = sql.rows(f"{_INSTANCE_VIEW} WHERE {where} ORDER BY i.id DESC "
                            f"LIMIT {size} OFFSET {(page - 1) * size}", params)
        return [_instance_view(r) for r in rows], total

    def history(self, *, principal: Principal, instance_id: int) -> list[HistoryEntry]:
        """What happened to an instance, from its audit events (form contents left out)."""
        self._check_visible(principal, instance_id)
        with self.db.transaction(write=False) as sql:
            rows = sql.rows("SELECT e.seq, e.ts, e.action, a.username, a.display_name, o.display_name, e.task_id, "
                            "e.payload FROM audit_events e LEFT JOIN users a ON a.id = e.actor_id "
                            "LEFT JOIN users o ON o.id = e.on_behalf_of WHERE e.instance_id = ? ORDER BY e.seq",
                            (instance_id,))
            hidden_files = self._secret_files(sql, principal, instance_id)
        out = []
        for seq, ts, action, actor, actor_name, obo, task_id, payload in rows:
            p = dict(Sql.from_json(payload) or {})
            for secret in ("data", "edits", "body"):
                p.pop(secret, None)
            if action == "instance.attach" and p.get("attachment_id") in hidden_files:
                p = {}  # a file added at a confidential node by someone else: that one was added, not which
            out.append(HistoryEntry(seq, _iso(Sql.from_ts(ts)), action, actor, actor_name, obo, task_id,
                                    p.pop("node", None), p.pop("node_name", None),
                                    p.pop("comment", None) or p.get("reason"), p))
        return out

    def diagram(self, *, principal: Principal, instance_id: int) -> DiagramView:
        """The BPMN XML and each node's state, for highlighting the path taken."""
        self._check_visible(principal, instance_id)
        with self.db.transaction(write=False) as sql:
            unit, _ = self._load(sql, instance_id=instance_id)
            xml = sql.row("SELECT bpmn_xml FROM process_definitions WHERE id = ?", (unit.d.id,))[0]
            states: dict[str, NodeState] = {}
            done: list[tuple[float, str]] = []
            for t in unit.workflow.get_tasks():
                spec = t.task_spec
                name = getattr(spec, "bpmn_id", None) or spec.name
                if not name or name.startswith("Root") or spec.name in ("Start", "End") or name.endswith(".EndJoin"):
                    continue
                s = states.setdefault(name, NodeState(name, getattr(spec, "bpmn_name", None) or name, "none", 0, 0, []))
                if t.state == TaskState.COMPLETED:
                    s.completed += 1
                    if s.state == "none":
                        s.state = "completed"
                    done.append((t.last_state_change, name))
                elif t.state == TaskState.ERROR or (t.state == TaskState.READY and unit.inst.status == "error"
                                                     and services.is_service(spec)):
                    s.state = "error"  # the instance stopped here: a service call failed
                elif t.state in (TaskState.READY, TaskState.STARTED):
                    if s.state != "error":
                        s.state = "active"
                elif t.state == TaskState.WAITING and s.state not in ("active", "error"):
                    s.state = "waiting"
            # A 退回 resets the workflow to the node, so the tree holds only its latest run: the
            # approver slots (one set per activation) tell how many times it ran.
            activations: dict[str, set[tuple[str, int]]] = {}
            latest: dict[str, tuple[str, int]] = {}
            slots_of: dict[tuple[str, int], list] = {}  # an activation's approver slots
            for r in unit.rows:
                if r.kind == "cc":
                    continue
                activation = (r.spiff_task_id, r.activation)
                activations.setdefault(r.node_id, set()).add(activation)
                latest[r.node_id] = activation  # rows come in id order
                slots_of.setdefault(activation, []).append(r)
                if r.undecided and r.node_id in states:
                    states[r.node_id].open_slots += 1
                    states[r.node_id].assignees.append(unit.display_name(r.assignee_id))
            for name, s in states.items():
                s.runs = max(len(activations.get(name, ())), s.completed + (s.state in ("active", "error")))
                if name in latest:
                    # a cancelled slot was not needed (a 或签 settled by another, a round rejected or
                    # withdrawn, a 减签): the badge counts who decided and who still may
                    slots = [r for r in slots_of[latest[name]] if r.status in ("open", "waiting", "completed")]
                    s.tasks_total = len(slots)
                    s.tasks_done = sum(r.status == "completed" for r in slots)
            path = [n for _, n in sorted(done)]
        return DiagramView(unit.inst.id, unit.d.key, unit.d.version, xml,
                           # a node a 退回 went back past shows as not reached, with its earlier runs
                           [s for s in states.values() if s.state != "none" or s.runs], path)

    # -- internals ------------------------------------------------------------------------
    @contextmanager
    def _unit(self, *, username: str, need: str, task_id: int | None = None, instance_id: int | None = None,
              client: ClientInfo | None = None, principal: Principal | None = None):
        """Lock the instance (found by task or id), yield (unit, user, row), save it all on exit."""
        with self.db.transaction() as sql:
            user = _actor(sql, username, need, principal)
            client = client or (principal.client if principal else None)
            unit, row = self._load(sql, task_id=task_id, instance_id=instance_id, lock=True)
            unit.knows(user)
            unit.client = (client or ClientInfo()).audit()
            yield unit, user, row
            if unit.replayed is not None:
                self.states.put(unit.inst.id, unit.inst.version, unit.d.id, unit.workflow)  # untouched
                return
            self._save(unit)
        # committed: the workflow in memory is the state just stored
        self.states.put(unit.inst.id, unit.inst.version + 1, unit.d.id, unit.workflow)

    def _save(self, unit: Unit) -> None:
        """The instance's new state (under its row lock) and the unit's audit events."""
        sql = unit.sql
        # Cannot touch 0 rows under the row lock; the version check is the second guard.
        sql.defer("UPDATE process_instances SET state = ?, status = ?, title = ?, ended_at = ?, "
                  "version = ? WHERE id = ? AND version = ?",
                  (dump_state(unit.workflow), unit.inst.status, unit.inst.title,
                   sql.ts(unit.inst.ended_at), unit.inst.version + 1, unit.inst.id, unit.inst.version),
                  expect=1, error=Conflict("该流程刚被其他人处理，请刷新后重试"))
        self._log(unit)

    # -- timers -------------------------------------------------------------------------------
    def fire_timers(self, *, limit: int = 1000) -> int:
        """Fire the BPMN timers that are due, one instance per transaction; returns how many
        instances moved. Safe to run from any number of processes at once."""
        with self.db.autocommit() as sql:  # a read first: most ticks find nothing, and take no write lock
            if not timers.any_due(sql, now()):
                return 0
        moved, busy = 0, []
        for _ in range(limit):
            outcome = self._fire_next(busy)
            if outcome is None:
                break
            moved += outcome
        return moved

    def audit_checkpoint(self, *, force: bool = False) -> dict | None:
        """Sign a checkpoint of the audit log when one is due (or `force`), for the scheduler's tick;
        a missing key is logged (every 10 minutes), not raised, so the tick's other work goes on."""
        try:
            return checkpoints.write(self.db, self.settings, force=force, webhooks=self.webhooks)
        except Conflict as exc:
            if time.monotonic() - self._checkpoint_warned >= 600:
                self._checkpoint_warned = time.monotonic()
                log.error("audit checkpoint not written: %s", exc.message)
            return None

    def fire_schedules(self, *, limit: int = 1000) -> int:
        """Start the instances of timer start events that are due (engine/scheduler/schedules.py);
        returns how many started. Safe to run from any number of processes at once."""
        at = now()
        self._plan_schedules(at)
        started = 0
        for _ in range(limit):
            with self.db.transaction() as sql:
                due = schedules.claim(sql, at)
                if due is None:
                    break
                did, meta = sql.row("SELECT id, settings FROM process_definitions WHERE key = ? AND "
                                    "status = 'published' ORDER BY version DESC LIMIT 1", (due.key,))
                sched = (Sql.from_json(meta) or {}).get("schedule") or {}
                who, where = schedules.initiator(sql, sched, due.org_id)
                d = self.definitions.get(sql, did)
                timing = schedules.timing(schedules.timer_start(d.spec), d.script_engine)
            period = schedules.period_of(due.at, timing.every)
            error = iid = None
            if who is None:
                error = f"{where.get('org_name', due.key)} 没有 {sched.get('initiator')}，本期未发起"
            else:
                try:
                    iid = self.start(
                        key=due.key, username=who, variables={**(sched.get("data") or {}), **where, "period": period},
                        title=f"{where.get('org_name', '')}{period}{d.name}"[:MAX_TITLE],
                        business_key=f"{due.key}:{where.get('org_code', '-')}:{due.at.date().isoformat()}"
                        [:MAX_BUSINESS_KEY],
                        idempotency_key=f"schedule-{due.id}-{due.at.isoformat()}").instance_id
                    started += 1
                except EngineError as exc:
                    error = f"{where.get('org_name', due.key)}：{exc}"
            with self.db.transaction() as sql:
                schedules.advance(sql, due, timing, instance_id=iid, error=error, at=now())
                if error:
                    append_events(sql, [NewEvent("schedule.skipped", None, None, None, None, {
                        "definition": due.key, "org_code": where.get("org_code"), "period": period,
                        "reason": error})], hash_alg=self.settings.audit_hash)
        return started

    def _plan_schedules(self, at: datetime) -> None:
        """Rows for the units a scheduled process names that have none yet (every minute at most)."""
        if self._planned > time.monotonic() - schedules.REFRESH_SECONDS:
            return
        self._planned = time.monotonic()
        with self.db.transaction() as sql:
            latest = sql.rows("SELECT d.id, d.key, d.settings FROM process_definitions d WHERE d.status = 'published' "
                              "AND d.version = (SELECT max(version) FROM process_definitions e WHERE e.key = d.key "
                              "AND e.status = 'published')")
            for did, key, meta in latest:
                meta = Sql.from_json(meta) or {}
                if not meta.get("schedule"):
                    continue
                d = self.definitions.get(sql, did)
                schedules.plan(sql, key, meta, schedules.timing(schedules.timer_start(d.spec), d.script_engine), at)

    def fire_job(self, job_id: int) -> int | None:
        """Fire one queued timer job (a worker's task): 1 if its instance moved, 0 if not, None when
        the job is not due any more (fired already, or moved on by an action), BUSY while someone
        is acting on its instance (try again in a moment). Safe to run twice."""
        busy: list[int] = []
        moved = self._fire_next(busy, job_id=job_id)
        return BUSY if busy else moved

    def queue_due(self, *, limit: int = 1000, hold_seconds: float = 60.0) -> list[int]:
        """The due timer jobs nobody has queued in the last `hold_seconds`, marked as queued
        (djflow beat's tick hands each to a worker; one lost with its worker is queued again)."""
        with self.db.transaction() as sql:
            return timers.mark_queued(sql, now(), hold_seconds=hold_seconds, limit=limit)

    def _fire_next(self, busy: list[int], *, job_id: int | None = None) -> int | None:
        """Claim the most overdue job (or `job_id`) and run it: fire a timer job's instance, or make a
        service job's call. 1 if the instance moved, 0 if not, None when nothing is due. A timer job
        whose instance someone is acting on right now goes to `busy` and waits for the next tick (that
        action rewrites the job anyway)."""
        at = now()
        call = unit = None
        with self.db.transaction() as sql:
            job = timers.claim(sql, at, skip=busy, job_id=job_id)
            if job is None:
                return None
            if job[2] == services.KIND:  # called after this commit, with no lock held
                call = services.lease(sql, job[0], at, seconds=self.settings.service_timeout_seconds + 30,
                                      worker=_WORKER)
            elif job[2] == sla.KIND:
                unit = self._fire_sla(sql, job, busy, at)
            else:
                unit = self._fire_timer(sql, job, busy, at)
        if call is not None:
            return self._service_call(call)
        if unit is None:
            return 0
        self.states.put(unit.inst.id, unit.inst.version + 1, unit.d.id, unit.workflow)
        return 1

    def _job_instance(self, sql: Sql, job: tuple, busy: list[int]) -> Unit | None:
        """A claimed job's instance, locked; None (and the job in `busy`) while someone acts on it."""
        # The instance before anything else, without waiting: an action holds the instance's lock
        # and then rewrites this job, so waiting here with the job locked could deadlock with it.
        if sql.pg and sql.row("SELECT id FROM process_instances WHERE id = ? FOR UPDATE SKIP LOCKED",
                              (job[1],)) is None:
            busy.append(job[0])
            return None
        return self._load(sql, instance_id=job[1], lock=True)[0]

    def _fire_timer(self, sql: Sql, job: tuple, busy: list[int], at: datetime) -> Unit | None:
        """Fire the due timers of a claimed job's instance; the unit when it moved (None: not)."""
        unit = self._job_instance(sql, job, busy)
        if unit is None:
            return None
        if unit.inst.status != "running":
            timers.close(sql, job[0], at)
            return None
        due = [(t, timers.snapshot(t)) for when, t in timers.waiting_timers(unit.workflow) if when <= at]
        before = {r.id for r in unit.rows}
        unit.workflow.refresh_timers()
        changed = [(t, was) for t, was in due if timers.snapshot(t) != was]
        fired = [t for t, was in changed if not timers.cycle_ended(was)]
        if not changed:  # Spiff's clock says not yet
            timers.retry_soon(sql, job[0], at)
            return None
        unit.run()
        unit.settle()
        unit.end_if_completed()
        if fired:
            unit.event("timer.fired", None, None, None, {"timers": [timers.describe(t) for t in fired],
                                                         "job": job[0]})
        else:  # only cycles that had run their repetitions were closed
            unit.event("timer.ended", None, None, None, {"timers": [timers.describe(t) for t, _ in changed],
                                                         "job": job[0]})
        self._write(unit, before)
        self._save(unit)
        return unit

    def _fire_sla(self, sql: Sql, job: tuple, busy: list[int], at: datetime) -> Unit | None:
        """The next step of an overdue slot's timeout policy (engine/scheduler/sla.py)."""
        unit = self._job_instance(sql, job, busy)
        if unit is None:
            return None
        ref, step = sla.job_state(sql, job[0])
        row = next((r for r in unit.rows if str(r.id) == ref), None)
        if unit.inst.status != "running" or row is None or row.status != "open":
            timers.close(sql, job[0], at)
            return None
        node = unit.d.node(row.node_id)
        timeout = node.properties.get("timeout")
        policy = sla.parse(timeout) if timeout else sla.Policy(1, sla.DEFAULT_EVERY, None, None)
        before = {r.id for r in unit.rows}
        what = {"node": node.node_id, "node_name": node.name, "due_at": _iso(row.due_at), "job": job[0]}
        escalated = bool(row.note and row.note.get("kind") == "escalated")
        if step == sla.SOON:
            unit.notify(row.assignee_id, "task.due_soon", f"即将到期：{unit.inst.title}「{row.node_name}」",
                        f"请于 {_local(row.due_at)} 前办理", row)
            unit.event("sla.due_soon", None, row.assignee_id, row, what)
            sla.next_step(sql, job[0], 0, row.due_at, at)
        elif step < policy.reminders:
            unit.notify(row.assignee_id, "task.overdue", f"超期提醒：{unit.inst.title}「{row.node_name}」",
                        f"已超过办理期限（{_local(row.due_at)}），请尽快办理"
                        + (f"（第 {step + 1}/{policy.reminders} 次提醒）" if timeout else ""), row)
            unit.event("sla.remind", None, row.assignee_id, row, {**what, "reminder": step + 1,
                                                                  "of": policy.reminders})
            if step + 1 >= policy.reminders and policy.then is None:
                timers.close(sql, job[0], at)  # nothing follows the last reminder
            else:
                sla.next_step(sql, job[0], step + 1, unit.calendar().due(policy.every, at), at)
        elif policy.then in ("auto_approve", "auto_reject") or (policy.then == "escalate" and not escalated):
            timers.close(sql, job[0], at)
            if policy.then == "escalate":
                if not self._escalate(unit, row, node, policy):
                    return None
            else:
                outcome = "approved" if policy.then == "auto_approve" else "rejected"
                reason = f"超过办理期限（{_local(row.due_at)}）自动{'同意' if outcome == 'approved' else '驳回'}"
                row.close("completed", at=at, by=None, outcome=outcome, comment=reason)
                row.note = {"kind": "auto", "rule": "timeout", "reason": reason}
                unit.event("sla.timeout", None, row.assignee_id, row, {**what, "policy": policy.then,
                                                                       "reason": reason})
                unit.settle()
                unit.end_if_completed()
        else:
            timers.close(sql, job[0], at)
            return None
        self._write(unit, before)
        self._save(unit)
        return unit

    def _escalate(self, unit: Unit, row: TaskRow, node, policy) -> bool:
        """Transfer an overdue slot to the first person of the escalation rule (not its holder)."""
        from engine.org.rules import parse_rule

        people = [p for p in unit.resolver(unit.spiff_task(row).data).resolve(parse_rule(policy.escalation_rule))
                  if p.id != row.assignee_id]
        if not people:
            unit.event("sla.timeout", None, row.assignee_id, row, {
                "node": node.node_id, "node_name": node.name, "policy": "escalate", "to": None,
                "reason": f"升级规则 {policy.escalation_rule} 没有找到处理人，任务留在原处"})
            self._write(unit, {r.id for r in unit.rows})
            self._save(unit)
            return False
        target = people[0]
        reason = f"超过办理期限（{_local(row.due_at)}）未办理，升级至 {target.display_name}"
        row.close("transferred", at=unit.at, by=None, outcome="escalated", comment=reason)
        new = unit.add(row.sibling(target.id, due_at=unit.due_at(node),
                                   note={"kind": "escalated", "from": row.assignee_id, "reason": reason}))
        unit.event("sla.timeout", None, row.assignee_id, row, {
            "node": node.node_id, "node_name": node.name, "policy": "escalate", "to": target.id, "reason": reason})
        unit.notify(target.id, "task.assigned", f"超时升级：{unit.inst.title}「{row.node_name}」", reason, new)
        return True

    def _service_call(self, call: services.Call) -> int:
        """Make a leased http/request call, then record its outcome under the instance's lock:
        move on (1), retry later after back-off, or put the instance in error (0)."""
        failure = result = None
        try:
            result = services.call_http(call.payload.get("params") or {}, self.settings,
                                        idempotency_key=f"djflow-{call.job_id}-{call.attempt}")
        except services.ServiceFailure as exc:
            failure = exc
        with self.db.transaction() as sql:
            unit, _row = self._load(sql, instance_id=call.instance_id, lock=True)
            at = unit.at
            job = services.current(sql, call)
            if job is None or job[0] != "waiting" or job[1] != call.attempt or unit.inst.status != "running":
                return 0  # moved on meanwhile (an action, a cancel, a newer lease): the outcome is dropped
            t = unit.workflow.get_task_from_id(UUID(call.ref))
            if t is None or t.state != TaskState.READY:
                timers.close(sql, call.job_id, at)
                return 0
            before = {r.id for r in unit.rows}
            what = {**services.describe(t), "job": call.job_id, "attempt": call.attempt}
            if failure is None:
                services.complete(t, result)
                unit.run()
                unit.settle()
                unit.end_if_completed()
                unit.event("service.completed", None, None, None, {**what, "status": result["status"]})
                moved = 1
            elif failure.retry and call.attempt <= int(call.payload.get("retries") or 0):
                due = at + timedelta(seconds=services.backoff(call))
                services.again_at(sql, call, due, failure.reason, at)
                unit.event("service.retry", None, None, None, {**what, "reason": failure.reason,
                                                                "status": failure.status, "next_at": due.isoformat()})
                moved = 0
            else:
                services.give_up(sql, call, failure.reason, at)
                unit.inst.status = "error"
                unit.event("service.failed", None, None, None, {**what, "reason": failure.reason,
                                                                 "status": failure.status})
                unit.notify(unit.inst.initiator.id, "instance.error", f"流程出错：{unit.inst.title}",
                            f"服务任务「{what['name'] or what['node']}」失败：{failure.reason}。已通知管理员处理。")
                moved = 0
            self._write(unit, before)
            self._save(unit)
        self.states.put(unit.inst.id, unit.inst.version + 1, unit.d.id, unit.workflow)
        return moved

    def retry(self, *, principal: Principal, instance_id: int) -> ActResult:
        """An administrator's retry of an instance in error: its failed service calls run again."""
        principal.require("instance.admin")
        self._check_visible(principal, instance_id, perm="instance.admin")
        with self._unit(instance_id=instance_id, username=principal.username, need="instance.admin",
                        client=principal.client) as (unit, user, _):
            if unit.inst.status != "error":
                raise Conflict(f"流程实例 {instance_id} 没有出错（{unit.inst.status}），无需重试")
            errors = services.last_errors(unit.sql, instance_id)
            jobs = services.rearm(unit.sql, instance_id, unit.at)
            unit.inst.status = "running"
            unit.event("instance.retry", user.id, None, None, {"jobs": jobs, "errors": errors})
            self._write(unit, {r.id for r in unit.rows})
            return ActResult(unit.inst.id, unit.inst.status, [])

    def _load(self, sql: Sql, *, task_id: int | None = None, instance_id: int | None = None,
              lock: bool = False) -> tuple[Unit, TaskRow | None]:
        if task_id is not None:
            found = sql.row(f"SELECT {INSTANCE_COLS} FROM process_instances i JOIN tasks t ON t.instance_id = i.id "
                            "JOIN users u ON u.id = i.initiator_id WHERE t.id = ?"
                            + (sql.for_update("i") if lock else ""), (task_id,))
            missing = f"任务 {task_id} 不存在"
        else:
            found = sql.row(f"SELECT {INSTANCE_COLS} FROM process_instances i JOIN users u ON u.id = i.initiator_id "
                            "WHERE i.id = ?" + (sql.for_update("i") if lock else ""), (instance_id,))
            missing = f"流程实例 {instance_id} 不存在"
        if found is None:
            raise NotFound(missing)
        inst = InstanceRow(*found[:9], initiator=User(*found[9:]))
        rows = [TaskRow.from_db(r) for r in sql.rows(
            f"SELECT {TASK_COLS} FROM tasks WHERE instance_id = ? ORDER BY id", (inst.id,))]
        d = self.definitions.get(sql, inst.definition_id)
        workflow = self.states.take(inst.id, inst.version, d.id) if lock else None
        if workflow is None:
            workflow = load_state(inst.state, inst.serializer_version, spec=d.spec,
                                  subprocess_specs=d.subprocess_specs, script_engine=d.script_engine)
        row = next((r for r in rows if r.id == task_id), None) if task_id is not None else None
        unit = Unit(sql, inst, d, workflow, rows, settings=self.settings)
        unit.waiting_before = {r.id for r in rows if r.status == "waiting"}
        return unit, row

    def _write(self, unit: Unit, before: set | list) -> list[TaskRow]:
        """Insert new slots (parents first), update changed ones, then notifications and events."""
        sql, at = unit.sql, unit.at
        if unit.inst.status == "running":
            unit.notify_assigned()
        created = []
        for r in unit.rows:
            if r.id is None:
                r.insert(sql, unit.inst.id, at)
                created.append(r)
        for r in unit.rows:  # deferred (engine/sql.py): after the inserts, which need their ids back
            if r.dirty:
                r.update(sql)
        for e, r in unit.event_rows:
            e.task_id = r.id
        if unit.decided:
            if unit.inst.events:
                unit.inst.events[0].payload = {**(unit.inst.events[0].payload or {}), "decided": unit.decided}
            else:
                unit.inst.events.append(NewEvent("node.decided", None, None, None, None, {"decided": unit.decided}))
        for e in unit.inst.events:
            e.instance_id = unit.inst.id
            if unit.client:
                e.payload = {**(e.payload or {}), **unit.client}
        if unit.inst.events and unit.inst.events[0].action.startswith("task."):
            unit.inst.events[0].payload["instance_status"] = unit.inst.status
        if unit.notices:
            sql.defer_many("INSERT INTO notifications (user_id, kind, title, body, instance_id, task_id, created_at) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)",
                     [(n.user_id, n.kind, n.title[:300], n.body, unit.inst.id, n.task.id if n.task else None,
                       sql.ts(at)) for n in unit.notices])
            out = [{"kind": n.kind, "title": n.title[:300], "body": n.body, "instance_id": unit.inst.id,
                    "task_id": n.task.id if n.task else None, "user_id": n.user_id,
                    "user": {"username": unit.username(n.user_id), "display_name": unit.display_name(n.user_id)}}
                   for n in unit.notices]
            self.webhooks.queue(sql, out, at)
            self.mailer.queue(sql, out, at)
        if unit.d.has_timers:
            timers.sync(sql, unit.inst.id, unit.workflow, at)
        if unit.d.has_services:
            services.sync(sql, unit.inst.id, unit.workflow, at, self.settings)
        if unit.d.has_sla:
            sla.sync(sql, unit.inst.id, unit.rows, at)
        unit.written = True
        return created

    def _log(self, unit: Unit) -> None:
        """Append the unit's audit events, last, since they lock the log's head row, which every
        writer needs, until the transaction ends (on PostgreSQL they go into the closing statement,
        engine/sql.py, wherever they are appended)."""
        if unit.written:
            append_events(unit.sql, unit.inst.events, hash_alg=self.settings.audit_hash)

    def _view(self, unit: Unit, r: TaskRow) -> TaskView:
        return _task_view(r, unit.inst.title, unit.d.key, unit.username(r.assignee_id),
                          unit.display_name(r.assignee_id) if r.assignee_id else None,
                          unit.username(r.completed_by), unit.username(r.on_behalf_of_id),
                          unit.display_name(r.on_behalf_of_id) if r.on_behalf_of_id else None,
                          unit.display_name(r.completed_by) if r.completed_by else None)

    def _instance_view(self, sql: Sql, instance_id: int) -> InstanceView:
        r = sql.row(f"{_INSTANCE_VIEW} WHERE i.id = ?", (instance_id,))
        if r is None:
            raise NotFound(f"流程实例 {instance_id} 不存在")
        return _instance_view(r)

    def _check_visible(self, principal: Principal, instance_id: int, *, sql: Sql | None = None,
                       perm: str = "instance.read", missing: str | None = None) -> None:
        where, params = _visible(principal, perm)
        q = (f"SELECT 1 FROM process_instances i JOIN users u ON u.id = i.initiator_id WHERE i.id = ? AND {where}",
             (instance_id, *params))
        if sql is not None:
            found = sql.row(*q)
        else:
            with self.db.transaction(write=False) as s:
                found = s.row(*q)
        if found is None:
            raise NotFound(missing or f"流程实例 {instance_id} 不存在或您无权查看")


def _actor(sql: Sql, username: str, need: str, principal: Principal | None) -> User:
    """The acting user. A request's principal (loaded and checked for this request) saves the two
    lookups `load_user` makes; the CLI and other callers name the user."""
    if principal is None or principal.username != username:
        return load_user(sql, username, need=need)
    if not principal.has(need):
        raise Forbidden(f"{principal.display_name} 没有权限：{PERMISSIONS[need]}")
    return User(principal.user_id, principal.username, principal.display_name, principal.department_id,
                principal.branch_id)


def initiator_facts(sql: Sql, user_id: int) -> dict:
    """What a process may need to know of the person starting it (its guards: 年满十八岁, which
    branch, which 政治面貌), taken from the person's record at the start, never from what they type."""
    r = sql.row("SELECT u.username, u.display_name, u.gender, u.birth_date, u.party_status, u.party_status_since, "
                "b.code, b.name, d.code, d.name FROM users u LEFT JOIN org_units b ON b.id = u.branch_id "
                "LEFT JOIN org_units d ON d.id = u.department_id WHERE u.id = ?", (user_id,))
    return {"username": r[0], "display_name": r[1], "gender": r[2], "birth_date": _iso_date(r[3]),
            "party_status": r[4], "party_status_since": _iso_date(r[5]),
            "branch": {"code": r[6], "name": r[7]} if r[6] else None,
            "department": {"code": r[8], "name": r[9]} if r[8] else None}


def _iso_date(v) -> str | None:
    return None if v is None else (v if isinstance(v, str) else v.isoformat())[:10]


def _digest(value: dict) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def _replayed(sql: Sql, user: User, key: str | None, request: str | None) -> ActResult | None:
    if key is None:
        return None
    if not 0 < len(key) <= MAX_IDEMPOTENCY_KEY:
        raise InvalidInput(f"Idempotency-Key 应为 1 到 {MAX_IDEMPOTENCY_KEY} 个字符",
                           errors=[FieldProblem("Idempotency-Key", "长度无效")])
    if sql.pg:  # a concurrent retry with the same key waits here for the first to commit (SQLite: BEGIN IMMEDIATE)
        lock = int.from_bytes(hashlib.sha256(f"{user.id}:{key}".encode()).digest()[:8], "big", signed=True)
        sql.row("SELECT pg_advisory_xact_lock(?)", (lock,))
    found = sql.row("SELECT request_hash, response FROM idempotency_keys WHERE user_id = ? AND key = ?",
                    (user.id, key))
    if found is None:
        return None
    if found[0] != request:
        raise InvalidInput("这个 Idempotency-Key 已用于另一个请求", errors=[FieldProblem("Idempotency-Key", "已被使用")])
    r = Sql.from_json(found[1])
    return ActResult(r["instance_id"], r["instance_status"], [TaskView(**t) for t in r["new_tasks"]])


def _remember(sql: Sql, user: User, key: str | None, request: str | None, result: ActResult) -> None:
    if key is not None:
        sql.defer("INSERT INTO idempotency_keys (user_id, key, request_hash, response, created_at) VALUES (?, ?, ?, ?, ?)",
                (user.id, key, request, sql.json(asdict(result)), sql.ts(now())))


def _apply_permissions(form, perms: dict[str, str], *, default: str) -> FormView:
    """The form as this node shows it: hidden fields removed, read-only ones marked readOnly."""
    schema = json.loads(json.dumps(form.schema))
    ui = json.loads(json.dumps(form.ui_schema or {}))
    props = schema.get("properties") or {}
    for name in list(props):
        perm = perms.get(name, default)
        if perm == "hidden":
            props.pop(name)
            ui.pop(name, None)
            if "required" in schema:
                schema["required"] = [r for r in schema["required"] if r != name]
        elif perm == "read":
            props[name] = {**props[name], "readOnly": True}
            ui[name] = {**ui.get(name, {}), "ui:readonly": True}
    if ui.get("ui:order"):
        ui["ui:order"] = [n for n in ui["ui:order"] if n in props or n == "*"]
    return FormView(form.key, form.version, form.title, schema, ui)


def _visible(principal: Principal, perm: str = "instance.read") -> tuple[str, list]:
    """SQL (over `process_instances i JOIN users u` on the initiator) for what `principal` may see."""
    mine = ("(i.initiator_id = ? OR EXISTS (SELECT 1 FROM tasks t WHERE t.instance_id = i.id AND "
            "(t.assignee_id = ? OR t.completed_by = ? OR t.on_behalf_of_id = ?)))")
    params: list = [principal.user_id] * 4
    scope = principal.scope(perm)
    if perm != "instance.read":
        if scope is None:
            return "1=0", []
        mine, params = "1=0", []
    if scope is None or scope.only_self:
        return mine, params
    if scope.everything:
        return "1=1", []
    dept, p1 = scope.org_sql("u.department_id")
    branch, p2 = scope.org_sql("u.branch_id")
    return f"({mine} OR {dept} OR {branch})", params + p1 + p2


def _iso(v) -> str | None:
    return v.isoformat() if v else None


def _instance_view(r: tuple) -> InstanceView:
    return InstanceView(*r[:7], started_at=_iso(Sql.from_ts(r[7])), ended_at=_iso(Sql.from_ts(r[8])),
                        business_key=r[9])


SENSITIVE_PURPOSES = ("letter",)  # attachments that carry the instance's person's ID number in clear
_ATTACHMENT_SQL = ("SELECT a.id, a.instance_id, a.filename, a.content_type, a.size, a.sha256, a.purpose, u.username, "
                   "u.display_name, a.created_at FROM attachments a JOIN users u ON u.id = a.uploaded_by")


def _attachment_view(r: tuple) -> AttachmentView:
    return AttachmentView(*r[:9], created_at=_iso(Sql.from_ts(r[9])))


def _task_views(sql: Sql, where: str, params: tuple, *, order: str = "t.id", limit: str = "",
                extra: tuple[str, list] | None = None):
    """TaskViews of the tasks `where` selects. With `extra` (a one-value subquery and its parameters),
    also that value for each row: (views, values)."""
    rows = sql.rows(
        f"SELECT {', '.join('t.' + c for c in TASK_COLS.split(', '))}, i.title, i.definition_key, "
        "a.username, a.display_name, b.username, o.username, o.display_name, b.display_name"
        + (f", ({extra[0]})" if extra else "") + " FROM tasks t "
        "JOIN process_instances i ON i.id = t.instance_id LEFT JOIN users a ON a.id = t.assignee_id "
        "LEFT JOIN users b ON b.id = t.completed_by LEFT JOIN users o ON o.id = t.on_behalf_of_id "
        f"WHERE {where} ORDER BY {order}{limit}", (*extra[1], *params) if extra else params)
    n = len(TASK_COLS.split(", "))
    views = [_task_view(TaskRow.from_db(r[:n]), *r[n:n + 8]) for r in rows]
    return (views, [r[-1] for r in rows]) if extra else views


# A task due within this long is "due soon" (临近到期) in the inbox.
DUE_SOON = timedelta(hours=24)


def _due_state(t: TaskRow, at: datetime) -> str | None:
    if t.due_at is None or not t.undecided:
        return None
    left = as_utc(t.due_at) - at
    return "overdue" if left <= timedelta(0) else "due_soon" if left <= DUE_SOON else "on_time"


def _task_view(t: TaskRow, title: str, key: str, assignee: str | None, assignee_name: str | None,
               completed_by: str | None, on_behalf_of: str | None = None, on_behalf_of_name: str | None = None,
               completed_by_name: str | None = None) -> TaskView:
    return TaskView(id=t.id, instance_id=t.instance_id, instance_title=title, definition_key=key,
                    node_id=t.node_id, node_name=t.node_name, form_key=t.form_key, assignee=assignee,
                    assignee_name=assignee_name, status=t.status, outcome=t.outcome, comment=t.comment,
                    created_at=_iso(t.created_at), completed_at=_iso(t.completed_at), completed_by=completed_by,
                    data=t.data, on_behalf_of=on_behalf_of, on_behalf_of_name=on_behalf_of_name, kind=t.kind,
                    origin=t.origin, parent_id=t.parent_id, note=t.note, activation=t.activation, slot=t.slot,
                    due_at=_iso(t.due_at), urged_at=_iso(t.urged_at), completed_by_name=completed_by_name,
                    due_state=_due_state(t, now()))



def _local(v: datetime | None) -> str:
    """A time as people here read it: Beijing time, to the minute."""
    return as_utc(v).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if v else ""
