"""Timer start events (engine/scheduler/schedules.py): a monthly 主题党日 started for every 党支部 by
its secretary, the right number of times, once each however many ticks run; a branch without a
secretary is skipped and logged; process.json and the BPMN must agree."""
from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from engine import WorkflowEngine, now
from engine.clock import as_utc
from engine.models import AuditEvent, OrgUnit, ProcessInstance, ProcessSchedule, User
from tests.scheduler.test_timers import NS, flow, timer, user_task
from tests.support.processes import deploy


def monthly(folder, key: str, cycle: str, schedule: dict | None) -> object:
    xml = (f'<?xml version="1.0" encoding="UTF-8"?><bpmn:definitions {NS} id="defs" '
           f'targetNamespace="https://djflow.cn/bpmn"><bpmn:process id="{key}" name="主题党日" isExecutable="true">'
           f'<bpmn:startEvent id="start" name="每月5日"><bpmn:outgoing>f0</bpmn:outgoing>{timer("timeCycle", cycle)}'
           '</bpmn:startEvent>' + user_task("plan", "拟定主题党日方案", "initiator", ["f0"], ["f1"])
           + '<bpmn:endEvent id="end"><bpmn:incoming>f1</bpmn:incoming></bpmn:endEvent>'
           + flow("f0", "start", "plan") + flow("f1", "plan", "end") + "</bpmn:process></bpmn:definitions>")
    d = folder / key
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{key}.bpmn").write_text(xml, encoding="utf-8")
    meta = {"key": key, "name": "主题党日"}
    if schedule is not None:
        meta["schedule"] = schedule
    (d / "process.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    return d


EACH_BRANCH = {"each": "branch", "initiator": "position:secretary"}


@pytest.fixture
def engine(db_url, tmp_path):
    """The demo organisation without the shipped processes: their own schedules (三会一课, 党费 …)
    would start instances in these tests' windows too."""
    from engine.db import Database
    from engine.setup import init
    from tests.conftest import make_settings

    empty = tmp_path / "no-shipped-processes"
    empty.mkdir()
    settings = make_settings(db_url, process_dir=empty)
    database = Database(settings.database_url)
    init(database, settings, demo=True)
    yield WorkflowEngine(database, settings)
    database.dispose()


@pytest.fixture
def t0():
    return now().replace(microsecond=0)


@pytest.fixture
def party_day(engine: WorkflowEngine, tmp_path, t0) -> WorkflowEngine:
    first = (t0 + timedelta(hours=1)).isoformat()
    deploy(engine.db, engine.settings, monthly(tmp_path, "party_day", f"R3/{first}/P30D", EACH_BRANCH))
    return engine


def instances(engine: WorkflowEngine) -> list[ProcessInstance]:
    with engine.db.read() as s:
        return list(s.scalars(select(ProcessInstance).where(ProcessInstance.definition_key == "party_day")
                              .order_by(ProcessInstance.id)))


def test_every_branch_gets_one_instance_per_month_three_times_then_none(party_day: WorkflowEngine, t0):
    assert party_day.fire_schedules() == 0  # not due: the rows are planned
    with party_day.db.read() as s:
        rows = list(s.scalars(select(ProcessSchedule)))
    assert len(rows) == 2 and all(as_utc(r.next_at) == t0 + timedelta(hours=1) for r in rows)
    for month in range(3):
        with time_machine.travel(t0 + timedelta(hours=1, minutes=1) + timedelta(days=30 * month), tick=False):
            assert party_day.fire_schedules() == 2
            assert party_day.fire_schedules() == 0
    with time_machine.travel(t0 + timedelta(days=200), tick=False):
        assert party_day.fire_schedules() == 0
    got = instances(party_day)
    assert len(got) == 6
    titles = {i.title for i in got}
    assert any(t.startswith("第一党支部") for t in titles) and any(t.startswith("第二党支部") for t in titles)
    shuji = party_day.list_tasks(username="shuji")
    assert len(shuji) == 3 and {t.node_id for t in shuji} == {"plan"}
    with party_day.db.read() as s:
        starters = {s.get(User, i.initiator_id).username for i in got}
    assert starters == {"shuji", "zb2shuji"}  # each branch's own secretary
    assert len(party_day.list_tasks(username="zb2shuji")) == 3
    with party_day.db.read() as s:
        assert {r.status for r in s.scalars(select(ProcessSchedule))} == {"ended"}


def test_ticks_at_once_start_each_instance_once(party_day: WorkflowEngine, t0):
    party_day.fire_schedules()
    with time_machine.travel(t0 + timedelta(hours=2), tick=False):
        results, errors = [], []

        def tick():
            try:
                results.append(party_day.fire_schedules())
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
        threads = [threading.Thread(target=tick) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == [] and sum(results) == 2
    assert len(instances(party_day)) == 2


def test_a_branch_without_a_secretary_is_skipped_and_logged(party_day: WorkflowEngine, t0):
    with party_day.db.unit_of_work() as s:
        parent = s.scalar(select(OrgUnit).where(OrgUnit.code == "sfj-jgdw"))
        org = OrgUnit(code="sfj-jgdw-zb3", name="第三党支部", kind="branch", parent_id=parent.id, sort_order=99)
        s.add(org)
        s.flush()
        org.path = parent.path + f"{org.id}/"
    assert party_day.fire_schedules() == 0  # plans the three branches
    with time_machine.travel(t0 + timedelta(hours=2), tick=False):
        assert party_day.fire_schedules() == 2
    with party_day.db.read() as s:
        [skipped] = s.scalars(select(AuditEvent).where(AuditEvent.action == "schedule.skipped")).all()
    assert skipped.payload["org_code"] == "sfj-jgdw-zb3" and "没有 position:secretary" in skipped.payload["reason"]


def test_the_start_event_and_process_json_must_agree(tmp_path, settings):
    from engine.definitions import validate_paths

    cycle = "R/2027-01-05T09:00:00+08:00/P1M"
    problems = validate_paths([monthly(tmp_path, "no_schedule", cycle, None)], settings)
    assert [p.code for p in problems] == ["DJ501"] and "须在 process.json 中配置 schedule" in problems[0].message
    problems = validate_paths([monthly(tmp_path, "bad_schedule", cycle, {"each": "branch",
                                                                          "initiator": "user:shuji"})], settings)
    assert [p.code for p in problems] == ["DJ501"] and "position:<职务>" in problems[0].message


def test_a_date_start_fires_once(engine: WorkflowEngine, tmp_path, t0):
    d = monthly(tmp_path, "once_day", (t0 + timedelta(minutes=30)).isoformat(), {"initiator": "user:dangwei"})
    bpmn = d / "once_day.bpmn"
    bpmn.write_text(bpmn.read_text(encoding="utf-8").replace("timeCycle", "timeDate"), encoding="utf-8")
    deploy(engine.db, engine.settings, d)
    assert engine.fire_schedules() == 0
    with time_machine.travel(t0 + timedelta(minutes=31), tick=False):
        assert engine.fire_schedules() == 1
    with time_machine.travel(t0 + timedelta(days=40), tick=False):
        assert engine.fire_schedules() == 0
    with engine.db.read() as s:
        [inst] = s.scalars(select(ProcessInstance).where(ProcessInstance.definition_key == "once_day")).all()
        assert s.get(User, inst.initiator_id).username == "dangwei"
        assert s.scalar(select(ProcessSchedule.status).where(ProcessSchedule.definition_key == "once_day")) == "ended"


@pytest.mark.parametrize(("cycle", "expected"), [
    # the 1st of every month stays the 1st; a 30-day step would give 03-03, 04-02 …
    ("R/2027-01-01T09:00:00+08:00/P1M", ["2027-01-01", "2027-02-01", "2027-03-01", "2027-04-01", "2027-05-01"]),
    # the 31st: the last day of shorter months, and the 31st again where there is one
    ("R/2027-01-31T09:00:00+08:00/P1M", ["2027-01-31", "2027-02-28", "2027-03-31", "2027-04-30", "2027-05-31"]),
    # quarterly and yearly
    ("R/2027-01-01T09:00:00+08:00/P3M", ["2027-01-01", "2027-04-01", "2027-07-01", "2027-10-01", "2028-01-01"]),
    ("R/2027-10-01T09:00:00+08:00/P1Y", ["2027-10-01", "2028-10-01", "2029-10-01", "2030-10-01", "2031-10-01"]),
])
def test_month_cycles_keep_to_the_calendar(cycle, expected):
    from datetime import datetime, timezone

    from engine.clock import SHANGHAI
    from engine.runtime.scripts import make_script_engine
    from engine.scheduler.schedules import Timing, next_after, timing

    class Ev:
        def __init__(self, expression):
            from SpiffWorkflow.bpmn.specs.event_definitions.timer import CycleTimerEventDefinition
            self.event_definition = CycleTimerEventDefinition("t", f'"{expression}"')

    t = timing(Ev(cycle), make_script_engine())
    assert isinstance(t, Timing) and t.months in (1, 3, 12)
    got, at = [], datetime(2026, 12, 1, tzinfo=timezone.utc)
    for _ in range(5):
        due, _left = next_after(t, at)
        local = due.astimezone(SHANGHAI)
        assert (local.hour, local.minute) == (9, 0)
        got.append(local.date().isoformat())
        at = due + timedelta(seconds=1)
    assert got == expected
