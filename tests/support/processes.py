"""Small approval processes written on the fly for scenario tests, and deploying them.

`write_process(folder, key, steps)` writes a BPMN file: start → 发起申请 (form multi_request) →
the steps → end. A step is a node dict {id, name, rule, props} (`node`), a service task
(`service`), or {"parallel": [[…], […]]}, a parallel split whose branches are lists of steps.
"""
from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import quoteattr

from engine.db import Database
from engine.definitions import deploy_paths

FORMS = Path(__file__).parent / "forms"


def node(id: str, name: str, rule: str, **props: str) -> dict:
    return {"id": id, "name": name, "rule": rule, "props": props}


def service(id: str, name: str, operator: str, params: dict[str, str], result: str | None = None,
            retry: tuple[int, int] | None = None) -> dict:
    """A bpmn:serviceTask step; each parameter value is an expression (a literal string: "'…'")."""
    return {"id": id, "name": name, "service": {"operator": operator, "params": params, "result": result,
                                                "retry": retry}}


def _service_task(n: dict, incoming: str, outgoing: str) -> str:
    sv = n["service"]
    params = "".join(f'<spiffworkflow:parameter id="{k}" type="any" value={quoteattr(v)} />'
                     for k, v in sv["params"].items())
    retry = (f'<spiffworkflow:retry retries="{sv["retry"][0]}" backoff_base="{sv["retry"][1]}" />'
             if sv["retry"] else "")
    result = f' resultVariable="{sv["result"]}"' if sv["result"] else ""
    return (f'<bpmn:serviceTask id="{n["id"]}" name="{n["name"]}"><bpmn:extensionElements>'
            f'<spiffworkflow:serviceTaskOperator id="{sv["operator"]}"{result}>'
            f'<spiffworkflow:parameters>{params}</spiffworkflow:parameters>{retry}'
            '</spiffworkflow:serviceTaskOperator></bpmn:extensionElements>'
            f'<bpmn:incoming>{incoming}</bpmn:incoming><bpmn:outgoing>{outgoing}</bpmn:outgoing></bpmn:serviceTask>')


def _user_task(n: dict, incoming: str, outgoing: str) -> str:
    props = {"formJsonSchemaFilename": "approval_opinion", "assignee": n["rule"], **n["props"]}
    lines = "".join(f'<spiffworkflow:property name="{k}" value={quoteattr(v)} />' for k, v in props.items())
    return (f'<bpmn:userTask id="{n["id"]}" name="{n["name"]}"><bpmn:extensionElements><spiffworkflow:properties>'
            f'{lines}</spiffworkflow:properties></bpmn:extensionElements>'
            f'<bpmn:incoming>{incoming}</bpmn:incoming><bpmn:outgoing>{outgoing}</bpmn:outgoing></bpmn:userTask>')


class _Writer:
    def __init__(self):
        self.parts: list[str] = []
        self.n = 0

    def flow(self, src: str, dst: str) -> str:
        self.n += 1
        fid = f"flow_{self.n}"
        self.parts.append(f'<bpmn:sequenceFlow id="{fid}" sourceRef="{src}" targetRef="{dst}" />')
        return fid

    def chain(self, steps: list[dict], src: str, end: str) -> None:
        """Write steps between element `src` and element `end`."""
        prev = src
        for step in steps:
            if "parallel" in step:
                split, join = f"split_{self.n}", f"join_{self.n}"
                self.parts.append(f'<bpmn:parallelGateway id="{split}" />')
                self.parts.append(f'<bpmn:parallelGateway id="{join}" />')
                self.flow(prev, split)
                for branch in step["parallel"]:
                    self.chain(branch, split, join)
                prev = join
                continue
            self.flow(prev, step["id"])
            self.parts.append(("__TASK__", step, prev))  # its incoming/outgoing are filled in by render()
            prev = step["id"]
        self.flow(prev, end)

    def render(self) -> str:
        out, incoming, outgoing = [], {}, {}
        for p in self.parts:
            if isinstance(p, str) and p.startswith("<bpmn:sequenceFlow"):
                fid = p.split('id="')[1].split('"')[0]
                src = p.split('sourceRef="')[1].split('"')[0]
                dst = p.split('targetRef="')[1].split('"')[0]
                outgoing.setdefault(src, []).append(fid)
                incoming.setdefault(dst, []).append(fid)
        for p in self.parts:
            if isinstance(p, tuple):
                _, step, _prev = p
                render = _service_task if "service" in step else _user_task
                out.append(render(step, incoming[step["id"]][0], outgoing[step["id"]][0]))
            else:
                out.append(p)
        return "".join(out)


def write_process(folder: Path, key: str, steps: list[dict]) -> Path:
    w = _Writer()
    w.flow("start", "submit_request")
    w.chain(steps, "submit_request", "end")
    body = w.render()
    submit = ('<bpmn:userTask id="submit_request" name="发起申请"><bpmn:extensionElements><spiffworkflow:properties>'
              '<spiffworkflow:property name="formJsonSchemaFilename" value="multi_request" />'
              '<spiffworkflow:property name="assignee" value="initiator" />'
              '</spiffworkflow:properties></bpmn:extensionElements>'
              '<bpmn:incoming>flow_1</bpmn:incoming>'
              f'<bpmn:outgoing>{_first_out(body)}</bpmn:outgoing></bpmn:userTask>')
    xml = ('<?xml version="1.0" encoding="UTF-8"?>'
           '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
           'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="defs" '
           'targetNamespace="https://djflow.cn/bpmn">'
           f'<bpmn:process id="{key}" name="{key}" isExecutable="true">'
           '<bpmn:startEvent id="start"><bpmn:outgoing>flow_1</bpmn:outgoing></bpmn:startEvent>'
           f'{submit}{body}<bpmn:endEvent id="end" /></bpmn:process></bpmn:definitions>')
    d = folder / key
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{key}.bpmn").write_text(xml, encoding="utf-8")
    return d


def _first_out(body: str) -> str:
    marker = 'sourceRef="submit_request"'
    i = body.index(marker)
    return body[:i].rsplit('id="', 1)[1].split('"')[0]


def deploy(db: Database, settings, *folders: Path, actor_id: int | None = None) -> None:
    with db.unit_of_work() as s:
        deploy_paths(s, [FORMS / "multi_request", *folders], settings, actor_id=actor_id)


def library_dirs(root: Path, processes: list[str], forms: tuple[str, ...]) -> tuple[Path, Path]:
    """process_definitions/ and forms/ folders under `root` holding only the named shipped processes
    and the shipped forms whose keys start with one of `forms` (links to the real ones): a part of
    the library, which a fresh database initialises with in a fraction of the time of all of it."""
    from engine.config import REPO_ROOT

    procs, form_dir = root / "process_definitions", root / "forms"
    procs.mkdir(parents=True)
    form_dir.mkdir(parents=True)
    for key in processes:
        (procs / key).symlink_to(REPO_ROOT / "process_definitions" / key)
    for form in (REPO_ROOT / "forms").iterdir():
        if form.name.startswith(forms) and (form / "schema.json").is_file():
            (form_dir / form.name).symlink_to(form)
    return procs, form_dir


def install_library(url: str, root: Path, processes: list[str], forms: tuple[str, ...], **overrides):
    """A database initialised like `djflow init --demo` with only that part of the library, and an
    engine on it (the caller disposes of engine.db)."""
    from engine import WorkflowEngine
    from engine.setup import init
    from tests.conftest import make_settings

    procs, form_dir = library_dirs(root, processes, forms)
    settings = make_settings(url, process_dir=procs, forms_dir=form_dir, **overrides)
    db = Database(url)
    init(db, settings, demo=True)
    return WorkflowEngine(db, settings)
