"""Celery on a real Redis with real worker and beat processes (started here): timers fire within
seconds, a timer due while no worker runs fires once a worker starts, two workers and one beat
fire many timers each exactly once. Each test has its own Redis queue and removes it afterwards."""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select

from engine import Database, WorkflowEngine
from engine.config import REPO_ROOT
from engine.models import AuditEvent, ProcessInstance
from engine.scheduler.worker import drop_queue
from engine.setup import init
from tests.conftest import make_settings, require_service
from tests.scheduler.test_timers import DATA, deploy_timer_processes, open_tasks

REDIS_URL = os.environ.get("DJFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _redis_available() -> str | None:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        return f"Redis not reachable at {REDIS_URL}: {type(exc).__name__}"


class Cluster:
    """Worker and beat processes on one Redis queue of this test's own."""

    def __init__(self, db_url: str, tmp_path):
        import redis

        self.queue = f"djflow_test_{secrets.token_hex(4)}"
        self.redis = redis.Redis.from_url(REDIS_URL)
        self.tmp = tmp_path
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("DJFLOW_")},
                    "DJFLOW_DATABASE_URL": db_url, "DJFLOW_REDIS_URL": REDIS_URL, "DJFLOW_CELERY_QUEUE": self.queue,
                    "DJFLOW_TIMER_TICK_SECONDS": "0.5", "DJFLOW_CELERY_VISIBILITY_TIMEOUT": "10",
                    "DJFLOW_TIMER_REQUEUE_SECONDS": "5"}
        self.procs: list[subprocess.Popen] = []

    def start(self, what: str, *args: str) -> subprocess.Popen:
        log = open(self.tmp / f"{what}-{len(self.procs)}.log", "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([sys.executable, "-m", "engine.cli", what, *args], cwd=REPO_ROOT, env=self.env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def worker(self, name: str, concurrency: int = 1) -> subprocess.Popen:
        return self.start("worker", "--concurrency", str(concurrency), "--name", f"{name}@{self.queue}")

    def beat(self) -> subprocess.Popen:
        return self.start("beat", "--schedule", str(self.tmp / "beat-schedule"))

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.tmp.glob("*.log")))

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)
            _wait_group_gone(p.pid)  # a pool child may still put its unacknowledged message back
        drop_queue(self.redis, self.queue)  # only this test's keys and bookkeeping
        self.redis.close()


def _wait_group_gone(pgid: int, seconds: float = 15) -> None:
    """Until no process of the group is left (SIGKILL after `seconds`)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        if time.monotonic() > deadline:
            os.killpg(pgid, signal.SIGKILL)
            deadline = time.monotonic() + 5
        time.sleep(0.1)


@pytest.fixture
def cluster(db_url, tmp_path):
    require_service(_redis_available())
    settings = make_settings(db_url)
    db = Database(db_url)
    init(db, settings, demo=True)
    engine = WorkflowEngine(db, settings)
    deploy_timer_processes(engine, tmp_path)
    c = Cluster(db_url, tmp_path)
    c.engine = engine
    yield c
    c.stop()
    db.dispose()


def wait_for(check, seconds: float, cluster: Cluster) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if check():
            return time.monotonic() - started
        time.sleep(0.2)
    pytest.fail(f"not within {seconds} s; worker and beat logs:\n{cluster.logs()}")


def fired(engine: WorkflowEngine) -> int:
    with engine.db.read() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "timer.fired"))


def test_a_two_second_boundary_timer_escalates_within_ten_seconds(cluster: Cluster):
    cluster.worker("w1")
    cluster.beat()
    started = time.monotonic()
    cluster.engine.start(key="t_escalate", username="staff1", data=DATA)
    wait_for(lambda: open_tasks(cluster.engine, "juzhang"), 10 - (time.monotonic() - started), cluster)
    assert open_tasks(cluster.engine, "kezhang") == [] and fired(cluster.engine) == 1


def test_a_timer_due_while_no_worker_runs_fires_once_when_one_starts(cluster: Cluster):
    cluster.beat()  # beat queues the job, nobody takes it
    cluster.engine.start(key="t_escalate", username="staff1", data=DATA)
    time.sleep(4)
    assert open_tasks(cluster.engine, "juzhang") == [] and fired(cluster.engine) == 0
    cluster.worker("late")
    wait_for(lambda: open_tasks(cluster.engine, "juzhang"), 20, cluster)
    time.sleep(2)  # beat kept ticking meanwhile: the job it queued more than once fires only once
    assert len(open_tasks(cluster.engine, "juzhang")) == 1 and fired(cluster.engine) == 1


def test_two_workers_and_one_beat_fire_a_thousand_timers_each_once(cluster: Cluster):
    n = 1000
    for _ in range(n):
        cluster.engine.start(key="t_escalate", username="staff1", data=DATA)
    cluster.worker("w1", concurrency=2)
    cluster.worker("w2", concurrency=2)
    cluster.beat()
    wait_for(lambda: fired(cluster.engine) >= n, 300, cluster)
    time.sleep(2)
    assert fired(cluster.engine) == n
    assert len(open_tasks(cluster.engine, "juzhang")) == n
    with cluster.engine.db.read() as s:
        per_instance = s.execute(select(AuditEvent.instance_id, func.count()).where(
            AuditEvent.action == "timer.fired").group_by(AuditEvent.instance_id)).all()
        assert len(per_instance) == n and {c for _i, c in per_instance} == {1}
        assert s.scalar(select(func.count()).select_from(ProcessInstance)) == n


def test_a_worker_killed_with_sigkill_mid_job_loses_nothing_and_doubles_nothing(cluster: Cluster):
    """SIGKILL the whole of one worker (its main process and the child running a job) while both
    workers are busy: its unacknowledged jobs go to the other worker, every instance moves once."""
    n = 400
    for _ in range(n):
        cluster.engine.start(key="t_escalate", username="staff1", data=DATA)
    doomed = cluster.worker("doomed")
    cluster.worker("survivor")
    cluster.beat()
    wait_for(lambda: fired(cluster.engine) >= 40, 60, cluster)
    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.wait(10)
    at_kill = fired(cluster.engine)
    assert at_kill < n  # it died with work left
    wait_for(lambda: fired(cluster.engine) >= n, 120, cluster)
    time.sleep(2)
    with cluster.engine.db.read() as s:
        per_instance = s.execute(select(AuditEvent.instance_id, func.count()).where(
            AuditEvent.action == "timer.fired").group_by(AuditEvent.instance_id)).all()
    assert len(per_instance) == n and {c for _i, c in per_instance} == {1}
    assert len(open_tasks(cluster.engine, "juzhang")) == n


def test_a_worker_makes_the_service_call_and_delivers_the_webhook(cluster: Cluster, tmp_path):
    """djflow worker runs service jobs and webhook deliveries too (the same code as serve's tick)."""
    import json

    from engine import now
    from engine.identity.protect import cipher_for
    from engine.sql import Sql
    from tests.api.test_services import Remote, call_oa
    from tests.support.processes import deploy, node, write_process

    remote = Remote()
    try:
        cluster.env["DJFLOW_SERVICE_ALLOWED_HOSTS"] = json.dumps([f"127.0.0.1:{remote.port}"])
        eng = cluster.engine
        deploy(eng.db, eng.settings, write_process(tmp_path, "w_service", [
            call_oa(f"http://127.0.0.1:{remote.port}/oa"), node("review", "科室审批", "user:kezhang")]))
        with eng.db.transaction() as sql:
            sql.run("INSERT INTO webhooks (name, url, secret, events, format, active, created_at) "
                    "VALUES (?, ?, ?, ?, 'djflow', ?, ?)",
                    ("OA", f"http://127.0.0.1:{remote.port}/hook",
                     cipher_for(eng.settings).encrypt("webhook_secret", "s" * 32),
                     Sql.json(["task.assigned"]), True, sql.ts(now())))
        cluster.worker("w1")
        cluster.beat()
        eng.start(key="w_service", username="staff1", data=DATA)
        wait_for(lambda: open_tasks(eng, "kezhang"), 20, cluster)
        wait_for(lambda: any(r["path"] == "/hook" for r in remote.requests), 20, cluster)
        time.sleep(1.5)  # more ticks: nothing is called or delivered twice
        paths = [r["path"] for r in remote.requests]
        assert paths.count("/oa") == 1 and paths.count("/hook") == 1, paths
        hook = next(r for r in remote.requests if r["path"] == "/hook")
        assert hook["headers"]["X-Djflow-Event"] == "task.assigned" and hook["body"]["user"]["username"] == "kezhang"
    finally:
        remote.close()
