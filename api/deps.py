"""Annotated dependencies shared by routes."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from engine import Database, WorkflowEngine


def get_engine(request: Request) -> WorkflowEngine:
    return request.app.state.engine


def get_db(request: Request) -> Database:
    return request.app.state.engine.db


EngineDep = Annotated[WorkflowEngine, Depends(get_engine)]
DatabaseDep = Annotated[Database, Depends(get_db)]
