"""`djflow validate` / `validate_paths`: every refusal names the file, a stable code and the REAL
line of the offending element (DESIGN.md §4 BPMN conventions, §6 CLI contract).

Fixtures live in tests/engine/fixtures/bpmn/<key>/<key>.bpmn; each is the approval_chain shape with
one defect. Expected lines are computed by searching the fixture text, never hard-coded.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.bpmn.loader import Problem
from engine.config import REPO_ROOT, Settings
from engine.definitions import collect, load_process, validate_paths

FIXTURES = Path(__file__).parent / "fixtures" / "bpmn"
PROBLEM_LINE = re.compile(r"^(?P<file>\S.*?):(?P<line>\d+): (?P<code>DJ\d{3}) (?P<message>.*)$")


def folder(key: str) -> Path:
    return FIXTURES / key


def bpmn_file(key: str) -> str:
    """The file name validate prints for a process folder given as `folder(key)`."""
    return str(folder(key) / f"{key}.bpmn")


def text_of(key: str, encoding: str = "utf-8") -> str:
    return (folder(key) / f"{key}.bpmn").read_bytes().decode(encoding)


def line_of(key: str, needle: str, encoding: str = "utf-8") -> int:
    """1-based line of the only occurrence of `needle` in the fixture."""
    text = text_of(key, encoding)
    assert text.count(needle) == 1, f"{needle!r} must occur exactly once in fixture {key}"
    return text[: text.index(needle)].count("\n") + 1


def settings_for(tmp_path: Path, **overrides) -> Settings:
    values = dict(database_url=f"sqlite:///{tmp_path / 'djflow.db'}", environment="test",
                  process_dir=REPO_ROOT / "process_definitions", forms_dir=REPO_ROOT / "forms")
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def cfg(tmp_path) -> Settings:
    return settings_for(tmp_path)


def validate(key: str, settings: Settings) -> list[Problem]:
    return validate_paths([folder(key)], settings)


def found(problems) -> list[tuple[str, int, str]]:
    return [(p.file, p.line, p.code) for p in problems]


# -- the real CLI, as subprocesses started together (they take ~1.4 s each to import) ----------

@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def problems(self) -> list[tuple[str, int, str]]:
        return [(m["file"], int(m["line"]), m["code"])
                for m in map(PROBLEM_LINE.match, self.out.splitlines()) if m]

    def problems_in(self, key: str) -> list[tuple[str, int, str]]:
        return [p for p in self.problems if p[0] == bpmn_file(key)]


SCRIPT_CASES = [
    # fixture, text on the offending line, what the message must name
    ("script_dunder_import", "__import__('os').system('id')", "__import__"),
    ("script_import_os", "import os\nos.system", "import"),
    ("script_subclasses", "().__class__.__base__.__subclasses__()", "__class__"),
    ("script_private_attr", "x._secret", "_secret"),
    ("script_open", "open('/etc/passwd')", "open"),
]

REFUSED = ["doctype", "xxe", "billion_laughs", "utf16_doctype"] + [key for key, _, _ in SCRIPT_CASES]
CLI_RUNS = {
    "shipped": ["process_definitions", "forms"],
    # one run over several files keeps the suite fast; each test checks the lines of its own file
    "refused": [str(folder(key)) for key in REFUSED],
    "json": ["--json", str(folder("many_problems"))],
    "narrow": [str(folder("form_missing"))],
}


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> dict[str, Run]:
    tmp = tmp_path_factory.mktemp("cli")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJFLOW_") and k not in ("COLUMNS", "LINES")}
    env["DJFLOW_DATABASE_URL"] = f"sqlite:///{tmp / 'djflow.db'}"
    procs = {}
    for name, args in CLI_RUNS.items():
        # Rich wraps at the terminal width (80 when piped); see test_cli_lines_are_not_wrapped_when_piped.
        # Everywhere else a wide terminal keeps each problem on one line so its parts can be checked.
        run_env = {**env, "COLUMNS": "80" if name == "narrow" else "100000"}
        procs[name] = subprocess.Popen([sys.executable, "-m", "engine.cli", "validate", *args], cwd=REPO_ROOT,
                                       env=run_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    runs = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        runs[name] = Run(proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))
    return runs


# -- 1. the shipped definitions ----------------------------------------------------------------

def test_shipped_process_definitions_and_forms_validate_clean(cli, cfg):
    run = cli["shipped"]
    assert run.code == 0, run.out + run.err
    assert "DJ" not in run.out and run.problems == []
    # ...and that is because they were checked, not because nothing was found
    processes, forms = collect([REPO_ROOT / "process_definitions", REPO_ROOT / "forms"], cfg)
    assert "approval_chain" in {p.name for p in processes}
    assert {"approval_request", "approval_opinion"} <= {f.name for f in forms}
    assert validate_paths([REPO_ROOT / "process_definitions", REPO_ROOT / "forms"], cfg) == []


def test_fixture_templates_are_clean(cfg):
    """The shape every defect fixture is derived from validates, so each failure below is its defect."""
    assert validate("ok_minimal", cfg) == []
    assert validate("ok_gateway", cfg) == []


# -- 2. DTDs, entities, encodings ------------------------------------------------------------------

def test_doctype_is_refused_with_its_line(cli):
    run = cli["refused"]
    assert run.code == 1, run.out + run.err
    assert run.problems_in("doctype") == [(bpmn_file("doctype"), line_of("doctype", "<!DOCTYPE"), "DJ002")]


def test_external_entity_is_refused_and_never_read(cli):
    assert "&xxe;" in text_of("xxe") and 'SYSTEM "file:///etc/passwd"' in text_of("xxe")
    run = cli["refused"]
    assert run.code == 1, run.out + run.err
    assert run.problems_in("xxe") == [(bpmn_file("xxe"), line_of("xxe", "<!DOCTYPE"), "DJ002")]
    passwd = Path("/etc/passwd")
    if passwd.is_file():
        for secret in filter(None, passwd.read_text(errors="replace").splitlines()):
            assert secret not in run.out and secret not in run.err


def test_billion_laughs_is_refused_quickly(cli, cfg):
    run = cli["refused"]
    assert run.code == 1, run.out + run.err
    expected = [(bpmn_file("billion_laughs"), line_of("billion_laughs", "<!DOCTYPE"), "DJ002")]
    assert run.problems_in("billion_laughs") == expected
    # Refused before any expansion: the entities would take gigabytes (no wall-clock limit here,
    # those flake on a loaded machine).
    tracemalloc.start()
    try:
        problems = validate("billion_laughs", cfg)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 * 2**20
    assert found(problems) == expected


def test_utf16_file_with_doctype_is_refused_by_the_cli(cli):
    assert text_of("utf16_doctype", "utf-16").startswith('<?xml version="1.0" encoding="UTF-16"?>')
    run = cli["refused"]
    assert run.code == 1, run.out + run.err
    expected = line_of("utf16_doctype", "<!DOCTYPE", "utf-16")
    assert run.problems_in("utf16_doctype") == [(bpmn_file("utf16_doctype"), expected, "DJ002")]


@pytest.mark.parametrize("key, encoding", [("utf16_doctype", "utf-16"), ("utf7_doctype", "utf-7")])
def test_doctype_in_a_non_ascii_compatible_encoding_is_refused_on_its_line(cfg, key, encoding):
    # The raw bytes hold no "<!DOCTYPE"; the declaration is found in the decoded text.
    assert b"<!DOCTYPE" not in (folder(key) / f"{key}.bpmn").read_bytes()
    assert found(validate(key, cfg)) == [(bpmn_file(key), line_of(key, "<!DOCTYPE", encoding), "DJ002")]


def test_utf16_file_without_dtd_is_accepted(cfg):
    assert validate("utf16_clean", cfg) == []
    source, problems = load_process(folder("utf16_clean"), cfg, form_exists=lambda key: True)
    assert problems == [] and "UTF-16 编码的流程" in source.bpmn_xml


# -- 3. malformed XML --------------------------------------------------------------------------

def test_unclosed_tag_is_reported_on_its_own_line(cfg):
    # <bpmn:startEvent> is never closed; libxml2 only notices at </bpmn:process>, much further down
    problems = validate("malformed_unclosed", cfg)
    expected = line_of("malformed_unclosed", '<bpmn:startEvent id="start"')
    assert found(problems) == [(bpmn_file("malformed_unclosed"), expected, "DJ003")]
    assert "startEvent" in problems[0].message


# -- 4. size limit -----------------------------------------------------------------------------

def test_file_over_the_size_limit_is_refused(tmp_path):
    size = (folder("ok_minimal") / "ok_minimal.bpmn").stat().st_size
    assert validate("ok_minimal", settings_for(tmp_path, bpmn_max_bytes=size)) == []
    problems = validate("ok_minimal", settings_for(tmp_path, bpmn_max_bytes=size - 1))
    assert found(problems) == [(bpmn_file("ok_minimal"), 1, "DJ001")]
    assert str(size) in problems[0].message


def test_oversized_file_is_refused_without_reading_it(tmp_path):
    big = tmp_path / "big"
    big.mkdir()
    path = big / "big.bpmn"
    path.write_bytes((folder("ok_minimal") / "ok_minimal.bpmn").read_bytes())
    os.truncate(path, 64 * 1024 * 1024)  # sparse: cheap on disk, 64 MiB if read
    tracemalloc.start()
    try:
        problems = validate_paths([big], settings_for(tmp_path, bpmn_max_bytes=1024 * 1024))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert found(problems) == [(str(path), 1, "DJ001")]
    assert peak < 8 * 1024 * 1024, f"validate allocated {peak} bytes for a file it must refuse unread"


# -- 5. XSD ------------------------------------------------------------------------------------

def test_unknown_bpmn_element_fails_the_xsd_on_its_line(cfg):
    problems = validate("xsd_unknown_element", cfg)
    expected = line_of("xsd_unknown_element", "<bpmn:approvalTask")
    assert found(problems) == [(bpmn_file("xsd_unknown_element"), expected, "DJ010")]
    assert "approvalTask" in problems[0].message


# -- 6. forms ----------------------------------------------------------------------------------

def test_user_task_without_form_and_with_unknown_form(cfg):
    problems = validate("form_missing", cfg)
    assert found(problems) == [
        (bpmn_file("form_missing"), line_of("form_missing", '<bpmn:userTask id="dept_review"'), "DJ101"),
        (bpmn_file("form_missing"), line_of("form_missing", 'value="no_such_form"'), "DJ102"),
    ]
    assert "dept_review" in problems[0].message and "no_such_form" in problems[1].message


# -- 7/8. assignment rules ---------------------------------------------------------------------

@pytest.mark.parametrize("rule", ["boss:everyone", "position:head", "position:head@initiator.planet"])
def test_bad_assignment_rule_is_reported_on_its_property_line(cfg, rule):
    problems = validate("bad_rules", cfg)
    assert [p.code for p in problems] == ["DJ201"] * 3
    at = line_of("bad_rules", f'value="{rule}"')
    here = [p for p in problems if p.line == at]
    assert len(here) == 1 and here[0].file == bpmn_file("bad_rules")
    assert f"'{rule}'" in here[0].message, here[0].message


def test_first_user_task_must_belong_to_the_initiator(cfg):
    problems = validate("first_not_initiator", cfg)
    expected = line_of("first_not_initiator", 'value="user:zhangsan"')
    assert found(problems) == [(bpmn_file("first_not_initiator"), expected, "DJ203")]
    assert "user:zhangsan" in problems[0].message


# -- 9. restricted scripts ---------------------------------------------------------------------

@pytest.mark.parametrize("key, needle, names", SCRIPT_CASES, ids=[c[0] for c in SCRIPT_CASES])
def test_unsafe_script_is_refused_on_its_line(cfg, key, needle, names):
    problems = validate(key, cfg)
    assert problems, f"{key} passed validation"
    expected = line_of(key, needle)
    assert {(p.file, p.line, p.code) for p in problems} == {(bpmn_file(key), expected, "DJ301")}
    assert any(names in p.message for p in problems), [p.message for p in problems]


def test_cli_refuses_every_unsafe_script_with_exit_1(cli):
    run = cli["refused"]
    assert run.code == 1, run.out + run.err
    for key, needle, _ in SCRIPT_CASES:
        printed = set(run.problems_in(key))
        assert printed == {(bpmn_file(key), line_of(key, needle), "DJ301")}, (key, run.out)


def test_script_in_a_called_process_of_the_same_file_is_checked(cfg):
    problems = validate("script_in_called_process", cfg)
    expected = line_of("script_in_called_process", "__import__('os')")
    assert found(problems) == [(bpmn_file("script_in_called_process"), expected, "DJ301")]


# -- 10. node properties -----------------------------------------------------------------------

def test_invalid_node_property_values(cfg):
    problems = validate("bad_properties", cfg)
    bad = ['value="most"', 'value="3 days"', 'value="approve,reject,teleport"',
           'value="P1DT"', 'value="remind:2then:escalate"']
    assert found(problems) == [(bpmn_file("bad_properties"), line_of("bad_properties", v), "DJ401") for v in bad]
    assert "teleport" in problems[2].message and "most" in problems[0].message


# -- 11. SpiffWorkflow-level structure errors --------------------------------------------------

def test_spiff_structure_error_points_at_the_element(cfg):
    # XSD allows a user task with two outgoing flows; SpiffBpmnParser refuses it
    problems = validate("spiff_two_outgoing", cfg)
    expected = line_of("spiff_two_outgoing", '<bpmn:userTask id="dept_review"')
    assert expected != 1
    assert found(problems) == [(bpmn_file("spiff_two_outgoing"), expected, "DJ020")]


def test_spiff_error_without_an_element_id_still_gets_a_real_line(cfg):
    # "process 'archive_process' was not found" comes from Spiff without node or id
    problems = validate("spiff_missing_process", cfg)
    expected = line_of("spiff_missing_process", "<bpmn:callActivity")
    assert found(problems) == [(bpmn_file("spiff_missing_process"), expected, "DJ020")]
    assert "archive_process" in problems[0].message


# -- 12/13. JSON output, several problems -------------------------------------------------------

def many_problems_expected() -> list[tuple[str, int, str]]:
    key = "many_problems"
    return sorted([
        (bpmn_file(key), line_of(key, '<bpmn:userTask id="dept_review"'), "DJ101"),
        (bpmn_file(key), line_of(key, 'value="most"'), "DJ401"),
        (bpmn_file(key), line_of(key, 'value="no_such_form"'), "DJ102"),
        (bpmn_file(key), line_of(key, 'value="boss:everyone"'), "DJ201"),
        (bpmn_file(key), line_of(key, 'value="approve,fly"'), "DJ401"),
        (bpmn_file(key), line_of(key, "x.__dict__"), "DJ301"),
    ], key=lambda t: t[1])


def test_every_problem_in_a_file_is_reported_sorted_by_line(cfg):
    problems = validate("many_problems", cfg)
    assert found(problems) == many_problems_expected()
    assert [p.line for p in problems] == sorted(p.line for p in problems)


def test_json_output_lists_the_same_problems(cli, cfg):
    run = cli["json"]
    assert run.code == 1, run.out + run.err
    payload = json.loads(run.out)
    assert payload["ok"] is False
    assert payload["problems"] == [p.as_dict() for p in validate("many_problems", cfg)]
    assert [(p["file"], p["line"], p["code"]) for p in payload["problems"]] == many_problems_expected()


def test_cli_lines_are_not_wrapped_when_piped(cli):
    run = cli["narrow"]
    assert run.code == 1, run.out + run.err
    lines = [line for line in run.out.splitlines() if line.strip()]
    assert lines and all(PROBLEM_LINE.match(line) for line in lines), run.out
    assert [(f, c) for f, _, c in run.problems] == [(bpmn_file("form_missing"), "DJ101"),
                                                    (bpmn_file("form_missing"), "DJ102")]
