"""The rows an action works on: users, instances and approver slots, as plain objects.

Statements go through engine/sql.py (the hot path does not use the ORM; see there why)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from engine.audit import NewEvent
from engine.errors import Forbidden, NotFound
from engine.identity.permissions import PERMISSIONS
from engine.org.rules import Person
from engine.sql import Sql

TASK_COLS = ("id, instance_id, spiff_task_id, node_id, node_name, lane, form_key, form_version, assignee_id, "
             "candidate_rule, status, slot, created_at, completed_at, completed_by, outcome, comment, data, "
             "on_behalf_of_id, kind, origin, parent_id, note, urged_at, signature_id, activation, due_at")
_INSERT = (f"INSERT INTO tasks ({TASK_COLS.removeprefix('id, ')}) VALUES ({', '.join('?' * 26)}) RETURNING id")
_UPDATE = ("UPDATE tasks SET assignee_id = ?, status = ?, outcome = ?, comment = ?, data = ?, completed_at = ?, "
           "completed_by = ?, note = ?, urged_at = ?, signature_id = ? WHERE id = ?")


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
    """A `tasks` row; `dirty` rows are written back, rows without an id are inserted."""

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
    kind: str = "approve"
    origin: str | None = None
    parent_id: int | None = None
    note: dict | None = None
    urged_at: datetime | None = None
    signature_id: int | None = None
    activation: int = 1
    due_at: datetime | None = None
    dirty: bool = False
    # Set on rows created in this unit of work whose parent is created in it too.
    parent: TaskRow | None = None

    @classmethod
    def from_db(cls, row: tuple) -> TaskRow:
        r = list(row)
        for i in (12, 13, 23, 26):
            r[i] = Sql.from_ts(r[i])
        r[17], r[22] = Sql.from_json(r[17]), Sql.from_json(r[22])
        return cls(*r)

    def sibling(self, assignee_id: int | None, status: str = "open", **changes) -> TaskRow:
        """A new slot of the same node activation, in this slot's place unless `changes` say otherwise."""
        same = dict(instance_id=self.instance_id, spiff_task_id=self.spiff_task_id, node_id=self.node_id,
                    node_name=self.node_name, lane=self.lane, form_key=self.form_key, form_version=self.form_version,
                    candidate_rule=self.candidate_rule, slot=self.slot, kind=self.kind, origin=self.origin,
                    parent_id=self.parent_id, activation=self.activation, due_at=self.due_at)
        return TaskRow(id=None, assignee_id=assignee_id, status=status, created_at=None, **{**same, **changes})

    @property
    def undecided(self) -> bool:
        return self.status in ("open", "waiting")

    def close(self, status: str, *, at: datetime | None = None, by: int | None = None, outcome: str | None = None,
              comment: str | None = None) -> None:
        self.status, self.dirty = status, True
        if at is not None:
            self.completed_at, self.completed_by = at, by
        if outcome is not None:
            self.outcome = outcome
        if comment is not None:
            self.comment = comment

    def insert(self, sql: Sql, instance_id: int, at: datetime) -> None:
        self.instance_id, self.created_at = instance_id, self.created_at or at
        if self.parent is not None:
            self.parent_id = self.parent.id
        self.id = sql.row(_INSERT, (
            instance_id, self.spiff_task_id, self.node_id, self.node_name, self.lane, self.form_key,
            self.form_version, self.assignee_id, self.candidate_rule, self.status, self.slot, sql.ts(self.created_at),
            sql.ts(self.completed_at), self.completed_by, self.outcome, self.comment, sql.json(self.data),
            self.on_behalf_of_id, self.kind, self.origin, self.parent_id, sql.json(self.note), sql.ts(self.urged_at),
            self.signature_id, self.activation, sql.ts(self.due_at)))[0]
        self.dirty = False

    def update(self, sql: Sql) -> None:
        sql.defer(_UPDATE, (self.assignee_id, self.status, self.outcome, self.comment, sql.json(self.data),
                          sql.ts(self.completed_at), self.completed_by, sql.json(self.note), sql.ts(self.urged_at),
                          self.signature_id, self.id))
        self.dirty = False


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


INSTANCE_COLS = ("i.id, i.definition_id, i.definition_key, i.definition_version, i.title, i.status, i.state, "
                 "i.serializer_version, i.version, u.id, u.username, u.display_name, u.department_id, u.branch_id")


def load_user(sql: Sql, username: str, *, need: str | None = None) -> User:
    """The active user `username`; with `need`, one of their roles must grant that permission
    (三员分立: the system, security and audit administrators never start or approve business)."""
    found = sql.row("SELECT id, username, display_name, department_id, branch_id, status FROM users "
                    "WHERE username = ?", (username,))
    if found is None:
        raise NotFound(f"用户 {username} 不存在")
    if found[5] != "active":
        raise Forbidden(f"用户 {username} 已停用")
    if need is not None and not has_permission(sql, found[0], need):
        raise Forbidden(f"{found[2]} 没有权限：{PERMISSIONS[need]}")
    return User(*found[:5])


def has_permission(sql: Sql, user_id: int, need: str) -> bool:
    granted = sql.rows("SELECT r.permissions FROM user_roles g JOIN roles r ON r.\"key\" = g.role_key "
                       "WHERE g.user_id = ?", (user_id,))
    return any(need in (Sql.from_json(p) or ()) for (p,) in granted)


def people(sql: Sql, usernames: list[str], *, need: str = "task.act") -> list[User]:
    """Active users by username, each allowed `need`; a clear error names the first that is not."""
    out = []
    for name in dict.fromkeys(usernames):
        out.append(load_user(sql, name, need=need))
    return out
