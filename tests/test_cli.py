"""The `djflow` command as a person runs it: init, the approval chain, errors, serve."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from engine.config import REPO_ROOT
from tests.helpers import REQUEST


@pytest.fixture
def djflow(db_url, tmp_path):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DJFLOW_")},
           "DJFLOW_DATABASE_URL": db_url, "DJFLOW_DEMO_PASSWORD": "Demo-pass-2026",
           "DJFLOW_ARGON2_TIME_COST": "1", "DJFLOW_ARGON2_MEMORY_KIB": "8192"}

    def run(*args: str, ok: bool | None = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=REPO_ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        if ok is True:
            assert proc.returncode == 0, f"{args}: {proc.stdout}\n{proc.stderr}"
        return proc

    run.env = env
    return run


def as_json(proc: subprocess.CompletedProcess):
    return json.loads(proc.stdout)


def first_task(djflow, user: str) -> dict:
    tasks = as_json(djflow("task", "list", "--as", user, "--json"))
    assert len(tasks) == 1, tasks
    return tasks[0]


def test_transfer_and_return_from_the_command_line(djflow):
    djflow("init", "--demo")
    started = djflow("instance", "start", "approval_chain", "--as", "staff1", "--data", json.dumps(REQUEST))
    instance_id = int(started.stdout.strip())
    task = first_task(djflow, "kezhang")
    out = djflow("task", "act", str(task["id"]), "transfer", "--as", "kezhang", "--to", "juzhang", "--comment", "请局长定")
    assert "新待办" in out.stdout and "周九" in out.stdout
    moved = first_task(djflow, "juzhang")
    refused = djflow("task", "act", str(moved["id"]), "return", "--as", "juzhang", "--target", "nowhere",
                     "--comment", "x", ok=None)
    assert refused.returncode == 1 and "不能退回到 nowhere" in refused.stderr
    djflow("task", "act", str(moved["id"]), "return", "--as", "juzhang", "--comment", "请补充报价单")
    back = first_task(djflow, "staff1")
    assert back["instance_id"] == instance_id and back["note"]["reason"] == "请补充报价单"

def test_the_approval_chain_from_the_command_line(djflow):
    init = djflow("init", "--demo")
    assert "admin:" in init.stdout  # the generated admin password is shown once
    again = djflow("init", "--demo")
    assert "admin:" not in again.stdout and "未变化" in again.stdout

    started = djflow("instance", "start", "approval_chain", "--as", "staff1", "--data", json.dumps(REQUEST))
    instance_id = int(started.stdout.strip())
    for user in ("kezhang", "fenguan", "juzhang"):
        task = first_task(djflow, user)
        assert task["instance_id"] == instance_id
        for other in {"kezhang", "fenguan", "juzhang"} - {user}:
            assert as_json(djflow("task", "list", "--as", other, "--json")) == []
        out = djflow("task", "act", str(task["id"]), "approve", "--as", user, "--comment", "同意")
        assert f"实例 #{instance_id}" in out.stdout

    shown = as_json(djflow("instance", "show", str(instance_id), "--json"))
    assert shown["status"] == "completed"
    assert [t["assignee"] for t in shown["tasks"]] == ["staff1", "kezhang", "fenguan", "juzhang"]
    human = djflow("instance", "show", str(instance_id)).stdout
    assert "已通过" in human and "主要负责人审批" in human and "amount=12000" in human

    redeploy = djflow("deploy", "process_definitions", "forms", "--as", "admin")
    assert "approval_chain v1（未变化）" in redeploy.stdout
    unknown = djflow("deploy", "process_definitions", "--as", "nobody", ok=None)
    assert unknown.returncode == 1 and "用户 nobody 不存在" in unknown.stderr

    verify = djflow("audit", "verify")
    assert "审计链完整" in verify.stdout


def test_cli_errors_are_clear_and_exit_1(djflow):
    early = djflow("task", "list", "--as", "staff1", ok=None)
    assert early.returncode == 1 and "请先运行 djflow init" in early.stderr and "Traceback" not in early.stderr
    djflow("init", "--demo")
    bad = djflow("instance", "start", "approval_chain", "--as", "staff1", "--data",
                 json.dumps({**REQUEST, "amount": -1}), ok=None)
    assert bad.returncode == 1 and "amount" in bad.stderr and "不能小于 0" in bad.stderr
    assert "Traceback" not in bad.stderr

    not_json = djflow("instance", "start", "approval_chain", "--as", "staff1", "--data", "{amount:", ok=None)
    assert not_json.returncode == 1 and "--data 不是合法 JSON" in not_json.stderr

    iid = djflow("instance", "start", "approval_chain", "--as", "staff1", "--data", json.dumps(REQUEST)).stdout
    task = first_task(djflow, "kezhang")
    wrong = djflow("task", "act", str(task["id"]), "approve", "--as", "fenguan", "--json", ok=None)
    assert wrong.returncode == 1 and as_json(wrong)["error"] == "Forbidden"
    missing = djflow("task", "act", "424242", "approve", "--as", "kezhang", ok=None)
    assert missing.returncode == 1 and "任务 424242 不存在" in missing.stderr
    assert as_json(djflow("instance", "show", iid.strip(), "--json"))["status"] == "running"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_invalid_setting_is_named_with_its_reason_and_nothing_runs(djflow):
    djflow.env["DJFLOW_GIL_SWITCH_INTERVAL_MS"] = "-1"
    djflow.env["DJFLOW_ENGINE_THREADS"] = "zwei"
    djflow.env["DJFLOW_DATA_KEY"] = "secret-value-never-printed"
    proc = djflow("init", ok=None)
    assert proc.returncode == 2
    assert "DJFLOW_GIL_SWITCH_INTERVAL_MS 无效：Input should be greater than or equal to 0" in proc.stderr
    assert "DJFLOW_ENGINE_THREADS 无效" in proc.stderr and "Traceback" not in proc.stderr + proc.stdout
    assert "zwei" not in proc.stderr and "secret-value" not in proc.stderr + proc.stdout
    for name in ("DJFLOW_GIL_SWITCH_INTERVAL_MS", "DJFLOW_ENGINE_THREADS"):
        del djflow.env[name]
    del djflow.env["DJFLOW_DATA_KEY"]
    djflow("init")  # with the settings mended it runs


def test_serve_answers_health(djflow):
    djflow("init")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "serve", "--port", str(port)], cwd=REPO_ROOT,
                            env=djflow.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline, body = time.monotonic() + 30, None
        while time.monotonic() < deadline and body is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as resp:
                    body = json.loads(resp.read())
            except OSError:
                time.sleep(0.2)
        assert body == {"status": "ok", "database": "ok", "dialect": body and body["dialect"]}
        assert body["dialect"] in ("sqlite", "postgresql")
    finally:
        proc.terminate()
        proc.wait(10)


def test_an_operator_unlocks_and_resets_an_account_from_the_console(sqlite_url, tmp_path):
    from api.main import create_app
    from engine import Database, WorkflowEngine
    from tests.conftest import make_settings

    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DJFLOW_")},
           "DJFLOW_DATABASE_URL": sqlite_url, "DJFLOW_DEMO_PASSWORD": "Demo-pass-2026",
           "DJFLOW_ADMIN_PASSWORD": "Admin-pass-2026", "DJFLOW_ARGON2_TIME_COST": "1",
           "DJFLOW_ARGON2_MEMORY_KIB": "8192"}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=REPO_ROOT, env=env,
                              capture_output=True, text=True, timeout=120)

    assert run("init").returncode == 0
    settings = make_settings(sqlite_url)
    from fastapi.testclient import TestClient

    client = TestClient(create_app(settings, WorkflowEngine(Database(sqlite_url), settings)))
    for _ in range(5):
        client.post("/api/auth/login", json={"username": "admin", "password": "not-it"})
    assert client.post("/api/auth/login", json={"username": "admin",
                                                "password": "Admin-pass-2026"}).status_code == 423
    assert run("account", "unlock", "admin").returncode == 0
    assert client.post("/api/auth/login", json={"username": "admin",
                                                "password": "Admin-pass-2026"}).status_code == 200
    reset = run("account", "reset-password", "admin", "--json")
    password = json.loads(reset.stdout)["initial_password"]
    body = client.post("/api/auth/login", json={"username": "admin", "password": password}).json()
    assert body["must_change_password"] is True
    missing = run("account", "unlock", "nobody")
    assert missing.returncode == 1 and "nobody 不存在" in missing.stderr


def test_the_working_day_calendar_from_the_command_line(djflow):
    djflow("init", "--demo")
    shown = djflow("calendar", "show", "2026")
    assert "2026-02-14" in shown.stdout and "上班" in shown.stdout and "春节" in shown.stdout  # 调休 Saturday
    assert "注意" not in shown.stderr  # the packaged schedule covers 2026
    # a year the package does not cover: a warning, until the year's holidays are entered
    uncovered = djflow("calendar", "show", "2031")
    assert "没有 2031 年的国务院节假日安排" in uncovered.stderr and "djflow calendar set" in uncovered.stderr
    djflow("calendar", "set", "2031-01-01", "off", "--as", "admin", "--note", "元旦")
    days = as_json(djflow("calendar", "show", "2031", "--json"))
    assert days["overrides"] == 1
    assert [(d["day"], d["workday"], d["note"]) for d in days["days"]] == [("2031-01-01", False, "元旦")]
    # a unit's own day, and refusals with the reason
    djflow("calendar", "set", "2026-12-07", "off", "--as", "admin", "--org", "sfj-cwk")
    cwk = as_json(djflow("calendar", "show", "2026", "--org", "sfj-cwk", "--json"))["days"]
    assert {"day": "2026-12-07", "weekday": 1, "workday": False, "holiday": None, "source": "local", "note": "",
            "org_code": "sfj-cwk"} in cwk
    bad = djflow("calendar", "set", "2026-13-01", "off", "--as", "admin", ok=None)
    assert bad.returncode == 1 and "日期 '2026-13-01' 无效" in bad.stderr
    denied = djflow("calendar", "set", "2026-12-08", "off", "--as", "kezhang", ok=None)
    assert denied.returncode == 1
    djflow("calendar", "unset", "2031-01-01", "--as", "admin")
    assert as_json(djflow("calendar", "show", "2031", "--json"))["overrides"] == 0
    assert djflow("calendar", "unset", "2031-01-01", "--as", "admin", ok=None).returncode == 1
