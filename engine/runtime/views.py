"""Plain read models the engine returns: no SpiffWorkflow or SQLAlchemy object leaves engine/."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class TaskView:
    id: int
    instance_id: int
    instance_title: str
    definition_key: str
    node_id: str
    node_name: str
    form_key: str | None
    assignee: str | None
    assignee_name: str | None
    status: str
    outcome: str | None
    comment: str | None
    created_at: str | None
    completed_at: str | None
    completed_by: str | None = None
    data: dict | None = None
    # 委托: the person the task was meant for, when a delegate holds it.
    on_behalf_of: str | None = None
    on_behalf_of_name: str | None = None
    kind: str = "approve"
    # None (the node's rule), add_before / add_after (加签), delegate (委派)
    origin: str | None = None
    parent_id: int | None = None
    # returned (with reason), transferred, delegated, resolved, auto (with the rule and reason), cc …
    note: dict | None = None
    activation: int = 1
    slot: int = 0
    due_at: str | None = None
    urged_at: str | None = None
    completed_by_name: str | None = None
    # an undecided task with a due time: on_time, due_soon (within DUE_SOON) or overdue (shown red)
    due_state: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class InstanceView:
    id: int
    definition_key: str
    definition_version: int
    title: str
    status: str
    initiator: str
    initiator_name: str
    started_at: str | None
    ended_at: str | None
    tasks: list[TaskView] = field(default_factory=list)
    business_key: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class ActResult:
    instance_id: int
    instance_status: str
    new_tasks: list[TaskView]

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class FormView:
    key: str
    version: int
    title: str
    schema: dict
    ui_schema: dict


@dataclass
class NodeRef:
    node_id: str
    name: str


@dataclass
class TaskDetail:
    """Everything the task page needs: the task, its node's form with the field permissions
    applied (hidden fields absent, read-only ones marked), the data to show, the application being
    decided on, the node's other slots (会签 progress), and what the user may do now."""

    task: TaskView
    instance: InstanceView
    form: FormView | None
    data: dict
    application: FormView | None
    application_data: dict
    field_permissions: dict[str, str]
    allowed_actions: list[str]
    return_targets: list[NodeRef]
    approve_method: str
    opinion_required: bool
    signature_required: bool
    slots: list[TaskView]


@dataclass
class HistoryEntry:
    seq: int
    at: str
    action: str
    actor: str | None
    actor_name: str | None
    on_behalf_of_name: str | None
    task_id: int | None
    node_id: str | None
    node_name: str | None
    comment: str | None
    details: dict


@dataclass
class NodeState:
    node_id: str
    name: str
    # completed | active | waiting (a timer or a join) | error (a failed service call) | none (not
    # reached in this round; listed only when it ran before a 退回 went back past it)
    state: str
    completed: int
    open_slots: int
    assignees: list[str]
    # how many times the node ran (a 退回 and resubmission runs it again; a node with approver
    # slots counts its activations), and the slots of its latest activation: decided / decided and
    # still to decide (a 会签 of three with two votes in is 2 of 3; a settled 或签 of three is 1 of 1,
    # the slots it cancelled are not counted)
    runs: int = 0
    tasks_done: int = 0
    tasks_total: int = 0


@dataclass
class DiagramView:
    instance_id: int
    definition_key: str
    definition_version: int
    bpmn_xml: str
    nodes: list[NodeState]
    # node ids in the order they completed: the path taken
    path: list[str]


@dataclass
class CommentView:
    id: int
    instance_id: int
    author: str
    author_name: str
    body: str
    created_at: str

