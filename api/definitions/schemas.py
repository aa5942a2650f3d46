"""Request bodies and path parameters of /api/process-definitions."""
from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import BaseModel, Field

from engine import ProblemView, ProcessSettings, ProcessSummary, VersionDetail, VersionView

ProcessRead, VersionRead, VersionDetailRead, ProblemRead = ProcessSummary, VersionView, VersionDetail, ProblemView
SettingsRead = ProcessSettings

# A process key as stored (up to 100 characters, no control characters); checked further by the engine.
Key = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f/]+$")]
# A version number in a path: positive and within INTEGER, so a generated 10**30 is a 422.
Version = Annotated[int, Path(ge=1, le=2**31 - 1)]


class PublishBody(BaseModel):
    version: int | None = Field(None, ge=1, le=2**31 - 1, description="要发布的版本；省略时发布最新草稿")


class RetireBody(BaseModel):
    version: int = Field(ge=1, le=2**31 - 1, description="要停用的已发布版本")


class SettingsBody(BaseModel):
    values: dict[str, object] = Field(description="设置项名称 → 新值；null 表示恢复默认值", min_length=1, max_length=200)
