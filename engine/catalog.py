"""The process and form catalogue behind /api/process-definitions and /api/forms.

An upload goes through exactly the checks of `djflow validate` and `djflow deploy`: the file is
written to a private temporary folder and loaded by engine/definitions.py (safe XML parser — no
DTD, no entities —, BPMN XSD, djflow lint, spec build), then becomes a *draft* version. Publishing
makes a draft the version new instances start on (the runtime starts the newest published
version); earlier published versions stay published for the instances pinned to them. Retiring a
version stops new starts on it while running instances continue. Every change is an audit event.

Who sees what: holders of `process.start` see published processes and versions; `process.design`
also sees drafts and retired versions, and is the only permission that writes.
"""
from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from jsonschema import Draft202012Validator
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import audit
from engine.clock import as_utc, now
from engine.config import Settings
from engine.db import Database
from engine.definitions import (
    PROCESS_META,
    ProcessSource,
    latest_form,
    latest_process,
    load_process,
    setting_problem,
    setting_schema,
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
from engine.forms.store import (
    EXTERNAL_REF,
    MAX_DEPTH,
    FormSource,
    canonical_json,
    content_hash,
    external_refs,
    nesting_depth,
)
from engine.identity.principal import Principal
from engine.models import FormDefinition, ProcessDefinition, User

KEY = re.compile(r"[a-z][a-z0-9_]{1,99}")
KEY_HELP = "应为小写字母开头，由小写字母、数字、下划线组成，2 到 100 个字符"
STATUS_NAMES = {"draft": "草稿", "published": "已发布", "retired": "已停用"}
MAX_TITLE = 200
_META_VALIDATOR = Draft202012Validator(Draft202012Validator.META_SCHEMA,
                                       format_checker=Draft202012Validator.FORMAT_CHECKER)


@dataclass
class ProblemView:
    """One problem in an uploaded definition. `field` is the upload part it is in (`bpmn` or
    `process_json`), `file` the name it was uploaded as; `line` and `code` as `djflow validate`."""

    field: str
    file: str
    line: int
    code: str
    message: str

    def as_dict(self) -> dict:
        """As an entry of a problem+json `errors` list: `reason` like every field problem, plus
        the line, code and message of `djflow validate --json`."""
        return {"field": self.field, "reason": self.message, "file": self.file, "line": self.line,
                "code": self.code, "message": self.message}


@dataclass
class ProcessSummary:
    """One process key in the catalogue."""

    key: str
    name: str
    category: str | None
    description: str | None
    published_version: int | None  # the newest published version: what a new instance starts on
    published_at: str | None
    draft_version: int | None  # the newest draft (designers only)


@dataclass
class VersionView:
    key: str
    version: int
    name: str
    status: str  # draft | published | retired
    spec_hash: str
    published_by: str | None  # username
    published_at: str | None
    created_at: str | None


@dataclass
class VersionDetail(VersionView):
    bpmn_xml: str = ""
    settings: dict | None = None  # process.json
    nodes: dict | None = None  # user-task node id -> {name, form_key, rule, lane, initiator, properties}
    form_refs: dict | None = None  # form key -> the form version this process version uses


@dataclass
class SettingView:
    """One setting of a process as an administrator sees it: what it is, its value now, the
    default the process ships with, and why it is a setting (local practice, unconfirmed …)."""

    name: str
    label: str
    value: object
    default: object
    changed: bool  # the value differs from the default
    basis: str  # regulation | local_practice | unconfirmed
    rule: str | None  # the rules.md reference, e.g. "§1.3 T-publicity [S]"
    note: str | None
    schema: dict  # type, limits, choices: what the value must satisfy


@dataclass
class ProcessSettings:
    key: str
    version: int  # the published version whose values these are (what new instances start on)
    settings: list[SettingView]


@dataclass
class FormSummary:
    key: str
    title: str
    version: int
    hash: str
    created_at: str | None


@dataclass
class FormDetail(FormSummary):
    schema: dict | None = None
    ui_schema: dict | None = None


def _iso(value) -> str | None:
    return as_utc(value).isoformat() if value else None


class Catalog:
    """Process definitions (upload → draft → published → retired) and forms (versioned)."""

    def __init__(self, db: Database, settings: Settings):
        self.db = db
        self.settings = settings

    # -- reading processes ----------------------------------------------------------------
    def list_processes(self, principal: Principal) -> list[ProcessSummary]:
        """One entry per process key: the newest published version, and for designers the
        newest draft (designers also see keys with no published version)."""
        designer = self._reader(principal)
        with self.db.read() as s:
            rows = s.execute(select(ProcessDefinition.key, ProcessDefinition.version, ProcessDefinition.name,
                                    ProcessDefinition.status, ProcessDefinition.settings,
                                    ProcessDefinition.published_at)
                             .order_by(ProcessDefinition.key, ProcessDefinition.version)).all()
        out: dict[str, ProcessSummary] = {}
        for key, version, name, status, meta, published_at in rows:
            if not designer and status != "published":
                continue
            meta = meta or {}
            entry = out.setdefault(key, ProcessSummary(key, name, None, None, None, None, None))
            if status == "draft":
                entry.draft_version = version
            if status == "published":
                entry.published_version, entry.published_at = version, _iso(published_at)
            if status == "published" or entry.published_version is None:
                # name, category and description of the version new instances use (else the newest)
                entry.name, entry.category, entry.description = name, meta.get("category"), meta.get("description")
        return list(out.values())

    def versions(self, principal: Principal, key: str) -> list[VersionView]:
        """Every version of `key` the principal may see, oldest first."""
        designer = self._reader(principal)
        with self.db.read() as s:
            q = (select(ProcessDefinition, User.username).outerjoin(User, User.id == ProcessDefinition.published_by)
                 .where(ProcessDefinition.key == key).order_by(ProcessDefinition.version))
            if not designer:
                q = q.where(ProcessDefinition.status == "published")
            rows = s.execute(q).all()
        if not rows:
            raise NotFound(f"流程 {key} 不存在")
        return [_version_view(r, who) for r, who in rows]

    def version(self, principal: Principal, key: str, version: int) -> VersionDetail:
        """One version with its BPMN, process.json settings, node configuration and form versions."""
        designer = self._reader(principal)
        with self.db.read() as s:
            found = s.execute(select(ProcessDefinition, User.username)
                              .outerjoin(User, User.id == ProcessDefinition.published_by)
                              .where(ProcessDefinition.key == key, ProcessDefinition.version == version)).first()
        if found is None or (not designer and found[0].status != "published"):
            raise NotFound(f"流程 {key} 版本 {version} 不存在")
        r, who = found
        return VersionDetail(**vars(_version_view(r, who)), bpmn_xml=r.bpmn_xml, settings=r.settings,
                             nodes=r.nodes, form_refs=r.form_refs)

    def process_settings(self, principal: Principal, key: str) -> ProcessSettings:
        """The settings of the version new instances start on, with defaults and their basis."""
        self._reader(principal)
        with self.db.read() as s:
            row = latest_process(s, key)
            if row is None:
                raise NotFound(f"流程 {key} 没有已发布的版本")
            return _settings_view(row)

    def update_settings(self, principal: Principal, key: str, values: dict) -> ProcessSettings:
        """Set local values (None: back to the default). Values are part of a version, so a change
        publishes a new version with the same diagram: instances already running keep the values
        they started with, and the audit log shows who changed what from what. Nothing changes
        unless every value is valid; unchanged values write nothing."""
        principal.require("process.design")
        if not isinstance(values, dict) or not values:
            raise InvalidInput("请给出要修改的设置项", errors=[FieldProblem("values", "至少一项")])
        try:
            with self.db.unit_of_work() as s:
                row = latest_process(s, key)
                if row is None:
                    raise NotFound(f"流程 {key} 没有已发布的版本")
                draft = s.scalar(select(func.max(ProcessDefinition.version)).where(
                    ProcessDefinition.key == key, ProcessDefinition.status == "draft",
                    ProcessDefinition.version > row.version))
                if draft is not None:  # the new version would outrank the draft, which then never takes effect
                    raise Conflict(f"流程 {key} 有未发布的草稿（版本 {draft}）：请先发布草稿，再修改参数")
                specs = dict((row.settings or {}).get("settings") or {})
                problems, changes = [], {}
                for name, value in values.items():
                    spec = specs.get(name)
                    if not isinstance(spec, dict):
                        problems.append(FieldProblem(f"values/{name}", "没有这个设置项"))
                        continue
                    if value is not None:
                        reason = setting_problem(spec, value)
                        if reason:
                            problems.append(FieldProblem(f"values/{name}", reason))
                            continue
                    before = spec.get("value", spec["default"])
                    after = spec["default"] if value is None else value
                    if before != after or (value is None and "value" in spec):
                        changes[name] = {"from": before, "to": after}
                        spec = {k: v for k, v in spec.items() if k != "value"}
                        specs[name] = spec if value is None else {**spec, "value": value}
                if problems:
                    raise InvalidInput("设置项有误：" + "；".join(f"{p.field} {p.reason}" for p in problems),
                                       errors=problems)
                if not changes:
                    return _settings_view(row)
                meta = {**(row.settings or {}), "settings": specs}
                version = (s.scalar(select(func.max(ProcessDefinition.version))
                                    .where(ProcessDefinition.key == key)) or 0) + 1
                new = ProcessDefinition(
                    key=key, version=version, name=row.name, process_id=row.process_id, bpmn_xml=row.bpmn_xml,
                    spec_json=row.spec_json, spec_hash=content_hash({"bpmn": row.bpmn_xml, "meta": meta}),
                    settings=meta, form_refs=row.form_refs, nodes=row.nodes, status="published",
                    published_by=principal.user_id, published_at=now())
                s.add(new)
                audit.append(s, action="definition.settings", actor_id=principal.user_id,
                             payload=principal.audit_payload(key=key, version=version, from_version=row.version,
                                                             changes=changes, hash=new.spec_hash),
                             hash_alg=self.settings.audit_hash)
                s.flush()
                return _settings_view(new)
        except IntegrityError:
            raise Conflict(f"流程 {key} 正在被同时修改，请重试") from None

    # -- writing processes ----------------------------------------------------------------
    def validate(self, principal: Principal, bpmn: bytes, filename: str,
                 process_json: bytes | None = None) -> list[ProblemView]:
        """Every problem `djflow validate` would report for this upload; nothing is written."""
        principal.require("process.design")
        _, problems = self._load(bpmn, filename, process_json)
        return problems

    def upload(self, principal: Principal, bpmn: bytes, filename: str,
               process_json: bytes | None = None) -> VersionView:
        """A new draft version; when the content equals the newest version (or the published one),
        that version is returned and nothing is written. DefinitionInvalid lists every problem."""
        principal.require("process.design")
        source, problems = self._load(bpmn, filename, process_json)
        if problems:
            raise DefinitionInvalid(f"流程定义有 {len(problems)} 个问题，未保存", problems=problems)
        assert source is not None
        try:
            with self.db.unit_of_work() as s:
                newest = s.scalar(select(ProcessDefinition).where(ProcessDefinition.key == source.key)
                                  .order_by(ProcessDefinition.version.desc()).limit(1))
                if newest is None or newest.spec_hash != source.content_hash:
                    deployed = store_process(s, source, actor_id=principal.user_id, status="draft",
                                             hash_alg=self.settings.audit_hash, context=principal.audit_payload())
                    s.flush()
                    newest = self._row(s, source.key, deployed.version)
                return _version_view(newest, _username(s, newest.published_by))
        except IntegrityError:  # another upload of the same key took the version number first
            raise Conflict(f"流程 {source.key} 正在被同时上传，请重试") from None

    def publish(self, principal: Principal, key: str, version: int | None = None) -> VersionView:
        """Make a draft (or a retired version; None: the newest draft) the one new instances start
        on. Earlier published versions stay published for the instances pinned to them."""
        return self._move(principal, key, version, to="published")

    def retire(self, principal: Principal, key: str, version: int) -> VersionView:
        """Stop new instances on a published version; running instances continue on it."""
        return self._move(principal, key, version, to="retired")

    # -- forms ----------------------------------------------------------------------------
    def list_forms(self, principal: Principal) -> list[FormSummary]:
        """The newest version of every form."""
        self._reader(principal)
        with self.db.read() as s:
            newest = (select(FormDefinition.key, func.max(FormDefinition.version).label("v"))
                      .group_by(FormDefinition.key).subquery())
            rows = s.scalars(select(FormDefinition).join(newest, (newest.c.key == FormDefinition.key)
                                                         & (newest.c.v == FormDefinition.version))
                             .order_by(FormDefinition.key)).all()
            return [_form_summary(r) for r in rows]

    def form(self, principal: Principal, key: str, version: int | None = None) -> FormDetail:
        """One form version (the newest when `version` is None) with its schema and uiSchema."""
        self._reader(principal)
        with self.db.read() as s:
            q = select(FormDefinition).where(FormDefinition.key == key)
            q = (q.where(FormDefinition.version == version) if version is not None
                 else q.order_by(FormDefinition.version.desc()))
            r = s.scalar(q.limit(1))
            if r is None:
                raise NotFound(f"表单 {key}{f' 版本 {version}' if version is not None else ''} 不存在")
            return FormDetail(**vars(_form_summary(r)), schema=r.schema, ui_schema=r.ui_schema)

    def form_versions(self, principal: Principal, key: str) -> list[FormSummary]:
        self._reader(principal)
        with self.db.read() as s:
            rows = s.scalars(select(FormDefinition).where(FormDefinition.key == key)
                             .order_by(FormDefinition.version)).all()
            if not rows:
                raise NotFound(f"表单 {key} 不存在")
            return [_form_summary(r) for r in rows]

    def save_form(self, principal: Principal, key: str, title: str | None, schema: dict,
                  ui_schema: dict | None = None) -> FormDetail:
        """A new form version when schema or uiSchema changed (the same content keeps the newest
        version). The schema must be a valid Draft 2020-12 JSON Schema of type object."""
        principal.require("process.design")
        source = self._form_source(key, title, schema, ui_schema or {})
        try:
            with self.db.unit_of_work() as s:
                store_form(s, source, actor_id=principal.user_id, hash_alg=self.settings.audit_hash,
                           action="form.save", context=principal.audit_payload())
        except IntegrityError:
            raise Conflict(f"表单 {key} 正在被同时保存，请重试") from None
        return self.form(principal, key)

    # -- internals ------------------------------------------------------------------------
    @staticmethod
    def _reader(principal: Principal) -> bool:
        """Catalogue readers hold process.start or process.design; True for designers."""
        if principal.has("process.design"):
            return True
        principal.require("process.start")
        return False

    @staticmethod
    def _row(s: Session, key: str, version: int, *, lock: bool = False) -> ProcessDefinition:
        q = select(ProcessDefinition).where(ProcessDefinition.key == key, ProcessDefinition.version == version)
        row = s.scalar(q.with_for_update() if lock else q)
        if row is None:
            raise NotFound(f"流程 {key} 版本 {version} 不存在")
        return row

    def _load(self, bpmn: bytes, filename: str, process_json: bytes | None
              ) -> tuple[ProcessSource | None, list[ProblemView]]:
        """Load an upload exactly as `djflow deploy` loads a process folder."""
        name = Path((filename or "").replace("\\", "/")).name or "process.bpmn"
        if len(bpmn) > self.settings.bpmn_max_bytes:
            raise PayloadTooLarge(f"BPMN 文件超过上限 {self.settings.bpmn_max_bytes // (1024 * 1024)} MB")
        if process_json is not None and len(process_json) > self.settings.form_max_bytes:
            raise PayloadTooLarge(f"process.json 超过上限 {self.settings.form_max_bytes // 1024} KB")
        meta: object = {}
        if process_json is not None:
            try:
                meta = json.loads(process_json.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise InvalidInput(f"process.json 不是合法的 UTF-8 JSON：{exc}",
                                   errors=[FieldProblem("process_json", "不是合法的 JSON")]) from None
            if not isinstance(meta, dict):
                raise InvalidInput("process.json 必须是 JSON 对象",
                                   errors=[FieldProblem("process_json", "必须是 JSON 对象")])
        key = str(meta.get("key") or Path(name).stem)
        if not KEY.fullmatch(key):
            field = "process_json/key" if meta.get("key") else "file"
            raise InvalidInput(f"流程标识 '{key}' 不合法：{KEY_HELP}（取自 process.json 的 key，否则取文件名）",
                               errors=[FieldProblem(field, KEY_HELP)])
        if process_json is None:
            # the modeler sends only the diagram: the process keeps its process.json (name,
            # category, settings and their local values, lanes, schedule) from its newest version
            with self.db.read() as s:
                kept = s.scalar(select(ProcessDefinition.settings).where(ProcessDefinition.key == key)
                                .order_by(ProcessDefinition.version.desc()).limit(1))
            if kept:
                process_json = json.dumps(kept, ensure_ascii=False).encode("utf-8")
        with tempfile.TemporaryDirectory(prefix="djflow-upload-") as tmp:
            folder = Path(tmp) / key
            folder.mkdir()
            (folder / f"{key}.bpmn").write_bytes(bpmn)
            if process_json is not None:
                (folder / PROCESS_META).write_bytes(process_json)
            with self.db.read() as s:
                source, problems = load_process(folder, self.settings,
                                                form_exists=lambda k: latest_form(s, k) is not None)
        shown = [ProblemView("process_json", PROCESS_META, p.line, p.code, p.message) if p.file.endswith(PROCESS_META)
                 else ProblemView("bpmn", name, p.line, p.code, p.message) for p in problems]
        return source, shown

    def _move(self, principal: Principal, key: str, version: int | None, *, to: str) -> VersionView:
        """Change a version's status: draft|retired → published, published → retired."""
        principal.require("process.design")
        allowed_from, action, verb = (({"draft", "retired"}, "definition.publish", "发布") if to == "published"
                                      else ({"published"}, "definition.retire", "停用"))
        with self.db.unit_of_work() as s:
            if version is None:
                version = s.scalar(select(func.max(ProcessDefinition.version))
                                   .where(ProcessDefinition.key == key, ProcessDefinition.status == "draft"))
                if version is None:
                    if s.scalar(select(ProcessDefinition.id).where(ProcessDefinition.key == key).limit(1)) is None:
                        raise NotFound(f"流程 {key} 不存在")
                    raise Conflict(f"流程 {key} 没有待发布的草稿")
            row = self._row(s, key, version, lock=True)
            if row.status not in allowed_from:
                raise Conflict(f"流程 {key} 版本 {version} 当前{STATUS_NAMES.get(row.status, row.status)}，不能{verb}")
            if to == "published":
                missing = [f"{k} 版本 {v}" for k, v in sorted((row.form_refs or {}).items())
                           if s.scalar(select(FormDefinition.id).where(FormDefinition.key == k,
                                                                      FormDefinition.version == v)) is None]
                if missing:
                    raise Conflict(f"流程 {key} 版本 {version} 使用的表单不存在：{'、'.join(missing)}")
                row.published_by, row.published_at = principal.user_id, now()
            previous, row.status = row.status, to
            audit.append(s, action=action, actor_id=principal.user_id,
                         payload=principal.audit_payload(key=key, version=version, hash=row.spec_hash,
                                                         previous=previous),
                         hash_alg=self.settings.audit_hash)
            return _version_view(row, _username(s, row.published_by))

    def _form_source(self, key: str, title: str | None, schema: dict, ui_schema: dict) -> FormSource:
        """The checks `djflow deploy` applies to a form folder, on an uploaded form."""
        if not KEY.fullmatch(key or ""):
            raise InvalidInput(f"表单标识 '{key}' 不合法：{KEY_HELP}", errors=[FieldProblem("key", KEY_HELP)])
        if title is not None and len(title) > MAX_TITLE:
            raise InvalidInput(f"表单标题最多 {MAX_TITLE} 个字符", errors=[FieldProblem("title", f"最多 {MAX_TITLE} 个字符")])
        if not isinstance(schema, dict) or not isinstance(ui_schema, dict):
            raise InvalidInput("表单 schema 和 uiSchema 都必须是 JSON 对象",
                               errors=[FieldProblem("schema", "必须是 JSON 对象")])
        size = len(canonical_json({"schema": schema, "ui_schema": ui_schema}))
        if size > self.settings.form_max_bytes:
            raise PayloadTooLarge(f"表单定义 {size} 字节，超过上限 {self.settings.form_max_bytes} 字节")
        if nesting_depth(schema) > MAX_DEPTH or nesting_depth(ui_schema) > MAX_DEPTH:
            raise InvalidInput(f"表单定义嵌套超过 {MAX_DEPTH} 层", errors=[FieldProblem("schema", f"嵌套超过 {MAX_DEPTH} 层")])
        problems = [FieldProblem("/".join(["schema", *map(str, e.absolute_path)]), e.message)
                    for e in sorted(_META_VALIDATOR.iter_errors(schema), key=lambda e: list(map(str, e.absolute_path)))]
        problems += [FieldProblem(f"schema/{where}", EXTERNAL_REF) for where in external_refs(schema)]
        if not problems and schema.get("type", "object") != "object":
            problems.append(FieldProblem("schema/type", "表单 schema 的 type 必须是 object"))
        if problems:
            raise InvalidInput("不是有效的 JSON Schema（Draft 2020-12）：" + "；".join(
                f"{p.field}：{p.reason}" for p in problems[:5]), errors=problems)
        return FormSource(key, (title or str(schema.get("title") or key))[:MAX_TITLE], schema, ui_schema)


def _username(s: Session, user_id: int | None) -> str | None:
    return s.scalar(select(User.username).where(User.id == user_id)) if user_id is not None else None


def _version_view(r: ProcessDefinition, published_by: str | None) -> VersionView:
    return VersionView(r.key, r.version, r.name, r.status, r.spec_hash, published_by, _iso(r.published_at),
                       _iso(r.created_at))


def _settings_view(row: ProcessDefinition) -> ProcessSettings:
    out = []
    for name, spec in ((row.settings or {}).get("settings") or {}).items():
        value = spec.get("value", spec["default"])
        out.append(SettingView(name, str(spec.get("label") or name), value, spec["default"],
                               value != spec["default"], str(spec.get("basis") or "local_practice"),
                               spec.get("rule"), spec.get("note"), setting_schema(spec)))
    return ProcessSettings(row.key, row.version, out)


def _form_summary(r: FormDefinition) -> FormSummary:
    return FormSummary(r.key, r.title, r.version, r.hash, _iso(r.created_at))
