"""/api/audit: the auditor's view of the log (安全审计员 only; sysadmin and secadmin cannot read it)."""
from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel
from starlette.background import BackgroundTask

from api.deps import DatabaseDep, EngineDep, allowed
from api.pages import Page, PageNo, QueryId
from engine import EventView, search_events

EventRead = EventView

router = APIRouter(prefix="/audit", tags=["audit"])


EventPage = Page[EventRead]


class VerifyRead(BaseModel):
    ok: bool
    checked: int
    first_bad_seq: int | None
    reason: str | None
    head_seq: int
    from_seq: int
    checkpoints: int
    last_checkpoint: int | None
    untrusted_root: list[str] | None = None
    archived_through: int = 0


class CheckpointRead(BaseModel):
    seq: int
    tree_size: int
    root: str
    chain_head: str
    ts: str
    hash_alg: str
    key_id: str
    signature: str


class KeyRead(BaseModel):
    key_id: str
    alg: str
    public_key: str
    created_at: str
    endorsed_by: str | None
    endorsement: str | None


class InclusionRead(BaseModel):
    seq: int
    leaf: str
    checkpoint: CheckpointRead
    path: list[str]


class ConsistencyRead(BaseModel):
    first: CheckpointRead
    second: CheckpointRead
    path: list[str]


CheckpointPage = Page[CheckpointRead]
Seq = Annotated[int, Query(ge=1, le=2**63 - 1)]


@router.get("/events", operation_id="audit_events_list", response_model=EventPage)
def list_events(db: DatabaseDep, principal: allowed("audit.read"), action: str | None = None,
                actor_id: QueryId | None = None,
                actor: Annotated[str | None, Query(max_length=100, description="操作人（或被代理人）的用户名或姓名")] = None,
                instance_id: QueryId | None = None, since: datetime | None = None,
                until: datetime | None = None, page: PageNo = 1,
                size: Annotated[int, Query(ge=1, le=500)] = 50) -> EventPage:
    items, total = search_events(db, principal, action=action, actor_id=actor_id, actor=actor,
                                 instance_id=instance_id, since=since, until=until, page=page, size=size)
    return EventPage(items=items, total=total, page=page, size=size)


@router.get("/verify", operation_id="audit_verify", response_model=VerifyRead)
def verify_chain(engine: EngineDep, principal: allowed("audit.read"), incremental: bool = False,
                 from_checkpoint: Seq | None = None) -> VerifyRead:
    """Recompute the hash chain, the Merkle root at every checkpoint and their signatures, from the
    start, or `incremental`ly from the last checkpoint an earlier verification passed; names the
    first event that does not check out. Logged as audit.verify."""
    result = engine.auditor.verify(principal, incremental=incremental, from_checkpoint=from_checkpoint)
    return VerifyRead(**result.__dict__)


@router.get("/checkpoints", operation_id="audit_checkpoints_list", response_model=CheckpointPage)
def list_checkpoints(engine: EngineDep, principal: allowed("audit.read"), page: PageNo = 1,
                     size: Annotated[int, Query(ge=1, le=500)] = 50) -> CheckpointPage:
    """Signed checkpoints, newest first."""
    items, total = engine.auditor.checkpoints(principal, page=page, size=size)
    return CheckpointPage(items=items, total=total, page=page, size=size)


@router.post("/checkpoints", operation_id="audit_checkpoint_create", response_model=CheckpointRead | None)
def create_checkpoint(engine: EngineDep, principal: allowed("audit.read")) -> CheckpointRead | None:
    """Sign a checkpoint now, covering every event so far (null: none since the last checkpoint)."""
    return engine.auditor.sign(principal)


@router.get("/keys", operation_id="audit_keys_list", response_model=list[KeyRead])
def list_keys(engine: EngineDep, principal: allowed("audit.read")) -> list[KeyRead]:
    """The log's public keys, oldest first; each later key carries its predecessor's endorsement."""
    return engine.auditor.keys(principal)


@router.get("/proof/inclusion", operation_id="audit_proof_inclusion", response_model=InclusionRead)
def inclusion_proof(engine: EngineDep, principal: allowed("audit.read"), seq: Seq,
                    checkpoint: Seq | None = None) -> InclusionRead:
    """Proof (RFC 9162) that event `seq` is in the tree a checkpoint signed (default: the latest)."""
    return engine.auditor.inclusion(principal, seq, checkpoint)


@router.get("/proof/consistency", operation_id="audit_proof_consistency", response_model=ConsistencyRead)
def consistency_proof(engine: EngineDep, principal: allowed("audit.read"), first: Seq,
                      second: Seq | None = None) -> ConsistencyRead:
    """Proof (RFC 9162) that checkpoint `first`'s log is a prefix of checkpoint `second`'s (default: the latest)."""
    return engine.auditor.consistency(principal, first, second)


@router.post("/export", operation_id="audit_export", response_class=FileResponse,
             responses={200: {"content": {"application/zip": {}}, "description": "导出包（zip）"}})
def export(engine: EngineDep, principal: allowed("audit.read"),
           from_seq: Seq | None = None, to_seq: Seq | None = None, since: datetime | None = None,
           until: datetime | None = None) -> FileResponse:
    """A bundle for offline verification (`djflow audit verify-bundle`, or the verifier inside it):
    events from `from_seq`/`since` to `to_seq`/`until`, the checkpoints covering them, the public
    keys and a Chinese README. Logged as audit.export."""
    result = engine.auditor.export(principal, since=from_seq if from_seq is not None else since,
                                     until=to_seq if to_seq is not None else until)
    folder = Path(result.path).parent
    return FileResponse(result.path, media_type="application/zip",
                        filename=f"djflow-audit-{result.first_seq}-{result.last_seq}.zip",
                        headers={"X-Djflow-Bundle-SHA256": result.sha256},
                        background=BackgroundTask(shutil.rmtree, folder, True))
