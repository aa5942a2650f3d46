"""Definition versions as the runtime uses them, cached per engine.

A process or form version never changes once written, so its restored spec, settings, node
configuration and script engine are cached for the life of the engine (one per database).
"""
from __future__ import annotations

import functools
import threading
from dataclasses import dataclass

from jsonschema import Draft202012Validator

from engine.definitions import process_settings
from engine.errors import NotFound
from engine.forms.store import make_validator, validate_data
from engine.runtime.helpers import HELPERS
from engine.runtime.scripts import make_script_engine
from engine.runtime.serializer import load_spec
from engine.runtime.services import make_asynchronous
from engine.scheduler.timers import has_timers
from engine.sql import Sql

IMPLEMENTED_ACTIONS = ("submit", "approve", "reject")


@dataclass(frozen=True)
class NodeConfig:
    node_id: str
    name: str
    form_key: str | None
    rule: str
    lane: str | None
    initiator: bool
    properties: dict
    # a node of a process this one calls (engine/definitions.py): that process's key
    called: str | None = None
    # the called process's own first task (发起申请): submitted by the call with the caller's data
    call_initiator: bool = False

    @property
    def actions(self) -> tuple[str, ...]:
        """What the assignee may do here (issue-2 scope: submit / approve / reject)."""
        buttons = self.properties.get("buttons")
        if buttons:
            wanted = [b.strip() for b in buttons.split(",")]
            return tuple(a for a in wanted if a in IMPLEMENTED_ACTIONS)
        return ("submit",) if self.initiator else ("approve", "reject")


@dataclass(frozen=True)
class FormVersion:
    key: str
    version: int
    title: str
    schema: dict
    ui_schema: dict
    validator: Draft202012Validator


@dataclass(frozen=True)
class DefinitionRuntime:
    id: int
    key: str
    version: int
    name: str
    spec: object
    subprocess_specs: dict
    settings: dict
    form_refs: dict
    nodes: dict
    script_engine: object
    has_timers: bool = False  # any timer event: its instances get a timer job (engine/scheduler/timers.py)
    has_services: bool = False  # any service task (engine/runtime/services.py)
    has_sla: bool = False  # any approval node with a due time (engine/scheduler/sla.py)

    @functools.cached_property
    def confidential(self) -> frozenset[str]:
        """Nodes marked `confidential`: what each assignee submits there is shown to nobody else."""
        return frozenset(n for n, raw in (self.nodes or {}).items()
                         if (raw.get("properties") or {}).get("confidential") == "true")

    def node(self, node_id: str) -> NodeConfig:
        raw = self.nodes.get(node_id)
        if raw is None:  # a manual task without djflow properties: the initiator handles it
            return NodeConfig(node_id, node_id, None, "initiator", None, False, {})
        return NodeConfig(node_id, raw["name"], raw["form_key"], raw["rule"] or "initiator", raw["lane"],
                          raw["initiator"], raw["properties"], raw.get("called"), bool(raw.get("call_initiator")))


def call_submission(sql: Sql, d: DefinitionRuntime, node: NodeConfig, data: dict) -> dict:
    """What the call hands the called process's 发起申请 (`node`): the values of its form's fields
    in the data the call activity passed in, checked against that form; ValueError naming what
    does not fit (the caller's mapping, e.g. its preScript, is wrong)."""
    if not node.form_key:
        return {}
    row = sql.row("SELECT title, schema FROM form_definitions WHERE key = ? AND version = ?",
                  (node.form_key, d.form_refs.get(node.form_key)))
    if row is None:
        raise ValueError(f"表单 {node.form_key} 不存在")
    schema = Sql.from_json(row[1])
    values = {k: data[k] for k in (schema.get("properties") or {}) if k in data}
    found = validate_data(schema, values, make_validator(schema))
    if found:
        raise ValueError(f"调用「{node.called}」时交给其「{node.name}」的数据不符合表单「{row[0]}」："
                         + "；".join(f"{p.field or '表单'} {p.reason}" for p in found))
    return values


class DefinitionCache:
    def __init__(self, *, script_time_limit: float):
        self._lock = threading.Lock()
        self._by_id: dict[int, DefinitionRuntime] = {}
        self._forms: dict[tuple[str, int], FormVersion] = {}
        self._script_time_limit = script_time_limit

    def get(self, sql: Sql, definition_id: int) -> DefinitionRuntime:
        cached = self._by_id.get(definition_id)
        if cached is not None:
            return cached
        row = sql.row("SELECT id, key, version, name, spec_json, settings, form_refs, nodes "
                      "FROM process_definitions WHERE id = ?", (definition_id,))
        if row is None:
            raise NotFound(f"流程定义 {definition_id} 不存在")
        spec, subprocess_specs = load_spec(row[4])
        values = process_settings(Sql.from_json(row[5]))
        runtime = DefinitionRuntime(
            id=row[0], key=row[1], version=row[2], name=row[3], spec=spec,
            subprocess_specs=subprocess_specs, settings=values, form_refs=Sql.from_json(row[6]),
            nodes=Sql.from_json(row[7]),
            script_engine=make_script_engine({"settings": values, **HELPERS},
                                             time_limit=self._script_time_limit),
            has_timers=has_timers(spec, subprocess_specs),
            has_services=make_asynchronous([spec, *subprocess_specs.values()]),
            has_sla=any((n.get("properties") or {}).get("dueIn") for n in (Sql.from_json(row[7]) or {}).values()))
        with self._lock:
            return self._by_id.setdefault(definition_id, runtime)

    def form_for(self, sql: Sql, key: str, version: int) -> FormVersion:
        found = self._forms.get((key, version))
        if found is None:
            row = sql.row("SELECT title, schema, ui_schema FROM form_definitions WHERE key = ? AND version = ?",
                          (key, version))
            if row is None:
                raise NotFound(f"表单 {key} v{version} 不存在")
            schema = Sql.from_json(row[1])
            with self._lock:
                found = self._forms.setdefault((key, version), FormVersion(
                    key, version, row[0], schema, Sql.from_json(row[2]), make_validator(schema)))
        return found
