"""Hardened BPMN loading: a safe XML parser, XSD validation and SpiffWorkflow spec building.

Every problem is a `Problem(file, line, code, message)` with a real line number. SpiffWorkflow's
own ValidationException leaves the line empty (it reads `node.line_number`, which lxml elements
do not have), so djflow looks the offending element up by its id in the tree it parsed itself.
"""
from __future__ import annotations

import codecs
import re
from collections.abc import Iterable
from dataclasses import dataclass

from lxml import etree
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser

from engine.errors import DefinitionInvalid

NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core",
}
_DOCTYPE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_DOCTYPE_TEXT = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
# XML 1.0 appendix F: how a parser tells the encoding before reading the declaration.
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_NO_BOM = {b"\x00\x00\x00<": "utf-32-be", b"<\x00\x00\x00": "utf-32-le",
           b"\x00<\x00?": "utf-16-be", b"<\x00?\x00": "utf-16-le"}
_DECLARED = re.compile(rb"""<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._\-]+)["']""")
# libxml2 names the line of the element left open: report that line, not where it noticed.
_OPEN_TAG = re.compile(r"(?:tag mismatch: \S+|in tag \S+|Start Tag \S+) line (\d+)")


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.code} {self.message}"

    def as_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "code": self.code, "message": self.message}


def _safe_parser() -> etree.XMLParser:
    # No DTD loading, no entity expansion, no network, no huge trees: an uploaded file can
    # neither read local files (XXE), reach the network, nor expand into gigabytes.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_pis=True)


def line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _declared_text(data: bytes) -> str | None:
    """The document as text when it is not in an ASCII-compatible encoding the byte scan can read
    (UTF-16/32 with or without BOM, UTF-7 ...); None for UTF-8/ASCII or unknown encodings."""
    codec = next((c for bom, c in _BOMS if data.startswith(bom)), None) or _NO_BOM.get(data[:4])
    if codec is None:
        m = _DECLARED.match(data)
        codec = m.group(1).decode("ascii") if m else None
    try:
        if codec is None or codecs.lookup(codec).name in ("utf-8", "ascii"):
            return None
        return data.decode(codec, errors="replace")
    except (LookupError, ValueError):
        return None


def find_declaration(data: bytes) -> tuple[int, str] | None:
    """(line, DOCTYPE|ENTITY) of the first DTD declaration, whatever the file's encoding."""
    m = _DOCTYPE.search(data)
    if m:
        return line_of(data, m.start()), m.group(1).decode().upper()
    text = _declared_text(data)
    if text is not None:
        m = _DOCTYPE_TEXT.search(text)
        if m:
            return text.count("\n", 0, m.start()) + 1, m.group(1).upper()
    if b"\x00" in data:  # a wide encoding we could not name: its ASCII letters are still there
        stripped = data.replace(b"\x00", b"")
        m = _DOCTYPE.search(stripped)
        if m:
            return 1, m.group(1).decode().upper()
    return None


def parse_xml(data: bytes, filename: str, *, max_bytes: int) -> etree._ElementTree:
    """Parse untrusted XML safely or raise DefinitionInvalid naming the file and line."""
    if len(data) > max_bytes:
        raise DefinitionInvalid(f"{filename} 过大", problems=[Problem(
            filename, 1, "DJ001", f"文件大小 {len(data)} 字节，超过上限 {max_bytes} 字节")])
    found = find_declaration(data)
    if found:
        raise DefinitionInvalid(f"{filename} 含有 DOCTYPE/ENTITY 声明", problems=[Problem(
            filename, found[0], "DJ002",
            f"不允许 <!{found[1]}> 声明（DTD 与外部实体会被用于读取服务器文件或耗尽内存）")])
    try:
        tree = etree.ElementTree(etree.fromstring(data, _safe_parser()))
    except etree.XMLSyntaxError as exc:
        line = exc.lineno or 1
        m = _OPEN_TAG.search(exc.msg or "")
        if m and 0 < int(m.group(1)) <= line:
            line = int(m.group(1))
        raise DefinitionInvalid(f"{filename} 不是格式正确的 XML", problems=[Problem(
            filename, line, "DJ003", f"XML 格式错误：{exc.msg}")]) from None
    # Second layer for encodings the byte scan cannot read (e.g. UTF-16): refuse any DTD at all.
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise DefinitionInvalid(f"{filename} 含有 DOCTYPE/ENTITY 声明", problems=[Problem(
            filename, 1, "DJ002", "不允许 DOCTYPE 声明（DTD 与外部实体会被用于读取服务器文件或耗尽内存）")])
    return tree


def id_lines(tree: etree._ElementTree) -> dict[str, int]:
    return {el.get("id"): el.sourceline or 1 for el in tree.iter() if isinstance(el.tag, str) and el.get("id")}


def xsd_problems(tree: etree._ElementTree, filename: str) -> list[Problem]:
    """BPMN 2.0 + spiffworkflow extension XSD, with every error (not only the last one)."""
    VALIDATOR.preprocess(tree.getroot())
    validator = VALIDATOR.validator
    if validator.validate(tree):
        return []
    return [Problem(filename, err.line or 1, "DJ010", f"不符合 BPMN 2.0 XSD：{err.message}")
            for err in validator.error_log]


@dataclass
class ParsedProcess:
    process_id: str
    name: str
    spec: object
    subprocess_specs: dict


def executable_process_ids(tree: etree._ElementTree) -> list[str]:
    procs = tree.getroot().findall("bpmn:process", NS)
    executable = [p.get("id") for p in procs if p.get("isExecutable", "true").lower() == "true"]
    return executable or [p.get("id") for p in procs]


_QUOTED = re.compile(r"'([^'\s]+)'")
_REF_ATTRS = ("calledElement", "targetRef", "sourceRef", "attachedToRef", "processRef", "messageRef",
              "signalRef", "errorRef", "escalationRef", "dataObjectRef", "default")


def _exception_line(exc: Exception, tree: etree._ElementTree, lines: dict[str, int]) -> int:
    """The line of the element a Spiff exception is about. Spiff gives the element's id when it
    had the node at hand; some errors (e.g. a call activity naming a missing process) only quote
    a name in the message, so look for the element that refers to that name, or carries it as id."""
    line = getattr(exc, "line_number", None)
    if isinstance(line, int) and line > 0:
        return line
    eid = getattr(exc, "id", "") or ""
    if eid in lines:
        return lines[eid]
    for name in _QUOTED.findall(str(exc)):
        for el in tree.iter():
            if isinstance(el.tag, str) and any(el.get(attr) == name for attr in _REF_ATTRS):
                return el.sourceline or 1
        if name in lines:
            return lines[name]
    return 1


def called_elements(tree: etree._ElementTree) -> list[tuple[str, int]]:
    """(process id, line) of every call activity's calledElement that no process in this file defines."""
    root = tree.getroot()
    own = {p.get("id") for p in root.iterfind("bpmn:process", NS)}
    out, seen = [], set()
    for el in root.iter("{%s}callActivity" % NS["bpmn"]):
        name = el.get("calledElement")
        if name and name not in own and name not in seen:
            seen.add(name)
            out.append((name, el.sourceline or 1))
    return out


def build_spec(tree: etree._ElementTree, filename: str, process_id: str | None = None,
               called: Iterable[tuple[etree._ElementTree, str]] = ()) -> ParsedProcess:
    """Build SpiffWorkflow specs from an already-validated tree; raise DefinitionInvalid with lines.
    `called`: the (tree, filename) of the processes its call activities name from other files, so
    Spiff builds their specs as the subprocess specs of this one."""
    lines = id_lines(tree)
    ids = executable_process_ids(tree)
    if not ids:
        raise DefinitionInvalid(f"{filename} 没有流程", problems=[Problem(filename, 1, "DJ030", "文件中没有 <bpmn:process>")])
    pid = process_id or ids[0]
    parser = SpiffBpmnParser(validator=None)
    try:
        parser.add_bpmn_xml(tree, filename)
        for other, other_name in called:
            parser.add_bpmn_xml(other, other_name)
        spec = parser.get_spec(pid)
        subprocess_specs = parser.get_subprocess_specs(pid)
    except SpiffWorkflowException as exc:  # ValidationException included
        raise DefinitionInvalid(f"{filename} 无法解析", problems=[Problem(
            filename, _exception_line(exc, tree, lines), "DJ020",
            f"{getattr(exc, 'id', '') or pid}：{exc}")]) from None
    node = tree.getroot().find(f"bpmn:process[@id='{pid}']", NS)
    name = node.get("name") if node is not None and node.get("name") else pid
    return ParsedProcess(pid, name, spec, subprocess_specs)
