"""The process and form catalogue behind /api/process-definitions and /api/forms.

An upload goes through exactly the checks of `djflow validate` and `djflow deploy` (the file is
written to a private temporary folder and loaded by engine/definitions.py: safe XML parser, XSD,
djflow lint, spec build), then becomes a *draft* version. Publishing makes a draft the version new
instances start on; earlier published versions stay, for the instances pinned to them; retiring
one stops new starts on it. Every change is an audit event.
"""
from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from engine import audit
from engine.clock import now
from engine.config import Settings
from engine.db import Database
from engine.definitions import (
    PROCESS_META,
    latest_form,
    load_process,
    store_form,
    store_process,
)
from engine.errors import (
    Conflict,
    DefinitionInvalid,
    FieldProblem,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
)
from engine.forms.store import load_form_files
from engine.identity.principal import Principal
from engine.models import FormDefinition, ProcessDefinition, User

KEY = re.compile(r"[a-z][a-z0-9_]{1,99}")


@dataclass
class ProblemView:
    file: str
    line: int
    code: str
    message: str

    def as_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "code": self.code, "message": self.message}


@dataclass
class ProcessSummary:
    key: str
    name: str
    category: str | None
    description: str | None
    published_version: int | None
    published_at: str | None
    draft_version: int | None


@dataclass
class VersionView:
    key: str
    version: int
    name: str
    status: str
    spec_hash: str
    published_by: str | None
    published_at: str | None
    created_at: str


@dataclass
class VersionDetail(VersionView):
    bpmn_xml: str = ""
    settings: dict | None = None
    nodes: dict | None = None
    form_refs: dict | None = None


@dataclass
class FormSummary:
    key: str
    title: str
    version: int
    hash: str
    created_at: str


@dataclass
class FormDetail(FormSummary):
    schema: dict | None = None
    ui_schema: dict | None = None


def _iso(v) -> str | None:
    return v.isoformat() if v else None


class Catalog:
    def __init__(self, db: Database, settings: Settings):
        self.db = db
        self.settings = settings

    # -- processes ------------------------------------------------------------------------
    def list_processes(self, principal: Principal) -> list[ProcessSummary]:
        """One entry per process key; drafts are shown to designers only."""
        designer = principal.has("process.design")
        if not designer:
            principal.require("process.start")
        with self.db.read() as s:
            rows = s.scalars(select(ProcessDefinition).order_by(ProcessDefinition.key, ProcessDefinition.version)).all()
        out: dict[str, ProcessSummary] = {}
        for r in rows:
            meta = r.settings or {}
            entry = out.setdefault(r.key, ProcessSummary(r.key, r.name, meta.get("category"), meta.get("description"),
                                                         None, None, None))
            if r.status == "published":
                entry.published_version, entry.published_at = r.version, _iso(r.published_at)
                entry.name, entry.category, entry.description = r.name, meta.get("category"), meta.get("description")
            elif r.status == "draft" and designer:
                entry.draft_version = r.version
        return [e for e in out.values() if e.published_version is not None or (designer and e.draft_version)]

    def versions(self, principal: Principal, key: str) -> list[VersionView]:
        principal.require("process.design")
        with self.db.read() as s:
            rows = s.execute(select(ProcessDefinition, User.username).outerjoin(
                User, User.id == ProcessDefinition.published_by).where(ProcessDefinition.key == key)
                .order_by(ProcessDefinition.version)).all()
        if not rows:
            raise NotFound(f"流程 {key} 不存在")
        return [self._version(r, who) for r, who in rows]

    def version(self, principal: Principal, key: str, version: int) -> VersionDetail:
        principal.require("process.design")
        with self.db.read() as s:
            found = s.execute(select(ProcessDefinition, User.username).outerjoin(
                User, User.id == ProcessDefinition.published_by)
                .where(ProcessDefinition.key == key, ProcessDefinition.version == version)).first()
        if found is None:
            raise NotFound(f"流程 {key} v{version} 不存在")
        r, who = found
        return VersionDetail(**vars(self._version(r, who)), bpmn_xml=r.bpmn_xml, settings=r.settings,
                             nodes=r.nodes, form_refs=r.form_refs)

    def validate(self, principal: Principal, bpmn: bytes, filename: str,
                 process_json: bytes | None = None) -> list[ProblemView]:
        """Every problem `djflow validate` would report for this upload; nothing is written."""
        principal.require("process.design")
        with self.db.read() as s:
            _, problems = self._load(s, bpmn, filename, process_json)
        return problems

    def upload(self, principal: Principal, bpmn: bytes, filename: str,
               process_json: bytes | None = None) -> VersionView:
        """A new draft version (or the newest version itself when the content is unchanged)."""
        principal.require("process.design")
        with self.db.unit_of_work() as s:
            source, problems = self._load(s, bpmn, filename, process_json)
            if problems:
                raise DefinitionInvalid(f"{len(problems)} 个问题，未保存", problems=problems)
            newest = s.scalar(select(ProcessDefinition).where(ProcessDefinition.key == source.key)
                              .order_by(ProcessDefinition.version.desc()).limit(1))
            if newest is not None and newest.spec_hash == source.content_hash:
                return self._version(newest, None)
            deployed = store_process(s, source, actor_id=principal.user_id, hash_alg=self.settings.audit_hash,
                                     status="draft")
            s.flush()
            row = s.scalar(select(ProcessDefinition).where(ProcessDefinition.key == deployed.key,
                                                           ProcessDefinition.version == deployed.version))
            return self._version(row, None)

    def publish(self, principal: Principal, key: str, version: int) -> VersionView:
        return self._move(principal, key, version, "draft", "published", "definition.publish", "发布")

    def retire(self, principal: Principal, key: str, version: int) -> VersionView:
        return self._move(principal, key, version, "published", "retired", "definition.retire", "停用")

    # -- forms ---------------------------------------------------------------------------
    def list_forms(self, principal: Principal) -> list[FormSummary]:
        self._form_reader(principal)
        with self.db.read() as s:
            newest = select(FormDefinition.key, func.max(FormDefinition.version).label("v")).group_by(
                FormDefinition.key).subquery()
            rows = s.scalars(select(FormDefinition).join(newest, (newest.c.key == FormDefinition.key)
                                                         & (newest.c.v == FormDefinition.version))
                             .order_by(FormDefinition.key)).all()
        return [FormSummary(r.key, r.title, r.version, r.hash, _iso(r.created_at)) for r in rows]

    def form(self, principal: Principal, key: str, version: int | None = None) -> FormDetail:
        self._form_reader(principal)
        with self.db.read() as s:
            q = select(FormDefinition).where(FormDefinition.key == key)
            q = q.where(FormDefinition.version == version) if version else q.order_by(FormDefinition.version.desc())
            r = s.scalar(q.limit(1))
        if r is None:
            raise NotFound(f"表单 {key}{f' v{version}' if version else ''} 不存在")
        return FormDetail(r.key, r.title, r.version, r.hash, _iso(r.created_at), schema=r.schema,
                          ui_schema=r.ui_schema)

    def form_versions(self, principal: Principal, key: str) -> list[FormSummary]:
        self._form_reader(principal)
        with self.db.read() as s:
            rows = s.scalars(select(FormDefinition).where(FormDefinition.key == key)
                             .order_by(FormDefinition.version)).all()
        if not rows:
            raise NotFound(f"表单 {key} 不存在")
        return [FormSummary(r.key, r.title, r.version, r.hash, _iso(r.created_at)) for r in rows]

    def save_form(self, principal: Principal, key: str, schema: dict, ui_schema: dict | None = None) -> FormDetail:
        """A new form version when the content changed; the same checks as `djflow deploy`."""
        principal.require("process.design")
        if not KEY.fullmatch(key or ""):
            raise InvalidInput("表单标识应为小写字母开头的字母、数字、下划线（2 到 100 个字符）",
                               errors=[FieldProblem("key", "格式不正确")])
        with tempfile.TemporaryDirectory(prefix="djflow-form-") as tmp:
            schema_path, ui_path = Path(tmp) / "schema.json", Path(tmp) / "uischema.json"
            schema_path.write_text(json.dumps(schema, ensure_ascii=False, indent=1), encoding="utf-8")
            ui_path.write_text(json.dumps(ui_schema or {}, ensure_ascii=False, indent=1), encoding="utf-8")
            source, problems = load_form_files(schema_path, ui_path, key=key, max_bytes=self.settings.form_max_bytes)
        if problems:
            raise InvalidInput("表单定义有误：" + "；".join(p.message for p in problems),
                               errors=[FieldProblem("schema", p.message) for p in problems])
        with self.db.unit_of_work() as s:
            store_form(s, source, actor_id=principal.user_id, hash_alg=self.settings.audit_hash)
        return self.form(principal, key)

    # -- internals -----------------------------------------------------------------------
    def _form_reader(self, principal: Principal) -> None:
        if not principal.has("process.design"):
            principal.require("process.start")

    def _load(self, s, bpmn: bytes, filename: str, process_json: bytes | None):
        """Write the upload to a private folder and load it as `djflow deploy` would."""
        name = Path(filename or "process.bpmn").name
        if len(bpmn) > self.settings.bpmn_max_bytes:
            raise PayloadTooLarge(f"BPMN 文件超过 {self.settings.bpmn_max_bytes // (1024 * 1024)} MB")
        meta: dict = {}
        if process_json is not None:
            try:
                meta = json.loads(process_json.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise InvalidInput(f"process.json 不是合法的 JSON：{exc}",
                                   errors=[FieldProblem("process_json", "不是合法的 JSON")]) from None
            if not isinstance(meta, dict):
                raise InvalidInput("process.json 必须是 JSON 对象", errors=[FieldProblem("process_json", "须为对象")])
        key = str(meta.get("key") or Path(name).stem)
        if not KEY.fullmatch(key):
            raise InvalidInput(f"流程标识 '{key}' 不合法：应为小写字母开头的字母、数字、下划线；"
                               "可在 process.json 的 key 中指定", errors=[FieldProblem("key", "格式不正确")])
        with tempfile.TemporaryDirectory(prefix="djflow-upload-") as tmp:
            folder = Path(tmp) / key
            folder.mkdir()
            (folder / f"{key}.bpmn").write_bytes(bpmn)
            if process_json is not None:
                (folder / PROCESS_META).write_bytes(process_json)
            source, problems = load_process(folder, self.settings,
                                            form_exists=lambda k: latest_form(s, k) is not None)
            shown = [ProblemView(name if p.file.endswith(".bpmn") else PROCESS_META, p.line, p.code, p.message)
                     for p in problems]
        return source, shown

    def _move(self, principal: Principal, key: str, version: int, frm: str, to: str, action: str,
              verb: str) -> VersionView:
        principal.require("process.design")
        with self.db.unit_of_work() as s:
            row = s.scalar(select(ProcessDefinition).where(ProcessDefinition.key == key,
                                                           ProcessDefinition.version == version)
                           .with_for_update())
            if row is None:
                raise NotFound(f"流程 {key} v{version} 不存在")
            if row.status != frm:
                raise Conflict(f"流程 {key} v{version} 当前为{_STATUS.get(row.status, row.status)}，不能{verb}")
            row.status = to
            if to == "published":
                row.published_by, row.published_at = principal.user_id, now()
            audit.append(s, action=action, actor_id=principal.user_id,
                         payload={"key": key, "version": version, "hash": row.spec_hash}, hash_alg=self.settings.audit_hash)
            s.flush()
            return self._version(row, principal.username if to == "published" else None)

    @staticmethod
    def _version(r: ProcessDefinition, published_by: str | None) -> VersionView:
        return VersionView(r.key, r.version, r.name, r.status, r.spec_hash, published_by, _iso(r.published_at),
                           _iso(r.created_at))


_STATUS = {"draft": "草稿", "published": "已发布", "retired": "已停用"}

