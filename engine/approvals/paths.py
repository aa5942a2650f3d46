"""Moving an instance back along the path it took (退回, 撤回), on SpiffWorkflow's task tree.

Spiff's `reset_from_task_id` drops the descendants of the task it resets to. That is enough when
the target lies before everything still running, but not when the target is inside one branch of
a parallel split and the join already fired: the join fired from the *other* branch's subtree, so
the work after the join (and the join itself) would survive the reset, and the instance would
carry on past a branch that is being redone (the bug behind flowable #3944 and ruoyi-vue-pro #867).
`reset_to` therefore also resets every fired join downstream of the target that lies outside its
subtree; the join then waits again for the redone branch.
"""
from __future__ import annotations

from collections.abc import Iterable

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.specs.Join import Join
from SpiffWorkflow.util.task import TaskState


def downstream(spec) -> set[str]:
    """Names of every task spec reachable from `spec` (not including it unless on a loop)."""
    seen: set[str] = set()
    todo = list(spec.outputs)
    while todo:
        s = todo.pop()
        if s.name not in seen:
            seen.add(s.name)
            todo.extend(s.outputs)
    return seen


def _ancestors(task) -> set:
    """Ids of the tasks before `task` on the task tree; for a task in a called process (a call
    activity's subprocess), the call activity and the tasks before it in the caller too."""
    out = set()
    while task is not None:
        p = task.parent
        while p is not None:
            out.add(p.id)
            p = p.parent
        caller = task.workflow.parent_task_id
        task = task.workflow.top_workflow.get_task_from_id(caller) if caller is not None else None
        if task is not None:
            out.add(task.id)
    return out


def reset_to(workflow: BpmnWorkflow, target) -> None:
    """Make `target` (a completed task) ready again, undoing what ran after it, then run engine steps."""
    after = downstream(target.task_spec)
    workflow.reset_from_task_id(target.id)
    keep = _ancestors(target) | {target.id}
    for _ in range(20):  # each round resets at least one fired join; nesting depth bounds it
        stale = [t for t in workflow.get_tasks(state=TaskState.COMPLETED)
                 if isinstance(t.task_spec, Join) and t.task_spec.name in after and t.id not in keep
                 and not t.is_descendant_of(target) and t.children]
        if not stale:
            break
        workflow.reset_from_task_id(stale[0].id)
    workflow.do_engine_steps()


def executed(workflow: BpmnWorkflow, current, node_ids: Iterable[str]) -> list:
    """Completed user tasks `current` may return to, most recent first, one per node: its
    ancestors on the task tree, plus completed tasks in parallel branches that lead to it
    (a node after a join may return into either branch). Tasks in sibling branches that do
    not lead to `current` are not on its path."""
    nodes = set(node_ids)
    ancestors = _ancestors(current)
    found: dict[str, object] = {}
    for t in workflow.get_tasks(state=TaskState.COMPLETED, manual=True):
        name = t.task_spec.name
        if name not in nodes or name == current.task_spec.name:
            continue
        if t.id in ancestors or current.task_spec.name in downstream(t.task_spec):
            prev = found.get(name)
            if prev is None or t.last_state_change > prev.last_state_change:
                found[name] = t
    return sorted(found.values(), key=lambda t: t.last_state_change, reverse=True)
