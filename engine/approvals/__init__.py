"""Approval semantics (DESIGN.md §5): one BPMN user task is one approval node; its approvers are
slots in `tasks`. quorum.py decides when a node is done, paths.py moves the token back (退回, 撤回),
auto.py applies the automatic rules (去重, 空审批人, 发起人即审批人)."""
