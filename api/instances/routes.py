"""/api/process-instances: start, list, detail, history, diagram, withdraw, cancel, retry, comments, attachments."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Header, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse

from api.deps import CurrentUser, EngineDep, allowed, in_engine_thread
from api.instances.schemas import Cancel, CommentCreate, InstanceStart, Withdraw
from api.pages import Id, Page, PageNo, fast_json
from engine import (
    ActResult,
    AttachmentView,
    ChainStatus,
    CommentView,
    DiagramView,
    HistoryEntry,
    InstanceVariables,
    InstanceView,
)

router = APIRouter(prefix="/process-instances", tags=["process-instances"])
files_router = APIRouter(prefix="/attachments", tags=["attachments"])

InstancePage = Page[InstanceView]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200,
                                               description="重试同一请求时带上相同的值：只执行一次，返回第一次的结果")]


@router.post("", operation_id="process_instances_start", response_model=ActResult, status_code=201)
async def start(request: Request, body: InstanceStart, engine: EngineDep, principal: allowed("process.start"),
          idempotency_key: IdempotencyKey = None) -> Response:
    return fast_json(await in_engine_thread(request, engine.start, key=body.key, username=principal.username,
                                            data=body.data, title=body.title, business_key=body.business_key,
                                            idempotency_key=idempotency_key, principal=principal), status_code=201)


@router.get("", operation_id="process_instances_list", response_model=InstancePage)
def list_instances(engine: EngineDep, principal: CurrentUser,
                   status: Literal["running", "completed", "rejected", "withdrawn", "cancelled", "error"] | None = None,
                   key: Annotated[str | None, Query(max_length=100)] = None, mine: bool = False,
                   q: Annotated[str | None, Query(max_length=100, description="标题或业务编号包含")] = None,
                   initiator: Annotated[str | None, Query(max_length=100, description="发起人用户名")] = None,
                   started_from: datetime | None = None, started_to: datetime | None = None,
                   page: PageNo = 1,
                   size: Annotated[int, Query(ge=1, le=200)] = 20) -> InstancePage:
    items, total = engine.list_instances(principal=principal, status=status, key=key, mine=mine, q=q,
                                         initiator=initiator, started_from=started_from, started_to=started_to,
                                         page=page, size=size)
    return InstancePage(items=items, total=total, page=page, size=size)


@router.get("/{instance_id:int}", operation_id="process_instances_get", response_model=InstanceView)
def get_instance(instance_id: Id, engine: EngineDep, principal: CurrentUser) -> InstanceView:
    return engine.visible_instance(principal=principal, instance_id=instance_id)


@router.get("/{instance_id:int}/history", operation_id="process_instances_history",
            response_model=list[HistoryEntry])
def history(instance_id: Id, engine: EngineDep, principal: CurrentUser) -> list[HistoryEntry]:
    return engine.history(principal=principal, instance_id=instance_id)


@router.get("/{instance_id:int}/diagram", operation_id="process_instances_diagram", response_model=DiagramView)
def diagram(instance_id: Id, engine: EngineDep, principal: CurrentUser) -> DiagramView:
    return engine.diagram(principal=principal, instance_id=instance_id)


@router.post("/{instance_id:int}/withdraw", operation_id="process_instances_withdraw", response_model=ActResult)
def withdraw(instance_id: Id, body: Withdraw, engine: EngineDep, principal: allowed("process.start")) -> ActResult:
    return engine.withdraw(instance_id=instance_id, username=principal.username, comment=body.comment,
                           terminate=body.terminate, client=principal.client)


@router.post("/{instance_id:int}/cancel", operation_id="process_instances_cancel", response_model=ActResult)
def cancel(instance_id: Id, body: Cancel, engine: EngineDep, principal: allowed("instance.admin")) -> ActResult:
    return engine.cancel(instance_id=instance_id, principal=principal, reason=body.reason)


@router.post("/{instance_id:int}/retry", operation_id="process_instances_retry", response_model=ActResult)
def retry(instance_id: Id, engine: EngineDep, principal: allowed("instance.admin")) -> ActResult:
    """Run the failed service calls of an instance in error again (an administrator)."""
    return engine.retry(instance_id=instance_id, principal=principal)


@router.get("/{instance_id:int}/comments", operation_id="process_instances_comments",
            response_model=list[CommentView])
def comments(instance_id: Id, engine: EngineDep, principal: CurrentUser) -> list[CommentView]:
    return engine.comments(principal=principal, instance_id=instance_id)


@router.post("/{instance_id:int}/comments", operation_id="process_instances_comment", response_model=CommentView,
             status_code=201)
def add_comment(instance_id: Id, body: CommentCreate, engine: EngineDep, principal: CurrentUser) -> CommentView:
    return engine.add_comment(principal=principal, instance_id=instance_id, body=body.body)


@router.get("/{instance_id:int}/attachments", operation_id="process_instances_attachments",
            response_model=list[AttachmentView])
def list_attachments(instance_id: Id, engine: EngineDep, principal: CurrentUser) -> list[AttachmentView]:
    return engine.attachments(principal=principal, instance_id=instance_id)


@router.post("/{instance_id:int}/attachments", operation_id="process_instances_attach", response_model=AttachmentView,
             status_code=201, responses={413: {"description": "the file is over the size limit"}})
async def attach(instance_id: Id, file: UploadFile, request: Request, engine: EngineDep,
                 principal: CurrentUser,
                 task_id: Annotated[int | None, Form(ge=1, description="在哪个待办上传（任务页面上传时必填；"
                                                                         "本人在本流程只有一个待办时可省略）")] = None,
                 task: Annotated[int | None, Query(alias="task_id", ge=1, include_in_schema=False)] = None,
                 ) -> AttachmentView:
    """发起人或当前办理人上传附件（流程进行中）。"""
    content = await _read_limited(engine, file)
    return engine.add_attachment(principal=principal, instance_id=instance_id, filename=file.filename or "",
                                 content_type=_content_type(file), content=content,
                                 task_id=task_id if task_id is not None else task)


async def _read_limited(engine, file: UploadFile) -> bytes:
    """At most one byte over the limit: enough for the engine to refuse the file as too large (413)."""
    return await file.read(engine.settings.attachment_max_bytes + 1)


def _content_type(file: UploadFile) -> str:
    return (file.content_type or "application/octet-stream").split(";")[0]


@router.get("/{instance_id:int}/variables", operation_id="process_instances_variables",
            response_model=InstanceVariables)
def variables(instance_id: Id, engine: EngineDep, principal: CurrentUser) -> InstanceVariables:
    """流程数据（监控用）：身份证号、手机号脱敏，保密节点所填内容不显示。需要 instance.read。"""
    return engine.instance_variables(principal=principal, instance_id=instance_id)


@router.get("/{instance_id:int}/chain", operation_id="process_instances_chain", response_model=ChainStatus)
def chain(instance_id: Id, engine: EngineDep, principal: CurrentUser) -> ChainStatus:
    """本实例审计事件的完整性：逐条重算哈希并核对前后衔接，及最新检查点是否已覆盖。"""
    return engine.instance_chain(principal=principal, instance_id=instance_id)


@files_router.post("", operation_id="attachments_stage", response_model=AttachmentView, status_code=201,
                   responses={413: {"description": "the file is over the size limit"}},
                   description="发起前上传附件（发起表单的附件字段）：只有上传人可见，发起申请时绑定到新流程实例。")
async def stage(file: UploadFile, engine: EngineDep, principal: allowed("process.start")) -> AttachmentView:
    content = await _read_limited(engine, file)
    return engine.stage_attachment(principal=principal, filename=file.filename or "",
                                   content_type=_content_type(file), content=content)


@files_router.delete("/{attachment_id:int}", operation_id="attachments_discard", status_code=204,
                     description="删除本人发起前上传、尚未随申请提交的附件。")
def discard(attachment_id: Id, engine: EngineDep, principal: CurrentUser) -> Response:
    engine.discard_staged(principal=principal, attachment_id=attachment_id)
    return Response(status_code=204)


@files_router.get("/{attachment_id:int}", operation_id="attachments_download",
                  responses={200: {"content": {"application/octet-stream": {}}}})
def download(attachment_id: Id, engine: EngineDep, principal: CurrentUser) -> FileResponse:
    view, path = engine.attachment(principal=principal, attachment_id=attachment_id)
    return FileResponse(path, media_type=view.content_type, filename=view.filename,
                        headers={"X-Content-Type-Options": "nosniff"})
