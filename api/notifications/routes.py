"""/api/notifications: the signed-in person's in-app messages and their unread count."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from api.deps import CurrentUser
from api.pages import PageNo
from engine import NotificationPage, Notifications

router = APIRouter(prefix="/notifications", tags=["notifications"])


class MarkRead(BaseModel):
    ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] | None = Field(
        None, max_length=500, description="要标为已读的消息；缺省为全部")


class Marked(BaseModel):
    marked: int


def _service(request: Request) -> Notifications:
    return request.app.state.notifications


@router.get("", operation_id="notifications_list", response_model=NotificationPage)
def mine(request: Request, principal: CurrentUser, unread: bool = False, page: PageNo = 1,
         size: Annotated[int, Query(ge=1, le=200)] = 20) -> NotificationPage:
    return _service(request).mine(principal, unread_only=unread, page=page, size=size)


@router.post("/read", operation_id="notifications_mark_read", response_model=Marked)
def mark_read(body: MarkRead, request: Request, principal: CurrentUser) -> Marked:
    return Marked(marked=_service(request).mark_read(principal, body.ids))
