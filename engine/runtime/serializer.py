"""Instance state serialization without the spec.

SpiffWorkflow's serializer writes the whole process spec into every workflow it saves. djflow
stores the spec once per definition version (`process_definitions.spec_json`) and saves each
instance's state without it, then rebuilds the workflow around the cached spec object on load.
That keeps instance rows small and loading cheap: restoring a spec dict costs more than
restoring the few tasks of an approval chain.

`STATE_VERSION` is djflow's format version, stored in `process_instances.serializer_version`.
Each change of format gets one documented upgrade function in `UPGRADES`, as SpiffWorkflow does
in `bpmn/serializer/migration/`. Spiff's own format version travels inside the state
(`spiff_version`); a Spiff upgrade that changes it needs a djflow upgrade function too.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from uuid import UUID

from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter
from SpiffWorkflow.bpmn.serializer.workflow import VERSION as SPIFF_VERSION
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

from engine import jsontext

STATE_VERSION = 1


class SpeclessWorkflowConverter(BpmnWorkflowConverter):
    """Converts a BpmnWorkflow without its spec; restoring needs the spec passed in."""

    def to_dict(self, workflow):
        dct = super(BpmnWorkflowConverter, self).to_dict(workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct, spec=None, subprocess_specs=None, script_engine=None):
        workflow = self.target_class(spec, subprocess_specs, script_engine=script_engine, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


_REGISTRY = BpmnWorkflowSerializer.configure(SPIFF_CONFIG)
# Registering replaces the default BpmnWorkflow converter in the registry with the specless one.
_WORKFLOW_CONVERTER = SpeclessWorkflowConverter(BpmnWorkflow, _REGISTRY)


class StateVersionError(Exception):
    pass


# Upgrades from version N to N+1, each a function of the state dict. Empty: version 1 is the first.
UPGRADES: dict[int, Callable[[dict], None]] = {}


def dump_spec(spec, subprocess_specs: dict) -> str:
    """The spec part of a definition version, as JSON (stored once in process_definitions)."""
    return json.dumps({
        "spiff_version": SPIFF_VERSION,
        "spec": _REGISTRY.convert(spec),
        "subprocess_specs": {name: _REGISTRY.convert(s) for name, s in subprocess_specs.items()},
    }, ensure_ascii=False)


def load_spec(spec_json: str):
    """Restore (spec, subprocess_specs) from `dump_spec` output."""
    dct = json.loads(spec_json)
    return (_REGISTRY.restore(dct["spec"]),
            {name: _REGISTRY.restore(s) for name, s in dct["subprocess_specs"].items()})


def dump_state(workflow: BpmnWorkflow) -> str:
    dct = _WORKFLOW_CONVERTER.to_dict(workflow)
    dct["spiff_version"] = SPIFF_VERSION
    return jsontext.dumps(dct)


def load_state(state: str, version: int, *, spec, subprocess_specs: dict, script_engine) -> BpmnWorkflow:
    dct = jsontext.loads(state)
    if version > STATE_VERSION:
        raise StateVersionError(f"instance state version {version} is newer than this djflow ({STATE_VERSION})")
    for v in range(version, STATE_VERSION):
        UPGRADES[v](dct)
    if dct.pop("spiff_version", SPIFF_VERSION) != SPIFF_VERSION:
        raise StateVersionError("instance state was written by another SpiffWorkflow serializer version; "
                                "add an upgrade function in engine/runtime/serializer.py")
    return _WORKFLOW_CONVERTER.from_dict(dct, spec=spec, subprocess_specs=subprocess_specs,
                                         script_engine=script_engine)
