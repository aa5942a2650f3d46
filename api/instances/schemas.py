"""Request bodies of /api/process-instances."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class InstanceStart(BaseModel):
    key: str = Field(min_length=1, max_length=100, description="流程标识，如 approval_chain")
    data: dict[str, Any] | None = Field(None, description="发起表单数据；给出时同时提交发起申请")
    title: str | None = Field(None, min_length=1, max_length=300)
    business_key: str | None = Field(None, min_length=1, max_length=100)


class Withdraw(BaseModel):
    comment: str | None = Field(None, max_length=2000)
    terminate: bool = Field(False, description="true：撤销申请，流程结束；false：退回发起人修改后重新提交")


class Cancel(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class CommentCreate(BaseModel):
    body: str = Field(min_length=1, max_length=2000)
