"""Request bodies of /api/tasks/{id}/actions/{action}."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class ActionBody(BaseModel):
    """What an action may carry; each action reads the parts it needs (see the operation's text)."""

    comment: str | None = Field(None, max_length=2000, description="意见；驳回、退回、办理完成时必填")
    data: dict[str, Any] | None = Field(None, description="本节点表单数据，以及字段权限允许修改的申请字段")
    to: str | None = Field(None, max_length=100, description="转办、委派：接收人的用户名")
    users: list[str] = Field(default_factory=list, max_length=20, description="加签、抄送：人员用户名")
    position: Literal["before", "after"] | None = Field(None, description="加签：before 前加签，after 后加签")
    target: str | None = Field(None, max_length=200, description="退回：目标节点 id（缺省为上一节点）")
    signature: str | None = Field(None, max_length=1_500_000, description="手写签名 data:image/png;base64,…")
