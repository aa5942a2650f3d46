"""/api/tasks: the inbox (mine / team / cc / done), the task page, and the approval actions."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request, Response

from api.deps import CurrentUser, EngineDep, allowed, in_engine_thread
from api.pages import Id, Page, PageNo, fast_json
from api.tasks.schemas import ActionBody
from engine import ACTION_NAMES, ActionInput, ActResult, TaskDetail, TaskView

router = APIRouter(prefix="/tasks", tags=["tasks"])
TaskPage = Page[TaskView]
Action = Literal["submit", "approve", "reject", "return", "withdraw", "transfer", "delegate", "resolve",
                 "add_sign", "remove_sign", "cc", "urge", "claim"]
assert set(Action.__args__) == set(ACTION_NAMES)


@router.get("", operation_id="tasks_list", response_model=TaskPage)
async def inbox(request: Request, engine: EngineDep, principal: CurrentUser,
          scope: Literal["mine", "team", "cc", "done"] = "mine", status: Literal["open", "done"] = "open",
          key: str | None = None, overdue: bool = False,
          initiator: Annotated[str | None, Query(min_length=1, max_length=100, description="发起人用户名")] = None,
          arrived_from: Annotated[datetime | None, Query(description="到达时间不早于（无时区为北京时间）")] = None,
          arrived_to: Annotated[datetime | None, Query(description="到达时间早于")] = None,
          page: PageNo = 1, size: Annotated[int, Query(ge=1, le=200)] = 20) -> Response:
    items, total = await in_engine_thread(request, engine.inbox, principal=principal, scope=scope, status=status,
                                          key=key, overdue=overdue, initiator=initiator, arrived_from=arrived_from,
                                          arrived_to=arrived_to, page=page, size=size)
    return fast_json({"items": items, "total": total, "page": page, "size": size})


@router.get("/{task_id:int}", operation_id="tasks_get", response_model=TaskDetail)
def detail(task_id: Id, engine: EngineDep, principal: CurrentUser) -> Response:
    return fast_json(engine.task_detail(principal=principal, task_id=task_id))


@router.post("/{task_id:int}/actions/{action}", operation_id="tasks_act", response_model=ActResult,
             description="办理任务：submit 提交、approve 同意、reject 驳回、return 退回（target）、withdraw 撤回自己的同意、"
                         "transfer 转办（to）、delegate 委派（to）、resolve 委派办理完成、add_sign 加签（users, position）、"
                         "remove_sign 减签、cc 抄送（users）、urge 催办、claim 认领。带 Idempotency-Key 的重试只执行一次。")
async def act(request: Request, task_id: Id, action: Action, body: ActionBody, engine: EngineDep,
              principal: allowed("task.act"),
              idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None) -> Response:
    inp = ActionInput(comment=body.comment, data=body.data, to=body.to, users=body.users, position=body.position,
                      target=body.target, signature=body.signature)
    return fast_json(await in_engine_thread(request, engine.act, task_id=task_id, action=action,
                                            username=principal.username, inp=inp, idempotency_key=idempotency_key,
                                            principal=principal))
