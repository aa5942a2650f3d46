"""BPMN timers fired by djflow's tick: an interrupting boundary timer escalates, a non-interrupting
cycle fires the right number of times, an intermediate timer waits; each firing once, audited."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import select

from engine import WorkflowEngine, now
from engine.models import AuditEvent, TimerJob
from tests.support.processes import deploy

DATA = {"title": "采购办公桌椅", "amount": 3000}
NS = ('xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
      'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"')


def user_task(id_: str, name: str, rule: str, incoming: list[str], outgoing: list[str], form: str = "approval_opinion"):
    return (f'<bpmn:userTask id="{id_}" name="{name}"><bpmn:extensionElements><spiffworkflow:properties>'
            f'<spiffworkflow:property name="formJsonSchemaFilename" value="{form}" />'
            f'<spiffworkflow:property name="assignee" value="{rule}" /></spiffworkflow:properties>'
            '</bpmn:extensionElements>' + "".join(f"<bpmn:incoming>{f}</bpmn:incoming>" for f in incoming)
            + "".join(f"<bpmn:outgoing>{f}</bpmn:outgoing>" for f in outgoing) + "</bpmn:userTask>")


def flow(id_: str, src: str, dst: str) -> str:
    return f'<bpmn:sequenceFlow id="{id_}" sourceRef="{src}" targetRef="{dst}" />'


def timer(kind: str, value: str) -> str:
    return (f'<bpmn:timerEventDefinition><bpmn:{kind} xsi:type="bpmn:tFormalExpression" '
            f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">"{value}"</bpmn:{kind}></bpmn:timerEventDefinition>')


def with_boundary(id_: str, name: str, interrupting: bool, timer_xml: str, handler: str, *, shared_end: bool) -> str:
    """submit → 科室审批 (kezhang) → end, with a boundary timer on 科室审批 leading to `handler`
    (a user task "escalated" from f3 to f4), which ends at the same end event or its own."""
    ends = ('<bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming><bpmn:incoming>f4</bpmn:incoming>'
            '</bpmn:endEvent>' if shared_end else
            '<bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>'
            '<bpmn:endEvent id="end2"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>')
    return (user_task("first", "科室审批", "user:kezhang", ["f1"], ["f2"])
            + f'<bpmn:boundaryEvent id="{id_}" name="{name}" attachedToRef="first" '
            f'cancelActivity="{str(interrupting).lower()}"><bpmn:outgoing>f3</bpmn:outgoing>{timer_xml}'
            '</bpmn:boundaryEvent>' + handler + ends + flow("f1", "submit_request", "first")
            + flow("f2", "first", "end") + flow("f3", id_, "escalated")
            + flow("f4", "escalated", "end" if shared_end else "end2"))


def process(folder: Path, key: str, body: str) -> Path:
    xml = (f'<?xml version="1.0" encoding="UTF-8"?><bpmn:definitions {NS} id="defs" '
           f'targetNamespace="https://djflow.cn/bpmn"><bpmn:process id="{key}" name="{key}" isExecutable="true">'
           '<bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>'
           + user_task("submit_request", "发起申请", "initiator", ["f0"], ["f1"], form="multi_request")
           + flow("f0", "start", "submit_request") + body + "</bpmn:process></bpmn:definitions>")
    d = folder / key
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{key}.bpmn").write_text(xml, encoding="utf-8")
    return d


@pytest.fixture
def timed(engine: WorkflowEngine, tmp_path) -> WorkflowEngine:
    return deploy_timer_processes(engine, tmp_path)


def deploy_timer_processes(engine: WorkflowEngine, tmp_path: Path) -> WorkflowEngine:
    # 科室审批 with an interrupting 2-second boundary timer: escalated to 局长 when it runs out
    escalate = with_boundary("late", "超时", True, timer("timeDuration", "PT2S"),
                             user_task("escalated", "局长督办", "user:juzhang", ["f3"], ["f4"]), shared_end=True)
    # a non-interrupting cycle: a 催办 note to 党委 every hour, three times, while 科室审批 stays open
    remind = with_boundary("remind", "每小时提醒", False, timer("timeCycle", "R3/PT1H"),
                           user_task("escalated", "督办记录", "user:dangwei", ["f3"], ["f4"]), shared_end=False)
    # an intermediate timer: 公示 for a day between two approvals
    wait = (user_task("first", "科室审批", "user:kezhang", ["f1"], ["f2"])
            + '<bpmn:intermediateCatchEvent id="publicity" name="公示一天"><bpmn:incoming>f2</bpmn:incoming>'
            + "<bpmn:outgoing>f3</bpmn:outgoing>" + timer("timeDuration", "P1D") + "</bpmn:intermediateCatchEvent>"
            + user_task("second", "分管领导审批", "user:fenguan", ["f3"], ["f4"])
            + '<bpmn:endEvent id="end"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>'
            + flow("f1", "submit_request", "first") + flow("f2", "first", "publicity")
            + flow("f3", "publicity", "second") + flow("f4", "second", "end"))
    deploy(engine.db, engine.settings, process(tmp_path, "t_escalate", escalate), process(tmp_path, "t_remind", remind),
           process(tmp_path, "t_wait", wait))
    return engine


def open_tasks(engine: WorkflowEngine, username: str) -> list:
    return engine.list_tasks(username=username)


def fired_events(engine: WorkflowEngine, instance_id: int) -> list[dict]:
    with engine.db.read() as s:
        return [e.payload for e in s.scalars(select(AuditEvent).where(
            AuditEvent.instance_id == instance_id, AuditEvent.action == "timer.fired").order_by(AuditEvent.seq))]


def test_an_interrupting_boundary_timer_escalates_once(timed: WorkflowEngine):
    start = now()
    with time_machine.travel(start, tick=False):
        iid = timed.start(key="t_escalate", username="staff1", data=DATA).instance_id
        assert [t.node_id for t in open_tasks(timed, "kezhang")] == ["first"]
        assert timed.fire_timers() == 0  # not due yet
    with time_machine.travel(start + timedelta(seconds=3), tick=False):
        assert timed.fire_timers() == 1
        assert open_tasks(timed, "kezhang") == []  # the slot was cancelled with its task
        assert [t.node_id for t in open_tasks(timed, "juzhang")] == ["escalated"]
        assert timed.fire_timers() == 0  # nothing more: fired exactly once
    events = fired_events(timed, iid)
    assert len(events) == 1 and events[0]["timers"] == [{"node": "late", "name": "超时", "timer": "DurationTimer"}]
    with timed.db.read() as s:
        assert s.scalar(select(TimerJob.status).where(TimerJob.instance_id == iid)) == "done"


def test_a_cycle_timer_fires_three_times_and_then_stops(timed: WorkflowEngine):
    start = now()
    with time_machine.travel(start, tick=False):
        iid = timed.start(key="t_remind", username="staff1", data=DATA).instance_id
    for hours in range(1, 6):  # five hourly ticks; R3 fires on the first three only
        with time_machine.travel(start + timedelta(hours=hours, seconds=1), tick=False):
            timed.fire_timers()
    assert len(open_tasks(timed, "dangwei")) == 3
    assert len(fired_events(timed, iid)) == 3
    assert [t.node_id for t in open_tasks(timed, "kezhang")] == ["first"]  # non-interrupting: still open


def test_an_intermediate_timer_holds_the_instance_until_it_is_due(timed: WorkflowEngine):
    start = now()
    with time_machine.travel(start, tick=False):
        timed.start(key="t_wait", username="staff1", data=DATA)
        task = open_tasks(timed, "kezhang")[0]
        timed.act(task_id=task.id, action="approve", username="kezhang")
    with time_machine.travel(start + timedelta(hours=23), tick=False):
        assert timed.fire_timers() == 0 and open_tasks(timed, "fenguan") == []
    with time_machine.travel(start + timedelta(days=1, seconds=1), tick=False):
        assert timed.fire_timers() == 1
        assert [t.node_id for t in open_tasks(timed, "fenguan")] == ["second"]


def test_a_timer_whose_task_was_decided_in_time_never_fires(timed: WorkflowEngine):
    start = now()
    with time_machine.travel(start, tick=False):
        iid = timed.start(key="t_escalate", username="staff1", data=DATA).instance_id
        timed.act(task_id=open_tasks(timed, "kezhang")[0].id, action="approve", username="kezhang")
    with time_machine.travel(start + timedelta(seconds=3), tick=False):
        assert timed.fire_timers() == 0
    assert fired_events(timed, iid) == [] and open_tasks(timed, "juzhang") == []


def test_djflow_serve_fires_a_two_second_boundary_timer_on_its_own(db_url, tmp_path):
    """The embedded scheduler (no Redis): a real server process escalates within 10 s, no clock moved."""
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    from engine import Database
    from engine.config import REPO_ROOT
    from engine.setup import init
    from tests.conftest import make_settings

    settings = make_settings(db_url)
    db = Database(db_url)
    init(db, settings, demo=True)
    engine = WorkflowEngine(db, settings)
    deploy_timer_processes(engine, tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DJFLOW_")},
           "DJFLOW_DATABASE_URL": db_url, "DJFLOW_TIMER_TICK_SECONDS": "0.5"}
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "serve", "--port", str(port)], cwd=REPO_ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2).read()
                break
            except OSError:
                time.sleep(0.2)
        iid = engine.start(key="t_escalate", username="staff1", data=DATA).instance_id
        started = time.monotonic()
        while time.monotonic() - started < 10 and not open_tasks(engine, "juzhang"):
            time.sleep(0.2)
        assert [t.node_id for t in open_tasks(engine, "juzhang")] == ["escalated"]
        assert len(fired_events(engine, iid)) == 1
    finally:
        proc.terminate()
        proc.wait(10)
        db.dispose()


def test_four_ticks_at_once_fire_each_of_twenty_timers_exactly_once(timed: WorkflowEngine):
    import threading

    start = now()
    with time_machine.travel(start, tick=False):
        ids = [timed.start(key="t_escalate", username="staff1", data=DATA).instance_id for _ in range(20)]
    with time_machine.travel(start + timedelta(seconds=3), tick=False):
        moved, errors = [], []

        def tick():
            try:
                moved.append(timed.fire_timers())
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=tick) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == [] and sum(moved) == 20
        assert timed.fire_timers() == 0
    assert [len(fired_events(timed, i)) for i in ids] == [1] * 20
    assert len(open_tasks(timed, "juzhang")) == 20 and open_tasks(timed, "kezhang") == []


def test_an_approval_racing_the_tick_ends_one_way_or_the_other_never_both(timed: WorkflowEngine):
    """Approving while the timer falls due: either the approval wins (the timer never fires) or the
    timer does (the approval is refused as already handled); no deadlock, nothing twice."""
    import threading

    from engine.errors import EngineError

    start = now()
    with time_machine.travel(start, tick=False):
        ids = [timed.start(key="t_escalate", username="staff1", data=DATA).instance_id for _ in range(12)]
        tasks = {t.instance_id: t.id for t in open_tasks(timed, "kezhang")}
    with time_machine.travel(start + timedelta(seconds=3), tick=False):
        refused, errors = [], []

        def approve():
            for iid in ids:
                try:
                    timed.act(task_id=tasks[iid], action="approve", username="kezhang")
                except EngineError:
                    refused.append(iid)
                except Exception as exc:  # noqa: BLE001 - anything else is a failure
                    errors.append(exc)

        def tick():
            try:
                for _ in range(30):
                    timed.fire_timers()
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=approve), threading.Thread(target=tick)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        timed.fire_timers()
    assert errors == []
    for iid in ids:
        status = timed.instance(instance_id=iid).status
        # refused: the timer had fired first (escalated, still running); approved: completed, never fired
        assert (len(fired_events(timed, iid)), status) == ((1, "running") if iid in refused else (0, "completed"))
    assert len(open_tasks(timed, "juzhang")) == len(refused)


def test_an_interrupting_boundary_timer_on_a_sub_process_cancels_everything_inside(engine: WorkflowEngine, tmp_path):
    """A 2-hour limit on a sub-process of two approvals: when it runs out mid-way, the open slot inside
    is cancelled and the escalation path opens."""
    inner = (user_task("a", "科室审批", "user:kezhang", ["s1"], ["s2"]) + user_task("b", "分管领导审批", "user:fenguan",
                                                                            ["s2"], ["s3"])
             + '<bpmn:startEvent id="sub_start"><bpmn:outgoing>s1</bpmn:outgoing></bpmn:startEvent>'
             + '<bpmn:endEvent id="sub_end"><bpmn:incoming>s3</bpmn:incoming></bpmn:endEvent>'
             + flow("s1", "sub_start", "a") + flow("s2", "a", "b") + flow("s3", "b", "sub_end"))
    body = ('<bpmn:subProcess id="review" name="审核"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>'
            + inner + '</bpmn:subProcess>'
            + '<bpmn:boundaryEvent id="late" name="审核超时" attachedToRef="review" cancelActivity="true">'
            + '<bpmn:outgoing>f3</bpmn:outgoing>' + timer("timeDuration", "PT2H") + '</bpmn:boundaryEvent>'
            + user_task("escalated", "局长督办", "user:juzhang", ["f3"], ["f4"])
            + '<bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>'
            + flow("f1", "submit_request", "review") + flow("f2", "review", "end") + flow("f3", "late", "escalated")
            + flow("f4", "escalated", "end"))
    deploy(engine.db, engine.settings, process(tmp_path, "t_sub", body))
    start = now()
    with time_machine.travel(start, tick=False):
        iid = engine.start(key="t_sub", username="staff1", data=DATA).instance_id
        engine.act(task_id=open_tasks(engine, "kezhang")[0].id, action="approve", username="kezhang")
        assert [t.node_id for t in open_tasks(engine, "fenguan")] == ["b"]
    with time_machine.travel(start + timedelta(hours=2, seconds=1), tick=False):
        assert engine.fire_timers() == 1
        assert engine.fire_timers() == 0
    assert open_tasks(engine, "fenguan") == []
    assert [t.node_id for t in open_tasks(engine, "juzhang")] == ["escalated"]
    assert len(fired_events(engine, iid)) == 1
