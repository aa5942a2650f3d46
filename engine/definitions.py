"""Process and form definitions: load from folders, validate (the same checks for `validate` and
`deploy`), and store as versioned rows, writing a new version only when content changed.

Call activities: a `<bpmn:callActivity calledElement="approval_chain">` naming a process that the
file does not define is resolved from disk, the caller's sibling folder first, then
`settings.process_dir` (process_definitions/), when the caller is loaded. The called process is
checked like any process, its spec becomes one of the caller's subprocess specs, its user tasks
join the caller's node map (marked with the called key; its own first task, the 发起申请, is
submitted by the call with the caller's data: engine/approvals/unit.py), and its settings join the
caller's (the caller's own of the same name win). So a version of the caller pins the version of
what it calls; `meta["calls"]` records which, by content hash, and a change there makes the next
deploy write a new version of the caller.
  DJ801 a user-task id of a called process is also an id in the caller (or in another called process)
  DJ802 calls nested deeper than CALL_DEPTH
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import audit
from engine.bpmn.lint import first_user_task, lane_rules, lint_tree, properties
from engine.bpmn.loader import (
    NS,
    Problem,
    build_spec,
    called_elements,
    executable_process_ids,
    id_lines,
    parse_xml,
    xsd_problems,
)
from engine.clock import now
from engine.config import Settings
from engine.errors import DefinitionInvalid
from engine.forms.store import FormSource, content_hash, load_form_dir, load_form_files, read_json
from engine.models import FormDefinition, ProcessDefinition
from engine.runtime.serializer import dump_spec
from engine.scheduler.schedules import check_config as check_schedule
from engine.scheduler.schedules import timer_start

PROCESS_META = "process.json"


@dataclass
class ProcessSource:
    """A process folder, parsed and checked: everything `deploy` needs to write a version."""

    key: str
    name: str
    process_id: str
    bpmn_path: Path
    bpmn_xml: str
    meta: dict
    nodes: dict
    spec_json: str
    local_forms: list[FormSource] = field(default_factory=list)

    @property
    def content_hash(self) -> str:
        return content_hash({"bpmn": self.bpmn_xml, "meta": self.meta})


def form_key_for(value: str, process_key: str) -> str:
    """A form reference as written in the BPMN → the form key it denotes.

    `approval_opinion` names forms/approval_opinion. A SpiffArena file name such as
    `submit-schema.json` names a file beside the BPMN; its key is `<process>/submit`.
    """
    if value.endswith(".json"):
        stem = value[: -len(".json")]
        stem = stem[: -len("-schema")] if stem.endswith("-schema") else stem
        return f"{process_key}/{stem}"
    return value


def find_bpmn(folder: Path) -> Path | None:
    preferred = folder / f"{folder.name}.bpmn"
    if preferred.is_file():
        return preferred
    found = sorted(folder.glob("*.bpmn"))
    return found[0] if len(found) == 1 else None


def disk_form_keys(settings: Settings) -> set[str]:
    forms_dir = settings.forms_dir
    return {p.parent.name for p in forms_dir.glob("*/schema.json")} if forms_dir.is_dir() else set()


def load_process(folder: Path, settings: Settings, *, form_exists: Callable[[str], bool]
                 ) -> tuple[ProcessSource | None, list[Problem]]:
    """Parse, XSD-validate, lint and build the spec of one process folder (or .bpmn file)."""
    bpmn_path = folder if folder.suffix == ".bpmn" else find_bpmn(folder)
    folder = bpmn_path.parent if bpmn_path is not None else folder
    if bpmn_path is None:
        return None, [Problem(str(folder), 1, "DJ030", "目录中没有（唯一的）.bpmn 文件")]
    filename = str(bpmn_path)
    meta: dict = {}
    meta_path = folder / PROCESS_META
    if meta_path.is_file():
        loaded, problems = read_json(meta_path, max_bytes=settings.form_max_bytes)
        if problems:
            return None, problems
        if not isinstance(loaded, dict):
            return None, [Problem(str(meta_path), 1, "DJ501", "process.json 必须是 JSON 对象")]
        meta = loaded
        bad = _settings_problems(meta, str(meta_path))
        if bad:
            return None, bad
    key = str(meta.get("key") or folder.name)
    size = bpmn_path.stat().st_size
    if size > settings.bpmn_max_bytes:  # refuse before reading it into memory
        return None, [Problem(filename, 1, "DJ001",
                              f"文件大小 {size} 字节，超过上限 {settings.bpmn_max_bytes} 字节")]
    data = bpmn_path.read_bytes()
    try:
        tree = parse_xml(data, filename, max_bytes=settings.bpmn_max_bytes)
    except DefinitionInvalid as exc:
        return None, exc.problems
    problems = xsd_problems(tree, filename)
    if problems:
        return None, problems

    local_forms: list[FormSource] = []
    local_problems: list[Problem] = []

    def exists(value: str) -> bool:
        if value.endswith(".json"):
            schema_path = folder / value
            if not schema_path.is_file():
                return False
            ui_name = value.replace("-schema.json", "-uischema.json")
            source, found = load_form_files(schema_path, folder / ui_name if ui_name != value else None,
                                            key=form_key_for(value, key), max_bytes=settings.form_max_bytes)
            local_problems.extend(found)
            if source is not None and all(f.key != source.key for f in local_forms):
                local_forms.append(source)
            return True
        return form_exists(value)

    ids = executable_process_ids(tree)
    process_id = key if key in ids else (ids[0] if ids else key)
    problems = lint_tree(tree, filename, process_id=process_id, form_exists=exists, lanes=meta.get("lanes"))
    problems += local_problems
    if problems:
        return None, problems
    called, problems = _load_called(tree, filename, folder, settings, form_exists)
    if problems:
        return None, problems
    try:
        parsed = build_spec(tree, filename, process_id, [(c.tree, str(c.path)) for c in called])
    except DefinitionInvalid as exc:
        return None, exc.problems
    nodes, problems = _call_nodes(tree, filename, _node_configs(tree, process_id, key, meta), called)
    if problems:
        return None, problems
    meta = _with_called(meta, called)
    starts_itself = timer_start(parsed.spec) is not None
    if starts_itself != bool(meta.get("schedule")):
        where = str(meta_path) if meta_path.is_file() else filename
        return None, [Problem(where, 1, "DJ501", "定时启动的流程须在 process.json 中配置 schedule（由谁、为哪些组织发起）"
                              if starts_itself else "process.json 配置了 schedule，但流程的开始事件没有定时器")]
    return ProcessSource(
        key=key, name=str(meta.get("name") or parsed.name), process_id=process_id, bpmn_path=bpmn_path,
        bpmn_xml=_xml_text(data, tree), meta=meta, nodes=nodes,
        spec_json=dump_spec(parsed.spec, parsed.subprocess_specs), local_forms=local_forms,
    ), []


CALL_DEPTH = 5  # a process calling a process calling … deeper than this is refused (DJ802)


@dataclass
class CalledProcess:
    """A process another one calls, found on disk and checked."""

    key: str
    process_id: str
    path: Path
    tree: object
    meta: dict
    digest: str  # content hash of its BPMN and process.json, recorded in the caller's meta["calls"]


def _find_called(name: str, folder: Path, settings: Settings) -> Path | None:
    """The BPMN file of process `name`: in the caller's sibling folder `name`, else in process_dir."""
    for base in (folder.parent, settings.process_dir):
        candidate = Path(base) / name
        if candidate.resolve() != folder.resolve() and candidate.is_dir():
            found = find_bpmn(candidate)
            if found is not None:
                return found
    return None


def _load_called(tree, filename: str, folder: Path, settings: Settings, form_exists: Callable[[str], bool]
                 ) -> tuple[list[CalledProcess], list[Problem]]:
    """Every process the file's call activities name (and those call, …) that is found on disk,
    each parsed and linted like a process of its own. One not found is left to Spiff, which
    reports it (DJ020) at the call activity."""
    out: list[CalledProcess] = []
    problems: list[Problem] = []
    todo = [(name, line, filename, 1) for name, line in called_elements(tree)]
    seen: set[str] = set()
    while todo:
        name, line, where, depth = todo.pop(0)
        if name in seen:
            continue
        seen.add(name)
        path = _find_called(name, folder, settings)
        if path is None:
            continue
        if depth > CALL_DEPTH:
            problems.append(Problem(where, line, "DJ802", f"调用层次超过 {CALL_DEPTH} 层（{name}）"))
            continue
        meta: dict = {}
        meta_path = path.parent / PROCESS_META
        if meta_path.is_file():
            loaded, found = read_json(meta_path, max_bytes=settings.form_max_bytes)
            if found:
                problems += found
                continue
            meta = loaded if isinstance(loaded, dict) else {}
        if path.stat().st_size > settings.bpmn_max_bytes:
            problems.append(Problem(str(path), 1, "DJ001", f"被调用的流程文件超过上限 {settings.bpmn_max_bytes} 字节"))
            continue
        data = path.read_bytes()
        try:
            ctree = parse_xml(data, str(path), max_bytes=settings.bpmn_max_bytes)
        except DefinitionInvalid as exc:
            problems += exc.problems
            continue
        found = xsd_problems(ctree, str(path))
        if not found and name not in {p.get("id") for p in ctree.getroot().iterfind("bpmn:process", NS)}:
            found = [Problem(where, line, "DJ030", f"{path} 中没有 id 为 {name} 的流程")]
        if not found:
            found = lint_tree(ctree, str(path), process_id=name, form_exists=form_exists, lanes=meta.get("lanes"))
        if found:
            problems += found
            continue
        key = str(meta.get("key") or path.parent.name)
        out.append(CalledProcess(key, name, path, ctree, meta,
                                 content_hash({"bpmn": _xml_text(data, ctree), "meta": meta})))
        todo += [(n, ln, str(path), depth + 1) for n, ln in called_elements(ctree)]
    return out, problems


def _call_nodes(tree, filename: str, nodes: dict, called: list[CalledProcess]) -> tuple[dict, list[Problem]]:
    """The caller's node map with the user tasks of the processes it calls. Their ids must not be
    ids of the caller's (nor of another called process's): the runtime finds a node by its id."""
    if not called:
        return nodes, []
    lines = {name: line for name, line in called_elements(tree)}
    taken = {i: filename for i in id_lines(tree)}
    problems = []
    out = dict(nodes)
    for c in called:
        theirs = _node_configs(c.tree, c.process_id, c.key, c.meta)
        their_ids = set(id_lines(c.tree))
        line = lines.get(c.process_id, 1)
        clash = sorted((set(theirs) & set(taken)) | (set(out) & their_ids))
        for node_id in clash:
            problems.append(Problem(filename, line, "DJ801",
                                    f"被调用流程 {c.key} 的节点 id '{node_id}' 与 {taken.get(node_id, filename)} "
                                    "中的节点 id 重复；运行时按 id 查找节点，请改名"))
        for node_id, raw in theirs.items():
            raw["called"] = c.key
            if raw["initiator"]:  # its 发起申请: submitted by the call, not by a person again
                raw["initiator"], raw["call_initiator"] = False, True
            out[node_id] = raw
        taken.update({i: str(c.path) for i in their_ids})
    return out, problems


def _with_called(meta: dict, called: list[CalledProcess]) -> dict:
    """The caller's process.json with the called processes' settings (marked with where they come
    from; the caller's own of the same name win) and, under "calls", what it calls by content hash."""
    if not called:
        return meta
    own = meta.get("settings") or {}
    inherited: dict = {}
    for c in called:
        for name, spec in (c.meta.get("settings") or {}).items():
            if name not in own and name not in inherited and isinstance(spec, dict):
                inherited[name] = {**spec, "from": c.key}
    return {**meta, "settings": {**own, **inherited},
            "calls": {c.key: {"process_id": c.process_id, "hash": c.digest} for c in called}}


def _xml_text(data: bytes, tree) -> str:
    """The file as text in the encoding it declares (a UTF-16 BPMN is as valid as a UTF-8 one)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode(tree.docinfo.encoding or "utf-8", errors="replace")


def _settings_problems(meta: dict, filename: str) -> list[Problem]:
    problems = []
    wrong = check_schedule(meta)
    if wrong:
        problems.append(Problem(filename, 1, "DJ501", wrong))
    settings = meta.get("settings") or {}
    if not isinstance(settings, dict):
        return problems + [Problem(filename, 1, "DJ501", "settings 应为 {名称: 设置项} 对象")]
    for name, spec in settings.items():
        if not isinstance(spec, dict) or "default" not in spec:
            problems.append(Problem(filename, 1, "DJ501", f"设置项 {name} 必须是含 default 的对象"))
            continue
        if spec.get("basis", "local_practice") not in SETTING_BASES:
            problems.append(Problem(filename, 1, "DJ501", f"设置项 {name} 的 basis 应为 {'、'.join(SETTING_BASES)} 之一"))
        for which in ("default", "value"):
            if which in spec:
                reason = setting_problem(spec, spec[which])
                if reason:
                    problems.append(Problem(filename, 1, "DJ501", f"设置项 {name} 的 {which} 无效：{reason}"))
    return problems


# Why a setting exists (rules.md tags): confirmed law fixed by the unit's own rules, local practice
# [S], or unconfirmed [U]; shown beside the value so nobody takes a default for law.
SETTING_BASES = ("regulation", "local_practice", "unconfirmed")
_SETTING_KEYWORDS = ("type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "enum", "pattern",
                     "minLength", "maxLength", "items", "minItems", "maxItems")


def setting_schema(spec: dict) -> dict:
    """The JSON Schema a setting's value must satisfy (its type, limits and choices)."""
    return {k: spec[k] for k in _SETTING_KEYWORDS if k in spec}


def setting_problem(spec: dict, value) -> str | None:
    """Why `value` is not a valid value of the setting `spec`, in Chinese; None when it is."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    import json

    try:  # NaN and Infinity are not JSON, and no limit holds them back (NaN < 0 and NaN > 0 are false)
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return "应为有限的数值"
    schema = setting_schema(spec)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return f"设置项的定义不是合法的 JSON Schema：{exc.message}"
    if isinstance(value, bool) and schema.get("type") in ("number", "integer"):
        return "应为数字"
    errors = sorted(Draft202012Validator(schema).iter_errors(value), key=lambda e: list(e.path))
    if not errors:
        return None
    e = errors[0]
    return {"type": f"应为 {schema.get('type')}", "minimum": f"不能小于 {schema.get('minimum')}",
            "maximum": f"不能大于 {schema.get('maximum')}", "enum": "应为 " + "、".join(map(str, schema.get("enum", []))) + " 之一",
            }.get(e.validator, e.message)


def with_values_of(meta: dict, previous: dict | None) -> dict:
    """`meta` (a process.json being deployed) keeping the values an administrator set on the version
    in force (`previous`), for every setting that still exists and whose value is still valid: a
    redeploy from disk (`djflow init`) must not quietly put local practice back to the defaults."""
    mine = meta.get("settings") or {}
    theirs = (previous or {}).get("settings") or {}
    carried = {}
    for name, spec in mine.items():
        old = theirs.get(name)
        if isinstance(spec, dict) and isinstance(old, dict) and "value" in old and "value" not in spec \
                and setting_problem(spec, old["value"]) is None:
            carried[name] = {**spec, "value": old["value"]}
    if not carried:
        return meta
    return {**meta, "settings": {name: carried.get(name, spec) for name, spec in mine.items()}}


def _node_configs(tree, process_id: str, key: str, meta: dict) -> dict:
    process = tree.getroot().find(f"bpmn:process[@id='{process_id}']", NS)
    by_lane = lane_rules(process, meta.get("lanes") or {})
    first = first_user_task(process)
    lanes = {}
    for lane in process.iterfind(".//bpmn:lane", NS):
        for ref in lane.iterfind("bpmn:flowNodeRef", NS):
            lanes[(ref.text or "").strip()] = lane.get("name")
    nodes = {}
    for task in process.iter("{%s}userTask" % NS["bpmn"]):
        props = {k: v for k, (v, _line) in properties(task).items()}
        rule = props.pop("assignee", None) or by_lane.get(task.get("id"), (None,))[0]
        form = props.pop("formJsonSchemaFilename", None)
        props.pop("formUiSchemaFilename", None)
        nodes[task.get("id")] = {
            "name": task.get("name") or task.get("id"),
            "form_key": form_key_for(form, key) if form else None,
            "rule": rule,
            "lane": lanes.get(task.get("id")),
            "initiator": first is not None and task.get("id") == first.get("id"),
            "properties": props,
        }
    return nodes


def collect(paths: Iterable[Path], settings: Settings) -> tuple[list[Path], list[Path]]:
    """Sort paths into process folders and form folders. A directory holding process folders or
    form folders (like process_definitions/ or forms/) stands for all of them."""
    processes: list[Path] = []
    forms: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.suffix == ".bpmn" or (path.is_dir() and find_bpmn(path)):
            processes.append(path)
        elif path.is_dir() and (path / "schema.json").is_file():
            forms.append(path)
        elif path.is_dir():
            for child in sorted(p for p in path.iterdir() if p.is_dir()):
                if find_bpmn(child):
                    processes.append(child)
                elif (child / "schema.json").is_file():
                    forms.append(child)
        elif path.name == "schema.json":
            forms.append(path.parent)
        else:
            processes.append(path)  # reported below as "not a process folder"
    return processes, forms


@dataclass
class Loaded:
    forms: list[FormSource]
    processes: list[ProcessSource]
    problems: list[Problem]


def load_paths(paths: Iterable[Path], settings: Settings, *, form_known: Callable[[str], bool],
               progress: Callable[[int, int, str], None] | None = None) -> Loaded:
    """Load and check every form and process under `paths`: forms first, so a process may use a
    form given alongside it; `form_known` says whether any other form key exists."""
    process_dirs, form_dirs = collect(paths, settings)
    total = len(process_dirs) + len(form_dirs)
    out = Loaded([], [], [])
    for n, folder in enumerate(form_dirs, 1):
        source, found = load_form_dir(folder, max_bytes=settings.form_max_bytes)
        out.problems += found
        if source is not None:
            out.forms.append(source)
        if progress is not None:
            progress(n, total, folder.name)
    keys = {f.key for f in out.forms}
    for n, folder in enumerate(process_dirs, len(form_dirs) + 1):
        if not folder.exists():
            out.problems.append(Problem(str(folder), 1, "DJ030", "文件或目录不存在"))
        else:
            source, found = load_process(folder, settings, form_exists=lambda k: k in keys or form_known(k))
            out.problems += found
            if source is not None:
                out.processes.append(source)
        if progress is not None:
            progress(n, total, folder.name)
    out.problems.sort()
    return out


def validate_paths(paths: Iterable[Path], settings: Settings,
                   known_form: Callable[[str], bool] | None = None) -> list[Problem]:
    """Every problem in the given BPMN files, process folders and form folders."""
    on_disk = disk_form_keys(settings)
    return load_paths(paths, settings, form_known=lambda k: k in on_disk or bool(known_form and known_form(k))
                      ).problems


# -- storing versions ----------------------------------------------------------------------

@dataclass
class Deployed:
    kind: str  # "process" | "form"
    key: str
    version: int
    created: bool  # False when the content was unchanged and the existing version was kept


def latest_form(session: Session, key: str) -> FormDefinition | None:
    return session.scalar(select(FormDefinition).where(FormDefinition.key == key)
                          .order_by(FormDefinition.version.desc()).limit(1))


def latest_process(session: Session, key: str) -> ProcessDefinition | None:
    return session.scalar(select(ProcessDefinition).where(ProcessDefinition.key == key,
                                                          ProcessDefinition.status == "published")
                          .order_by(ProcessDefinition.version.desc()).limit(1))


def store_form(session: Session, source: FormSource, *, actor_id: int | None, hash_alg: str,
               action: str = "form.publish", context: dict | None = None) -> Deployed:
    """Write a new form version unless the content is unchanged; `context` joins the audit payload."""
    current = latest_form(session, source.key)
    if current is not None and current.hash == source.hash:
        return Deployed("form", source.key, current.version, False)
    version = (current.version if current else 0) + 1
    session.add(FormDefinition(key=source.key, version=version, title=source.title, schema=source.schema,
                               ui_schema=source.ui_schema, hash=source.hash))
    audit.append(session, action=action, actor_id=actor_id,
                 payload={**(context or {}), "key": source.key, "version": version, "hash": source.hash},
                 hash_alg=hash_alg)
    return Deployed("form", source.key, version, True)


def store_process(session: Session, source: ProcessSource, *, actor_id: int | None, hash_alg: str,
                  status: str = "published", context: dict | None = None) -> Deployed:
    """Write a new version (published, or a draft to publish later) unless the content is unchanged;
    `context` joins the audit payload."""
    for form in source.local_forms:
        store_form(session, form, actor_id=actor_id, hash_alg=hash_alg)
    current = latest_process(session, source.key)
    if current is not None:
        kept = with_values_of(source.meta, current.settings)
        if kept is not source.meta:
            source = replace(source, meta=kept)
    digest = source.content_hash
    if current is not None and current.spec_hash == digest:
        return Deployed("process", source.key, current.version, False)
    form_refs = {}
    for node in source.nodes.values():
        key = node["form_key"]
        if key and key not in form_refs:
            form = latest_form(session, key)
            if form is None:
                raise DefinitionInvalid(f"表单 {key} 尚未发布", problems=[Problem(
                    str(source.bpmn_path), 1, "DJ102", f"表单 '{key}' 不存在（先部署 forms/{key}）")])
            form_refs[key] = form.version
    version = (session.scalar(select(func.max(ProcessDefinition.version))
                              .where(ProcessDefinition.key == source.key)) or 0) + 1
    session.add(ProcessDefinition(
        key=source.key, version=version, name=source.name, process_id=source.process_id,
        bpmn_xml=source.bpmn_xml, spec_json=source.spec_json, spec_hash=digest, settings=source.meta,
        form_refs=form_refs, nodes=source.nodes, status=status,
        published_by=actor_id if status == "published" else None,
        published_at=now() if status == "published" else None))
    audit.append(session, action="definition.publish" if status == "published" else "definition.upload",
                 actor_id=actor_id,
                 payload={**(context or {}), "key": source.key, "version": version, "hash": digest,
                          "forms": form_refs},
                 hash_alg=hash_alg)
    return Deployed("process", source.key, version, True)


def deploy_paths(session: Session, paths: Iterable[Path], settings: Settings, *, actor_id: int | None = None,
                 progress: Callable[[int, int, str], None] | None = None) -> list[Deployed]:
    """Validate then store every form and process under `paths`, in one unit of work.

    Nothing is written unless everything validates: a half-deployed set of definitions would
    leave processes pointing at forms that do not exist. `progress(done, total, name)` hears
    each folder as it is checked.
    """
    loaded = load_paths(paths, settings, form_known=lambda k: latest_form(session, k) is not None,
                        progress=progress)
    if loaded.problems:
        raise DefinitionInvalid(f"{len(loaded.problems)} 个问题，未部署任何定义", problems=loaded.problems)
    alg = settings.audit_hash
    results = [store_form(session, f, actor_id=actor_id, hash_alg=alg) for f in loaded.forms]
    session.flush()
    results += [store_process(session, p, actor_id=actor_id, hash_alg=alg) for p in loaded.processes]
    return results


def process_settings(meta: dict) -> dict:
    """The values of a process's settings (process.json "settings" → name: the value an
    administrator set, else the default)."""
    return {name: spec["value"] if "value" in spec else spec["default"]
            for name, spec in (meta.get("settings") or {}).items()}

