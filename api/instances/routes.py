"""/api/process-instances: the instances a person may see (theirs, their tasks', their orgs')."""
from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import CurrentUser, EngineDep

router = APIRouter(prefix="/process-instances", tags=["process-instances"])


class TaskRead(BaseModel):
    id: int
    node_id: str
    node_name: str
    assignee: str | None
    assignee_name: str | None
    on_behalf_of: str | None = None
    on_behalf_of_name: str | None = None
    status: str
    outcome: str | None
    comment: str | None
    created_at: str | None
    completed_at: str | None
    completed_by: str | None


class InstanceRead(BaseModel):
    id: int
    definition_key: str
    definition_version: int
    title: str
    status: str
    initiator: str
    initiator_name: str
    started_at: str | None
    ended_at: str | None
    tasks: list[TaskRead] = []


class InstancePage(BaseModel):
    items: list[InstanceRead]
    total: int
    page: int
    size: int


@router.get("", operation_id="process_instances_list", response_model=InstancePage)
def list_instances(engine: EngineDep, principal: CurrentUser, status: str | None = None, key: str | None = None,
                   page: Annotated[int, Query(ge=1)] = 1,
                   size: Annotated[int, Query(ge=1, le=200)] = 20) -> InstancePage:
    items, total = engine.list_instances(principal=principal, status=status, key=key, page=page, size=size)
    return InstancePage(items=[InstanceRead(**asdict(v)) for v in items], total=total, page=page, size=size)


@router.get("/{instance_id:int}", operation_id="process_instances_get", response_model=InstanceRead)
def get_instance(instance_id: int, engine: EngineDep, principal: CurrentUser) -> InstanceRead:
    return InstanceRead(**asdict(engine.visible_instance(principal=principal, instance_id=instance_id)))
