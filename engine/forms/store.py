"""Forms: JSON Schema (Draft 2020-12) + RJSF uiSchema, loaded from forms/<key>/ and validated server-side."""
from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from engine.bpmn.loader import Problem
from engine.errors import FieldProblem

MAX_DEPTH = 64  # nesting of a form schema or uiSchema; validation recurses through it
EXTERNAL_REF = "只允许引用本表单内的定义（以 # 开头）"
SCHEMA_FILE = "schema.json"
UI_SCHEMA_FILE = "uischema.json"


@dataclass(frozen=True)
class FormSource:
    key: str
    title: str
    schema: dict
    ui_schema: dict

    @property
    def hash(self) -> str:
        return content_hash({"schema": self.schema, "ui_schema": self.ui_schema})


def canonical_json(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def content_hash(value) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


def read_json(path: Path, *, max_bytes: int) -> tuple[object | None, list[Problem]]:
    """Read a JSON file, reporting size and syntax problems with their line."""
    data = path.read_bytes()
    if len(data) > max_bytes:
        return None, [Problem(str(path), 1, "DJ001", f"文件大小 {len(data)} 字节，超过上限 {max_bytes} 字节")]
    try:
        return json.loads(data.decode("utf-8")), []
    except UnicodeDecodeError as exc:
        return None, [Problem(str(path), 1, "DJ601", f"不是 UTF-8 编码：{exc.reason}")]
    except json.JSONDecodeError as exc:
        return None, [Problem(str(path), exc.lineno, "DJ601", f"JSON 格式错误：{exc.msg}")]


def load_form_dir(path: Path, *, max_bytes: int, key: str | None = None) -> tuple[FormSource | None, list[Problem]]:
    """Load forms/<key>/schema.json (+ uischema.json); the schema must itself be valid Draft 2020-12."""
    return load_form_files(path / SCHEMA_FILE, path / UI_SCHEMA_FILE, key=key or path.name, max_bytes=max_bytes)


def load_form_files(schema_path: Path, ui_path: Path | None, *, key: str, max_bytes: int
                    ) -> tuple[FormSource | None, list[Problem]]:
    if not schema_path.is_file():
        return None, [Problem(str(schema_path), 1, "DJ102", f"表单 {key} 缺少 {schema_path.name}")]
    schema, problems = read_json(schema_path, max_bytes=max_bytes)
    ui_schema: object = {}
    if ui_path is not None and ui_path.is_file():
        ui_schema, ui_problems = read_json(ui_path, max_bytes=max_bytes)
        problems += ui_problems
    if problems:
        return None, problems
    if not isinstance(schema, dict) or not isinstance(ui_schema, dict):
        return None, [Problem(str(schema_path), 1, "DJ602", "表单 schema 和 uiSchema 都必须是 JSON 对象")]
    if nesting_depth(schema) > MAX_DEPTH or nesting_depth(ui_schema) > MAX_DEPTH:
        return None, [Problem(str(schema_path), 1, "DJ602", f"表单定义嵌套超过 {MAX_DEPTH} 层")]
    refs = external_refs(schema)
    if refs:
        return None, [Problem(str(schema_path), _line_of_key(schema_path, ["$ref"]), "DJ602",
                              f"{refs[0]}：{EXTERNAL_REF}")]
    bad = _schema_error(canonical_json(schema))
    if bad is not None:
        path, message = bad
        where = "/".join(str(p) for p in path) or "(根)"
        return None, [Problem(str(schema_path), _line_of_key(schema_path, path), "DJ602",
                              f"不是有效的 JSON Schema（{where}）：{message}")]
    if schema.get("type", "object") != "object":
        return None, [Problem(str(schema_path), 1, "DJ602", "表单 schema 的 type 必须是 object")]
    return FormSource(key, str(schema.get("title", key)), schema, ui_schema), []


@functools.lru_cache(maxsize=1024)
def _schema_error(text: str) -> tuple[tuple, str] | None:
    """(path, message) of the first meta-schema violation of a schema (as canonical JSON), or None.
    Checking against the meta-schema is most of what deploying a form costs, and `djflow init`
    deploys the same ~80 forms every time (every test's fresh database too): once per content."""
    try:
        Draft202012Validator.check_schema(json.loads(text))
    except SchemaError as exc:
        return tuple(exc.path), exc.message
    return None


def nesting_depth(value) -> int:
    """How deeply a JSON value nests (without recursion: the value is untrusted)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level <= MAX_DEPTH:
                stack.extend((v, level + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def external_refs(value, path: str = "") -> list[str]:
    """Paths of `$ref`s that leave the document: a validator would fetch them while checking a
    submission, so forms may only refer inside themselves."""
    found = []
    if isinstance(value, dict):
        for k, v in value.items():
            here = f"{path}/{k}" if path else str(k)
            if k in ("$ref", "$dynamicRef") and isinstance(v, str) and not v.startswith("#"):
                found.append(here)
            else:
                found += external_refs(v, here)
    elif isinstance(value, list):
        for n, v in enumerate(value):
            found += external_refs(v, f"{path}/{n}" if path else str(n))
    return found


def _line_of_key(path: Path, json_path) -> int:
    """Best effort: the line where the last key of the failing path appears."""
    keys = [p for p in json_path if isinstance(p, str)]
    if not keys:
        return 1
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if f'"{keys[-1]}"' in line:
            return n
    return 1


_MESSAGES = {
    "required": "必填",
    "type": "类型不正确",
    "minimum": "不能小于 {minimum}",
    "exclusiveMinimum": "必须大于 {exclusiveMinimum}",
    "maximum": "不能大于 {maximum}",
    "exclusiveMaximum": "必须小于 {exclusiveMaximum}",
    "minLength": "至少 {minLength} 个字符",
    "maxLength": "最多 {maxLength} 个字符",
    "pattern": "格式不正确",
    "format": "不是有效的 {format}",
    "enum": "不是可选值之一",
    "const": "取值不正确",
    "minItems": "至少选择 {minItems} 项",
    "maxItems": "最多选择 {maxItems} 项",
    "additionalProperties": "不是此表单的字段",
}


def make_validator(schema: dict) -> Draft202012Validator:
    """A Draft 2020-12 validator that also checks formats (date, email, …)."""
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def validate_data(schema: dict, data: object, validator: Draft202012Validator | None = None) -> list[FieldProblem]:
    """Validate submitted data; every problem names the field and a reason a person can act on.

    Fields that the form does not declare are refused: a form is also a write permission, and an
    approver must not be able to set the amount a gateway reads by adding it to their opinion.
    """
    if not isinstance(data, dict):
        return [FieldProblem("", "表单数据必须是 JSON 对象")]
    problems: list[FieldProblem] = []
    declared = schema.get("properties", {})
    for name in data:
        if name not in declared:
            problems.append(FieldProblem(name, _MESSAGES["additionalProperties"]))
    validator = validator or make_validator(schema)
    for err in sorted(validator.iter_errors(data), key=lambda e: list(e.path)):
        field = "/".join(str(p) for p in err.path)
        if err.validator == "required":
            missing = err.message.split("'")[1] if "'" in err.message else ""
            field = f"{field}/{missing}".strip("/")
        template = _MESSAGES.get(err.validator)
        reason = template.format(**{err.validator: err.validator_value}) if template else err.message
        if err.validator != "additionalProperties":
            problems.append(FieldProblem(field, f"{reason}（{err.message}）" if template else reason))
    return problems
