"""/api/process-instances: the instances a person may see (theirs, their tasks', their orgs')."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CurrentUser, EngineDep
from api.pages import Page
from engine import InstanceView

InstanceRead = InstanceView

router = APIRouter(prefix="/process-instances", tags=["process-instances"])


InstancePage = Page[InstanceRead]


@router.get("", operation_id="process_instances_list", response_model=InstancePage)
def list_instances(engine: EngineDep, principal: CurrentUser, status: str | None = None, key: str | None = None,
                   page: Annotated[int, Query(ge=1)] = 1,
                   size: Annotated[int, Query(ge=1, le=200)] = 20) -> InstancePage:
    items, total = engine.list_instances(principal=principal, status=status, key=key, page=page, size=size)
    return InstancePage(items=items, total=total, page=page, size=size)


@router.get("/{instance_id:int}", operation_id="process_instances_get", response_model=InstanceRead)
def get_instance(instance_id: int, engine: EngineDep, principal: CurrentUser) -> InstanceRead:
    return engine.visible_instance(principal=principal, instance_id=instance_id)
