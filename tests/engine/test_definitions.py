"""Deploying definitions: versions only on change, instances pinned to the version they started on."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from sqlalchemy import select

from engine import WorkflowEngine
from engine.config import REPO_ROOT
from engine.definitions import deploy_paths
from engine.models import AuditEvent, FormDefinition, ProcessDefinition
from tests.helpers import REQUEST, only_task


def copy_process(tmp_path: Path, threshold: int) -> Path:
    folder = tmp_path / "approval_chain"
    shutil.copytree(REPO_ROOT / "process_definitions" / "approval_chain", folder)
    meta = json.loads((folder / "process.json").read_text(encoding="utf-8"))
    meta["settings"]["amount_threshold"]["default"] = threshold
    (folder / "process.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    return folder


def versions(engine: WorkflowEngine, model, key: str) -> list[int]:
    with engine.db.read() as s:
        return list(s.scalars(select(model.version).where(model.key == key).order_by(model.version)))


def test_redeploying_unchanged_content_makes_no_new_version(engine: WorkflowEngine, settings):
    with engine.db.unit_of_work() as s:
        results = deploy_paths(s, [settings.forms_dir, settings.process_dir], settings)
    shipped = {p.name for p in settings.process_dir.iterdir() if (p / f"{p.name}.bpmn").is_file()}
    shipped |= {p.name for p in settings.forms_dir.iterdir() if (p / "schema.json").is_file()}
    assert {"approval_chain", "approval_request", "approval_opinion", "member_development"} <= shipped
    # every shipped process and form was deployed once by init, and deploying again writes nothing
    assert {r.key for r in results} == shipped
    assert {(r.version, r.created) for r in results} == {(1, False)}
    assert versions(engine, ProcessDefinition, "approval_chain") == [1]


def test_running_instances_keep_the_version_they_started_on(engine: WorkflowEngine, settings, tmp_path):
    # given an instance started on v1 (threshold 5000)
    old = engine.start(key="approval_chain", username="staff1", data=REQUEST)
    # when v2 raises the threshold to 20000
    with engine.db.unit_of_work() as s:
        (result,) = deploy_paths(s, [copy_process(tmp_path, 20000)], settings)
    assert (result.version, result.created) == (2, True)
    new = engine.start(key="approval_chain", username="staff1", data=REQUEST)

    # then the old instance still needs 主要负责人 for 12000, the new one does not
    for approver in ("kezhang", "fenguan"):
        for task in engine.list_tasks(username=approver):
            engine.act(task_id=task.id, action="approve", username=approver)
    assert engine.instance(instance_id=old.instance_id).definition_version == 1
    assert engine.instance(instance_id=new.instance_id).definition_version == 2
    assert engine.instance(instance_id=new.instance_id).status == "completed"
    assert only_task(engine, "juzhang").instance_id == old.instance_id


def test_changed_form_gets_a_new_version_and_publishing_is_audited(engine: WorkflowEngine, settings, tmp_path):
    form = tmp_path / "approval_opinion"
    shutil.copytree(REPO_ROOT / "forms" / "approval_opinion", form)
    schema = json.loads((form / "schema.json").read_text(encoding="utf-8"))
    schema["properties"]["opinion"]["maxLength"] = 200
    (form / "schema.json").write_text(json.dumps(schema, ensure_ascii=False), encoding="utf-8")
    with engine.db.unit_of_work() as s:
        (result,) = deploy_paths(s, [form], settings)
    assert (result.key, result.version, result.created) == ("approval_opinion", 2, True)
    assert versions(engine, FormDefinition, "approval_opinion") == [1, 2]
    with engine.db.read() as s:
        published = [e.payload for e in s.scalars(select(AuditEvent).where(AuditEvent.action == "form.publish"))]
    assert {"key": "approval_opinion", "version": 2} .items() <= published[-1].items()


def test_a_broken_set_deploys_nothing(engine: WorkflowEngine, settings, tmp_path):
    good = copy_process(tmp_path / "a", 1)
    bad = tmp_path / "b" / "broken"
    bad.mkdir(parents=True)
    (bad / "broken.bpmn").write_text("<bpmn:definitions", encoding="utf-8")
    import pytest

    from engine import DefinitionInvalid

    with pytest.raises(DefinitionInvalid) as err:
        with engine.db.unit_of_work() as s:
            deploy_paths(s, [good, bad], settings)
    assert [p.code for p in err.value.problems] == ["DJ003"]
    assert versions(engine, ProcessDefinition, "approval_chain") == [1]


def test_a_form_folder_with_an_external_ref_is_refused_like_an_upload(tmp_path, settings):
    from engine.forms.store import load_form_dir

    form = tmp_path / "leak"
    form.mkdir()
    (form / "schema.json").write_text('{"type": "object", "properties": {"x": {"$ref": "http://10.0.0.1/s.json"}}}',
                                      encoding="utf-8")
    source, problems = load_form_dir(form, max_bytes=settings.form_max_bytes)
    assert source is None and [p.code for p in problems] == ["DJ602"]
    assert "properties/x/$ref" in problems[0].message
