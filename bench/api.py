"""Benchmark: the REST API under load, served by 2 uvicorn worker processes on PostgreSQL.

    python bench/api.py --out bench/report-api.md                  # what `make bench` runs
    python bench/api.py --history-instances 2000 --members 500 --duration 10 --warmup 3   # a smoke run
    python bench/api.py --server uvicorn                           # plain `uvicorn --workers 2` instead
    python bench/api.py --client httpx                             # httpx.AsyncClient as the load generator

What it does, against a real server on a throw-away database:

1. Creates `djflow_bench_<hex>` (dropped at the end, also on failure, Ctrl+C or SIGTERM), runs
   `djflow init --demo` on it (DJFLOW_DEMO_PASSWORD / DJFLOW_ADMIN_PASSWORD set), and loads a
   history by SQL: 11,000 synthetic members, 200,000 instances × 5 tasks = 1,000,000 `tasks`
   rows, 3 % open, skewed (each demo approver holds 2 % of the approval slots, 1 % of the members
   30 %, the rest spread evenly). ANALYZE.
2. Starts the server: `djflow serve --workers 2` (two uvicorn processes on one SO_REUSEPORT
   socket) by default; `--server uvicorn` runs `uvicorn api.main:create_app --factory --workers 2`
   instead (plain uvicorn leaves Nagle on: +40 ms per response, see the report's notes).
   Waits for GET /api/health.
3. Signs in staff1, kezhang, fenguan, juzhang (changing the forced initial password once each)
   and keeps their bearer tokens (Authorization: Bearer; no cookie, so no CSRF header).
4. Throughput: --clients (50) asyncio clients, each running complete approval_chain instances in
   a loop — POST /api/process-instances as staff1 (amount 12000: three approval levels), then
   POST /api/tasks/{id}/actions/approve as kezhang, fenguan, juzhang, each taking the task id from
   the previous response's `new_tasks` — for --warmup seconds (not counted), then --duration
   seconds. Reported: approval actions/s, all actions/s, p50/p95/p99 per kind of request, every
   non-2xx (with a body sample), and the CPU time the server, PostgreSQL, the client and anything
   else used. A one-client run first gives the unloaded latency.
5. Where the time goes, in this process against the same database (no HTTP): authenticate(),
   WorkflowEngine.start/act/inbox timed alone, and the SQL statements each runs.
6. Inbox: GET /api/tasks?scope=mine&status=open&page=1&size=20 as the demo users and 200 sampled
   synthetic members, one request at a time (>= 500 requests), then arriving at --inbox-rate per second
   (open loop, Poisson), then from --inbox-clients clients back to back (saturation); p50/p95/p99, and EXPLAIN ANALYZE of the SQL the engine's inbox sends
   (captured at run time from engine/sql.py, so it is the current query).

The load generator is by default a minimal HTTP/1.1 keep-alive client on asyncio streams: it
shares the two cores with the server and PostgreSQL, and httpx.AsyncClient costs several times
more CPU per request (`--client httpx` to compare).

It measures, it does not judge: exit 0 whatever PASS/FAIL says, unless the run itself fails
(the database cannot be created, init fails, the server does not come up, a login fails).
Needs PostgreSQL at DJFLOW_BENCH_PG (default postgresql://postgres@127.0.0.1:5432/postgres).
"""
from __future__ import annotations

import sys
from pathlib import Path

# `python bench/api.py` puts bench/ first on sys.path; make the repository root come first instead.
_HERE = Path(__file__).resolve().parent
_ROOT = _HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

import argparse  # noqa: E402
from hashlib import sha256 as hashlib_sha256  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import secrets  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections import Counter, defaultdict  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from urllib.parse import urlencode  # noqa: E402

import httpx  # noqa: E402
import psycopg  # noqa: E402

PG_ADMIN_URL = os.environ.get("DJFLOW_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
ADMIN_PASSWORD = "Bench-admin-2026"
DEMO_PASSWORD = "Bench-demo-2026"
NEW_PASSWORD = "Bench-changed-2027"    # what the forced first-login change sets
MEMBER_PASSWORD = "Bench-member-2026"  # the synthetic members' password (hash written by SQL)

PROCESS_KEY = "approval_chain"
# forms/approval_request/schema.json requires title, category, amount, reason; 12000 is over the
# 5000 threshold, so the gateway sends the request through all three levels.
REQUEST = {"title": "办公设备采购", "category": "采购", "amount": 12000, "reason": "更换老旧电脑",
           "expected_date": "2026-12-01"}
START_BODY = {"key": PROCESS_KEY, "data": REQUEST, "title": None}
APPROVE_BODY = {"comment": None, "data": {"opinion": "同意"}}
INITIATOR = "staff1"
APPROVERS = ("kezhang", "fenguan", "juzhang")
KINDS = ("start", *APPROVERS)
KIND_LABELS = {"start": "start + submit (staff1)", **{a: f"approve ({a})" for a in APPROVERS}}
INBOX_PATH = "/api/tasks?" + urlencode({"scope": "mine", "status": "open", "page": 1, "size": 20})

TARGET_APPROVALS_PER_S = 300.0
TARGET_INBOX_P99_MS = 50.0

# The synthetic history: five tasks per instance (the initiator's own, then four approval slots).
HISTORY_NODES = ("submit_request", "dept_review", "leader_review", "head_review", "countersign")
HISTORY_NODE_NAMES = ("发起申请", "科室负责人审批", "分管领导审批", "主要负责人审批", "会签")
RUNNING_PERCENT = 15          # of instances; each has its last task open -> 15 % / 5 = 3 % of tasks open
DEMO_SHARE_PER_MILLE = 20     # of approval slots, per demo approver
HEAVY_SHARE_PER_MILLE = 300   # of approval slots, to the busiest 1 % of the members
HEAVY_MEMBERS_PERCENT = 1


def say(msg: str) -> None:
    print(msg, flush=True)


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(1, -(-p * len(s) // 100))  # ceil(p/100 * n)
    return s[min(len(s), int(k)) - 1]


def summary_ms(values: list[float]) -> dict:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    return {"n": len(values), "p50": pct(values, 50) * 1000, "p95": pct(values, 95) * 1000,
            "p99": pct(values, 99) * 1000, "max": max(values) * 1000, "mean": statistics.fmean(values) * 1000}


# -- machine and CPU accounting -----------------------------------------------------------------------
def machine_info() -> dict:
    model, mem_gib = "", None
    try:
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "")
        mem_gib = next(int(line.split()[1]) / 1024 / 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                       if line.startswith("MemTotal:"))
    except (OSError, StopIteration):
        pass
    return {"cpus": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)), "cpu_model": model,
            "mem_gib": mem_gib, "kernel": platform.release(), "python": platform.python_version()}


_TICK = os.sysconf("SC_CLK_TCK")


def _proc_stats() -> dict[int, tuple[str, int, float]]:
    """pid -> (comm, ppid, CPU seconds) for every process we can read."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1:raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2:].split()
        out[int(entry)] = (comm, int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK)
    return out


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return (sum(parts) - parts[3] - parts[4]) / _TICK, sum(parts) / _TICK


def machine_busy_now(seconds: float = 3.0) -> tuple[float, list[tuple[str, float]]]:
    """How busy the machine is right now (%), and the top CPU consumers (comm, % of one CPU)."""
    a, pa = _machine_busy(), _proc_stats()
    time.sleep(seconds)
    b, pb = _machine_busy(), _proc_stats()
    per = Counter()
    for pid, (comm, _pp, t) in pb.items():
        if pid in pa:
            per[comm] += t - pa[pid][2]
    return ((b[0] - a[0]) / max(b[1] - a[1], 1e-9) * 100,
            [(c, d / seconds * 100) for c, d in per.most_common(3) if d / seconds >= 0.05])


def reference_speed(seconds: float = 2.0) -> float:
    """Rounds per second of a fixed single-threaded Python workload like the server's own (JSON out
    and in, a hash, dict and list churn). This machine is shared and its speed drifts: the same
    djflow code has measured 2.5 to 4.6 ms of server CPU per action in runs an hour apart. The
    figure, taken just before and after the throughput window, says how fast the machine was."""
    doc = {"title": "办公设备采购", "amount": 12000, "tasks": [{"id": i, "state": "COMPLETED", "data": {"opinion": "同意"}}
                                                          for i in range(12)]}
    rounds, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        for _ in range(50):
            text = json.dumps(doc, ensure_ascii=False, sort_keys=True)
            back = json.loads(text)
            hashlib_sha256(text.encode()).hexdigest()
            sorted((t["id"], t["state"]) for t in back["tasks"])
        rounds += 50
    return rounds / seconds


class CpuMeter:
    """CPU seconds used between start() and stop() by: the server (the process tree under its pid);
    PostgreSQL backends connected to the bench database; PostgreSQL's background processes (WAL
    writer, checkpointer, autovacuum …, shared by every database); this process (the load
    generator); everything else (top consumers named: the machine may be shared); the machine."""

    def __init__(self, server_pid: int, db_url: str, db_name: str):
        self.server_pid, self.db_url, self.db_name = server_pid, db_url, db_name

    def _pg_pids(self) -> tuple[set[int], set[int]]:
        """(backends of the bench database, background processes)."""
        with psycopg.connect(self.db_url, autocommit=True) as c:
            rows = c.execute("SELECT pid, datname, backend_type FROM pg_stat_activity").fetchall()
            me = c.info.backend_pid
        ours = {pid for pid, db, kind in rows if db == self.db_name and kind == "client backend" and pid != me}
        background = {pid for pid, _db, kind in rows if kind != "client backend"}
        return ours, background

    def _sample(self) -> dict:
        ours, background = self._pg_pids()
        stats = _proc_stats()
        children = defaultdict(list)
        for pid, (_c, ppid, _t) in stats.items():
            children[ppid].append(pid)
        tree, todo = set(), [self.server_pid]
        while todo:
            pid = todo.pop()
            if pid in stats and pid not in tree:
                tree.add(pid)
                todo.extend(children[pid])
        busy, _total = _machine_busy()
        return {"stats": stats, "tree": tree, "ours": ours, "background": background, "busy": busy,
                "wall": time.perf_counter()}

    def start(self) -> None:
        self.a = self._sample()

    def stop(self) -> dict:
        a, b = self.a, self._sample()
        me = os.getpid()
        delta = {pid: (comm, t - a["stats"].get(pid, (comm, 0, 0.0))[2]) for pid, (comm, _p, t) in b["stats"].items()}
        groups = {"server": a["tree"] | b["tree"], "postgres": a["ours"] | b["ours"],
                  "postgres_background": a["background"] | b["background"], "client": {me}}
        out = {"wall": b["wall"] - a["wall"], "machine_busy": b["busy"] - a["busy"],
               "server_processes": len(b["tree"]), "postgres_backends": len(b["ours"])}
        for name, pids in groups.items():
            out[name] = sum(d for pid, (_c, d) in delta.items() if pid in pids)
        known = set().union(*groups.values())
        others = Counter()
        for pid, (comm, d) in delta.items():
            if pid not in known:
                others["postgres (other databases)" if comm.startswith("postgres") else comm] += d
        out["other"] = max(0.0, out["machine_busy"] - sum(out[k] for k in groups))
        out["other_top"] = [(c, d) for c, d in others.most_common(4) if d >= 0.05]
        return out


# -- database ---------------------------------------------------------------------------------------------
@contextmanager
def database(admin_url: str, keep: bool = False):
    """A fresh database; dropped afterwards whatever happens (unless keep)."""
    name = f"djflow_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    say(f"created database {name}")
    try:
        yield name, admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        if keep:
            say(f"kept database {name} (--keep-db); drop it with: DROP DATABASE \"{name}\" WITH (FORCE)")
        else:
            with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            say(f"dropped database {name}")


def pg_info(url: str) -> dict:
    with psycopg.connect(url) as c:
        return {k: c.execute(f"SHOW {k}").fetchone()[0] for k in
                ("server_version", "shared_buffers", "work_mem", "max_connections", "synchronous_commit",
                 "fsync", "random_page_cost", "effective_cache_size")}


def _djflow_cmd() -> list[str]:
    script = Path(sys.executable).parent / "djflow"
    return [str(script)] if script.exists() else [sys.executable, "-m", "engine.cli"]


def server_settings(url: str, tmp: Path, overrides: list[str]) -> tuple[dict, dict]:
    """The djflow settings of a benchmark server on `url` (files under `tmp`; `overrides` as
    KEY=VALUE), and the environment that gives them to `djflow init` / `djflow serve`."""
    kw = {"database_url": url.replace("postgresql://", "postgresql+psycopg://", 1), "environment": "production",
          "secret_key": secrets.token_hex(32), "data_key": secrets.token_hex(32),
          "admin_password": ADMIN_PASSWORD, "demo_password": DEMO_PASSWORD,
          "attachments_dir": str(tmp / "attachments"), "audit_key_dir": str(tmp / "audit-keys")}
    for item in overrides:
        k, _, v = item.partition("=")
        kw[k.strip().lower()] = v
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJFLOW_")}
    env.update({f"DJFLOW_{k.upper()}": str(v) for k, v in kw.items()})
    return kw, env


def djflow_init(env: dict) -> float:
    t = time.perf_counter()
    r = subprocess.run([*_djflow_cmd(), "init", "--demo", "--json"], env=env, cwd=_ROOT, capture_output=True,
                       text=True, check=False)
    if r.returncode != 0:
        raise SystemExit(f"djflow init --demo failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return time.perf_counter() - t


def load_history(url: str, *, instances: int, members: int, member_hash: str, chunk: int) -> dict:
    """Synthetic members, instances and tasks, generated inside PostgreSQL (INSERT … SELECT over
    generate_series, `chunk` instances per statement, each statement its own transaction)."""
    t0 = time.perf_counter()
    heavy = max(1, members * HEAVY_MEMBERS_PERCENT // 100)
    with psycopg.connect(url, autocommit=True) as c:
        dept, branch = c.execute("SELECT department_id, branch_id FROM users WHERE username = %s",
                                 (INITIATOR,)).fetchone()
        demo = dict(c.execute("SELECT username, id FROM users WHERE username = ANY(%s)", (list(APPROVERS),)).fetchall())
        definition = c.execute("SELECT id, version FROM process_definitions WHERE key = %s "
                               "ORDER BY version DESC LIMIT 1", (PROCESS_KEY,)).fetchone()
        if definition is None or len(demo) != len(APPROVERS):
            raise SystemExit("djflow init --demo did not create the approval_chain definition or the demo approvers")
        c.execute(
            "INSERT INTO users (username, display_name, name_pinyin, password_hash, status, department_id, "
            "branch_id, party_status, must_change_password, failed_logins, created_at) "
            "SELECT 'm' || lpad(g::text, 6, '0'), '党员' || g, 'dy dangyuan' || g, %s, 'active', %s, %s, 'full', "
            "false, 0, now() FROM generate_series(1, %s::int) g ORDER BY g",
            (member_hash, dept, branch, members))
        lo, hi, n = c.execute("SELECT min(id), max(id), count(*) FROM users WHERE username ~ '^m[0-9]{6}$'").fetchone()
        if hi - lo + 1 != n or n != members:
            raise SystemExit(f"synthetic member ids are not contiguous ({lo}..{hi}, {n} rows)")
        say(f"  {members:,} members in {time.perf_counter() - t0:.1f} s (ids {lo}..{hi}; the busiest {heavy} "
            f"hold {HEAVY_SHARE_PER_MILLE / 10:.0f} % of the approval slots)")

        minutes = instances + 60
        for start in range(0, instances, chunk):
            a, b = start + 1, min(instances, start + chunk)
            c.execute(
                "INSERT INTO process_instances (definition_id, definition_key, definition_version, title, "
                "initiator_id, status, state, serializer_version, version, started_at, ended_at) "
                "SELECT %(def)s, %(key)s, %(ver)s, '历史申请 ' || g, %(lo)s + (g * 7919) %% %(n)s, "
                "CASE WHEN g %% 100 < %(run)s THEN 'running' ELSE 'completed' END, '{}', 1, 1, "
                "now() - make_interval(mins => (%(minutes)s - g)::int), "
                "CASE WHEN g %% 100 < %(run)s THEN NULL ELSE now() - make_interval(mins => (%(minutes)s - g)::int) "
                "+ interval '5 hours' END FROM generate_series(%(a)s::bigint, %(b)s::bigint) g ORDER BY g",
                {"def": definition[0], "key": PROCESS_KEY, "ver": definition[1], "lo": lo, "n": members,
                 "run": RUNNING_PERCENT, "minutes": minutes, "a": a, "b": b})
            say(f"  instances {b:,}/{instances:,}  ({time.perf_counter() - t0:.1f} s)")
        first, last = c.execute("SELECT min(id), max(id) FROM process_instances WHERE title LIKE '历史申请 %%'"
                                ).fetchone()

        params = {"nodes": list(HISTORY_NODES), "names": list(HISTORY_NODE_NAMES),
                  "kz": demo["kezhang"], "fg": demo["fenguan"], "jz": demo["juzhang"],
                  "d1": DEMO_SHARE_PER_MILLE * 1000, "d2": 2 * DEMO_SHARE_PER_MILLE * 1000,
                  "d3": 3 * DEMO_SHARE_PER_MILLE * 1000,
                  "h": (3 * DEMO_SHARE_PER_MILLE + HEAVY_SHARE_PER_MILLE) * 1000,
                  "lo": lo, "heavy": heavy, "light": members - heavy}
        done = 0
        for a in range(first, last + 1, chunk):
            b = min(last, a + chunk - 1)
            # r picks the kind of assignee (per million), m the member; both hash (instance, slot), so
            # every run loads the same rows. Slot 1 is the initiator's own task; the last slot of a
            # running instance is its one open task.
            c.execute(
                "INSERT INTO tasks (instance_id, spiff_task_id, node_id, node_name, form_key, form_version, "
                "assignee_id, status, slot, created_at, completed_at, completed_by, outcome, kind, activation) "
                "SELECT i.id, gen_random_uuid()::text, (%(nodes)s::text[])[k], (%(names)s::text[])[k], "
                "CASE WHEN k = 1 THEN 'approval_request' ELSE 'approval_opinion' END, 1, x.uid, "
                "CASE WHEN x.open THEN 'open' ELSE 'completed' END, 0, "
                "i.started_at + make_interval(mins => k - 1), "
                "CASE WHEN x.open THEN NULL ELSE i.started_at + make_interval(mins => k) END, "
                "CASE WHEN x.open THEN NULL ELSE x.uid END, "
                "CASE WHEN x.open THEN NULL WHEN k = 1 THEN 'submitted' ELSE 'approved' END, "
                "CASE WHEN k = 1 THEN 'submit' ELSE 'approve' END, 1 "
                "FROM process_instances i CROSS JOIN generate_series(1, 5) k "
                "CROSS JOIN LATERAL (SELECT (hashint8extended(i.id * 8 + k, 1) & 2147483647) %% 1000000 AS r, "
                "  (hashint8extended(i.id * 8 + k, 2) & 2147483647) AS m) h "
                "CROSS JOIN LATERAL (SELECT i.status = 'running' AND k = 5 AS open, "
                "  CASE WHEN k = 1 THEN i.initiator_id WHEN h.r < %(d1)s THEN %(kz)s WHEN h.r < %(d2)s THEN %(fg)s "
                "  WHEN h.r < %(d3)s THEN %(jz)s WHEN h.r < %(h)s THEN %(lo)s + h.m %% %(heavy)s "
                "  ELSE %(lo)s + %(heavy)s + h.m %% %(light)s END AS uid) x "
                "WHERE i.id BETWEEN %(a)s AND %(b)s ORDER BY i.id, k",
                {**params, "a": a, "b": b})
            done += (b - a + 1) * 5
            say(f"  tasks {done:,}/{instances * 5:,}  ({time.perf_counter() - t0:.1f} s)")
        say("  ANALYZE")
        c.execute("ANALYZE")
        tasks, open_ = c.execute("SELECT count(*), count(*) FILTER (WHERE status = 'open') FROM tasks").fetchone()
        size = c.execute("SELECT pg_size_pretty(pg_total_relation_size('tasks')), "
                         "pg_size_pretty(pg_total_relation_size('process_instances'))").fetchone()
    return {"instances": instances, "members": members, "heavy_members": heavy, "tasks": tasks, "open": open_,
            "seconds": time.perf_counter() - t0, "member_ids": (lo, hi), "tasks_size": size[0],
            "instances_size": size[1]}


# -- the server -------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, kind: str, workers: int, env: dict, log: Path, *, prefix: tuple[str, ...] = ()):
        """`kind` "worker": one serving process as `djflow serve --workers N` starts each of its
        workers, run under `prefix` (bench/instructions.py: valgrind)."""
        self.host, self.port = "127.0.0.1", free_port()
        self.base = f"http://{self.host}:{self.port}"
        self.log = log
        if kind == "worker":
            self.cmd = [*prefix, sys.executable, "-m", "engine.cli", "serve", "--host", self.host, "--port",
                        str(self.port), "--reuse-port"]
        elif kind == "uvicorn":
            self.cmd = [sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory", "--workers",
                        str(workers), "--host", self.host, "--port", str(self.port), "--no-access-log",
                        "--log-level", "warning"]
        else:
            self.cmd = [*_djflow_cmd(), "serve", "--workers", str(workers), "--host", self.host, "--port",
                        str(self.port)]
        self._out = open(log, "wb")  # noqa: SIM115 - open for the server's lifetime, closed in stop()
        # Its own process group, so stop() reaches every worker whatever the supervisor does.
        self.proc = subprocess.Popen(self.cmd, env=env, cwd=_ROOT, stdout=self._out, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def wait_healthy(self, timeout: float = 60) -> float:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                if httpx.get(f"{self.base}/api/health", timeout=1).status_code == 200:
                    return time.perf_counter() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"the server did not answer /api/health within {timeout:.0f} s:\n{self.tail()}")

    def tail(self, n: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(30)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._out.close()


# -- HTTP clients -----------------------------------------------------------------------------------------
def login(client: httpx.Client, username: str, password: str) -> dict:
    """Sign in; an initial password is changed to NEW_PASSWORD (once). Returns the bearer header."""
    r = client.post("/api/auth/login", json={"username": username, "password": password})
    if r.status_code != 200 and password != NEW_PASSWORD:
        r = client.post("/api/auth/login", json={"username": username, "password": NEW_PASSWORD})
        password = NEW_PASSWORD
    if r.status_code != 200:
        raise SystemExit(f"login as {username} failed: {r.status_code} {r.text[:500]}")
    body = r.json()
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    if body.get("must_change_password"):
        r = client.post("/api/auth/password", headers=headers,
                        json={"old_password": password, "new_password": NEW_PASSWORD})
        if r.status_code not in (200, 204):
            raise SystemExit(f"changing {username}'s initial password failed: {r.status_code} {r.text[:500]}")
    client.cookies.clear()  # bearer only: no cookie, so no CSRF header either (api/deps.py)
    return headers


async def login_many(base: str, names: list[str], password: str, parallel: int = 4) -> dict[str, dict]:
    sem = asyncio.Semaphore(parallel)
    heads: dict[str, dict] = {}
    async with httpx.AsyncClient(base_url=base, timeout=60) as c:
        async def one(name: str):
            async with sem:
                r = await c.post("/api/auth/login", json={"username": name, "password": password})
                if r.status_code != 200:
                    raise SystemExit(f"login as {name} failed: {r.status_code} {r.text[:300]}")
                heads[name] = {"Authorization": f"Bearer {r.json()['access_token']}"}
                if len(heads) % 50 == 0:
                    say(f"  signed in {len(heads)}/{len(names)}")
        await asyncio.gather(*(one(n) for n in names))
    return heads


class TransportError(Exception):
    pass


class RawConnection:
    """One HTTP/1.1 keep-alive connection on asyncio streams, one request at a time: just what the
    benchmark needs (JSON bodies; Content-Length or chunked responses), at a fraction of httpx's CPU."""

    IDLE_REOPEN = 4.0  # uvicorn closes a keep-alive connection idle for 5 s; never race that

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None
        self.last = 0.0

    async def request(self, method: str, path: str, headers: dict, body: dict | None = None) -> tuple[int, bytes]:
        if self.writer is not None and time.perf_counter() - self.last > self.IDLE_REOPEN:
            await self.aclose()
        try:
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            data = json.dumps(body, ensure_ascii=False).encode() if body is not None else b""
            head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", *(f"{k}: {v}" for k, v in
                                                                                    headers.items())]
            if body is not None:
                head += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
            self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode("utf-8") + data)
            status_line = await self.reader.readline()
            if not status_line:
                raise TransportError("the server closed the connection before answering")
            status = int(status_line.split()[1])
            length, chunked, close = None, False, False
            while True:
                line = await self.reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                name, value = name.strip().lower(), value.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "transfer-encoding" and "chunked" in value:
                    chunked = True
                elif name == "connection" and value == "close":
                    close = True
            if chunked:
                parts = []
                while True:
                    size = int((await self.reader.readline()).split(b";")[0], 16)
                    if size == 0:
                        await self.reader.readline()
                        break
                    parts.append(await self.reader.readexactly(size))
                    await self.reader.readline()
                payload = b"".join(parts)
            elif length is not None:
                payload = await self.reader.readexactly(length) if length else b""
            else:
                payload, close = await self.reader.read(), True
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError, TransportError) as exc:
            await self.aclose()
            raise TransportError(f"{type(exc).__name__}: {exc}") from None
        self.last = time.perf_counter()
        if close:
            await self.aclose()
        return status, payload

    async def aclose(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None


class HttpxConnection:
    """The same interface over a shared httpx.AsyncClient (--client httpx)."""

    def __init__(self, client: httpx.AsyncClient):
        self.client = client

    async def request(self, method: str, path: str, headers: dict, body: dict | None = None) -> tuple[int, bytes]:
        try:
            r = await self.client.request(method, path, headers=headers, json=body)
        except httpx.HTTPError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from None
        return r.status_code, r.content

    async def aclose(self) -> None:
        pass


class Connections:
    """Makes one connection per simulated client, of the chosen kind."""

    def __init__(self, kind: str, host: str, port: int, clients: int):
        self.kind, self.host, self.port = kind, host, port
        self.shared = None
        if kind == "httpx":
            limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
            self.shared = httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=60, limits=limits)

    def new(self):
        return HttpxConnection(self.shared) if self.shared else RawConnection(self.host, self.port)

    async def aclose(self) -> None:
        if self.shared is not None:
            await self.shared.aclose()


async def throughput(server: Server, heads: dict[str, dict], *, clients: int, warmup: float, duration: float,
                     idempotency: bool, client_kind: str, cpu: CpuMeter | None, label: str) -> dict:
    """`clients` loops of complete instances; only requests that finish inside the measured window count."""
    lat: dict[str, list[float]] = {k: [] for k in KINDS}
    errors: list[dict] = []
    chains = Counter()
    finished: list[tuple[float, str]] = []  # (finish time, kind) of every successful request
    window: dict = {}
    begin = time.perf_counter()
    t0, t1 = begin + warmup, begin + warmup + duration
    conns = Connections(client_kind, server.host, server.port, clients)

    def error(kind: str, status, body: str) -> None:
        at = time.perf_counter()
        errors.append({"kind": kind, "status": status, "body": body[:300], "in_window": t0 <= at <= t1,
                       "at_s": round(at - begin, 2)})

    async def call(conn, kind: str, path: str, who: str, body: dict):
        headers = heads[who]
        if idempotency:
            headers = {**headers, "Idempotency-Key": uuid.uuid4().hex}
        ts = time.perf_counter()
        try:
            status, payload = await conn.request("POST", path, headers, body)
        except TransportError as exc:
            error(kind, "transport", str(exc))
            return None
        te = time.perf_counter()
        if not 200 <= status < 300:
            error(kind, status, payload.decode("utf-8", "replace"))
            return None
        finished.append((te, kind))
        if t0 <= te <= t1:
            lat[kind].append(te - ts)
        try:
            return json.loads(payload)
        except ValueError:
            error(kind, f"{status} (not JSON)", payload.decode("utf-8", "replace"))
            return None

    async def chain(conn) -> bool:
        res = await call(conn, "start", "/api/process-instances", INITIATOR, START_BODY)
        for who in APPROVERS:
            if res is None:
                return False
            mine = [t for t in res.get("new_tasks") or []
                    if t.get("assignee") == who and t.get("status", "open") == "open"]
            if not mine:
                error(who, "contract", f"no open task for {who} in new_tasks: {json.dumps(res, ensure_ascii=False)}")
                return False
            res = await call(conn, who, f"/api/tasks/{mine[0]['id']}/actions/approve", who, APPROVE_BODY)
        if res is None:
            return False
        if res.get("instance_status") != "completed":
            error("juzhang", "contract", f"instance not completed after the last approval: "
                  f"{json.dumps(res, ensure_ascii=False)}")
            return False
        if t0 <= time.perf_counter() <= t1:
            chains["completed"] += 1
        return True

    async def client() -> None:
        # Start chains until the window closes; a chain under way is finished (not counted after t1),
        # so no instance is left half-approved.
        conn = conns.new()
        try:
            while time.perf_counter() < t1:
                if not await chain(conn):
                    await asyncio.sleep(0.05)  # do not spin on a failing server
        finally:
            await conn.aclose()

    async def monitor() -> None:
        seen, last = 0, time.perf_counter()
        while True:
            await asyncio.sleep(5)
            now = time.perf_counter()
            phase = "warm-up" if now < t0 else "measuring" if now <= t1 else "draining"
            say(f"  [{label}] {now - begin:5.0f} s {phase:9}  {(len(finished) - seen) / (now - last):6.1f} "
                f"requests/s, {len(errors)} errors so far")
            seen, last = len(finished), now

    async def window_marks() -> None:
        await asyncio.sleep(max(0.0, t0 - time.perf_counter()))
        if cpu is not None:
            cpu.start()
        await asyncio.sleep(max(0.0, t1 - time.perf_counter()))
        if cpu is not None:
            window["cpu"] = cpu.stop()

    mon = asyncio.create_task(monitor())
    marks = asyncio.create_task(window_marks())
    try:
        await asyncio.gather(*(client() for _ in range(clients)))
        await marks
    finally:
        mon.cancel()
        await conns.aclose()
    counted = Counter(k for te, k in finished if t0 <= te <= t1)
    approvals = sum(counted[a] for a in APPROVERS)
    return {"clients": clients, "warmup": warmup, "duration": duration, "lat": lat, "counted": dict(counted),
            "approvals_per_s": approvals / duration, "actions_per_s": sum(counted.values()) / duration,
            "instances_per_s": chains["completed"] / duration, "errors": errors,
            "errors_in_window": sum(e["in_window"] for e in errors), "cpu": window.get("cpu"),
            "total_requests": len(finished)}


# -- where the time goes: the engine in this process ----------------------------------------------------
class StatementCounter:
    """Counts the statements engine calls send: the raw DB-API ones of engine/sql.py (its methods
    wrapped in this process only), ORM/Core ones (SQLAlchemy events), and pool checkouts (each one
    a ping round trip when the connection sat idle)."""

    def __init__(self, db):
        from sqlalchemy import event

        import engine.sql as sqlmod

        self.on = False
        self.raw: list[tuple[str, tuple]] = []
        self.orm = 0
        self.checkouts = 0
        counter = self

        def wrap(f):
            def w(self_, sql, params=(), **kw):
                if counter.on:
                    counter.raw.append((sql, params))
                return f(self_, sql, params, **kw)
            return w

        def wrap_flush(f):
            def w(self_):
                if counter.on and self_._deferred:  # the deferred writes go as one statement
                    counter.raw.append((f"[{len(self_._deferred)} deferred writes]", ()))
                return f(self_)
            return w

        if not getattr(sqlmod.Sql, "_bench_wrapped", False):
            for name in ("row", "rows", "run"):  # many() and defer() send through run()
                setattr(sqlmod.Sql, name, wrap(getattr(sqlmod.Sql, name)))
            sqlmod.Sql.flush = wrap_flush(sqlmod.Sql.flush)
            sqlmod.Sql._bench_wrapped = True
        event.listen(db.engine, "before_cursor_execute", self._orm)
        event.listen(db.engine, "checkout", self._checkout)

    def _orm(self, *_a):
        if self.on:
            self.orm += 1

    def _checkout(self, *_a):
        if self.on:
            self.checkouts += 1

    @contextmanager
    def counting(self):
        self.raw, self.orm, self.checkouts, self.on = [], 0, 0, True
        try:
            yield self
        finally:
            self.on = False

    def figures(self) -> dict:
        return {"raw": len(self.raw), "orm": self.orm, "checkouts": self.checkouts}


def in_process(url: str, settings_kw: dict, tokens: dict[str, str], *, chains: int, inbox_user: str) -> dict:
    """authenticate(), start/act and inbox timed without HTTP, single-threaded, on the bench database;
    the statements each sends; the inbox SQL as the engine sends it, with EXPLAIN ANALYZE."""
    from engine import ClientInfo, Database, Settings, WorkflowEngine, authenticate

    settings = Settings(**settings_kw)
    db = Database(settings.database_url)
    eng = WorkflowEngine(db, settings)
    counter = StatementCounter(db)
    out: dict = {"ms": {}, "statements": {}}
    try:
        principal = {u: authenticate(db, settings, t, ClientInfo()) for u, t in tokens.items()}

        def timed(kind: str, fn, n: int):
            for _ in range(3):
                fn()  # warm: caches, pool, plans
            times = []
            for _ in range(n):
                t = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t)
            with counter.counting():
                fn()
            out["ms"][kind] = summary_ms(times)
            out["statements"][kind] = counter.figures()

        timed("authenticate", lambda: authenticate(db, settings, tokens[INITIATOR], ClientInfo()), 200)

        times = {k: [] for k in KINDS}

        def step(kind: str, record: dict | None, res=None):
            t = time.perf_counter()
            if kind == "start":
                res = eng.start(key=PROCESS_KEY, username=INITIATOR, data=dict(REQUEST))
            else:
                task = next(v for v in res.new_tasks if v.assignee == kind)
                res = eng.act(task_id=task.id, action="approve", username=kind, data={"opinion": "同意"})
            if record is not None:
                record[kind].append(time.perf_counter() - t)
            return res

        for n in range(3 + chains):
            res = None
            for kind in KINDS:
                res = step(kind, times if n >= 3 else None, res)
            assert res.instance_status == "completed", res.instance_status
        for k in KINDS:
            out["ms"][k] = summary_ms(times[k])
        res = None
        for kind in KINDS:  # statements per step, on one more chain
            with counter.counting():
                res = step(kind, None, res)
            out["statements"][kind] = counter.figures()

        def inbox():
            return eng.inbox(principal=principal[inbox_user], scope="mine", status="open", page=1, size=20)

        timed("inbox", inbox, 200)
        # The inbox SQL exactly as the engine sent it (the counted call in timed()).
        captured = list(counter.raw)
        out["inbox_user"], out["inbox_total"] = inbox_user, inbox()[1]
        out["explain"] = []
        with psycopg.connect(url) as c:
            for sql, params in captured:
                text = sql.replace("?", "%s")  # what engine/sql.py does for PostgreSQL
                plan = [r[0] for r in c.execute(f"EXPLAIN (ANALYZE, BUFFERS) {text}", params).fetchall()]
                out["explain"].append({"sql": text, "params": [str(p) for p in params], "plan": plan})
            c.rollback()
    finally:
        db.dispose()
    return out


async def asgi_run(settings_kw: dict, heads: dict[str, dict], *, chains: int, inbox_user: str,
                   without_middleware: bool = False) -> dict:
    """The FastAPI app called in this process through httpx.ASGITransport: the whole request stack
    (routing, dependencies, authentication, validation, the engine, serialisation) without uvicorn,
    sockets or a second process. With `without_middleware`, the app's two @app.middleware("http")
    layers are left out of this in-process copy (the server is not touched), to price them."""
    from api.main import create_app
    from engine import Settings

    app = create_app(Settings(**settings_kw))
    if without_middleware:
        app.user_middleware.clear()  # before the first request builds the middleware stack
    times: dict[str, list[float]] = {k: [] for k in (*KINDS, "inbox")}
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://asgi") as c:
            async def send(kind: str, method: str, path: str, who: str, body: dict | None, record: bool):
                t = time.perf_counter()
                r = await c.request(method, path, headers=heads[who], json=body)
                if record:
                    times[kind].append(time.perf_counter() - t)
                if not 200 <= r.status_code < 300:
                    raise RuntimeError(f"{method} {path} as {who}: {r.status_code} {r.text[:300]}")
                return r.json()

            for n in range(3 + chains):
                res = await send("start", "POST", "/api/process-instances", INITIATOR, START_BODY, n >= 3)
                for who in APPROVERS:
                    task = next(t for t in res["new_tasks"] if t["assignee"] == who)
                    res = await send(who, "POST", f"/api/tasks/{task['id']}/actions/approve", who, APPROVE_BODY,
                                     n >= 3)
            for n in range(203):
                await send("inbox", "GET", INBOX_PATH, inbox_user, None, n >= 3)
    finally:
        app.state.engine.db.dispose()
    return {k: summary_ms(v) for k, v in times.items()}


# -- inbox --------------------------------------------------------------------------------------------------
def pick_inbox_users(url: str, member_ids: tuple[int, int], heavy: int, *, sample: int, seed: int) -> dict:
    """The demo users plus `sample` synthetic members (a fifth from the busiest 1 %, the rest from
    everyone else), each with the number of open tasks SQL counts."""
    rnd = random.Random(seed)
    lo, hi = member_ids
    n_heavy = min(heavy, max(1, sample // 5))
    ids = rnd.sample(range(lo, lo + heavy), n_heavy) + \
        rnd.sample(range(lo + heavy, hi + 1), min(sample - n_heavy, hi + 1 - lo - heavy))
    with psycopg.connect(url) as c:
        rows = c.execute(
            "SELECT u.username, u.id, (SELECT count(*) FROM tasks t WHERE t.assignee_id = u.id AND t.status = 'open') "
            "FROM users u WHERE u.id = ANY(%s) OR u.username = ANY(%s)", (ids, [INITIATOR, *APPROVERS])).fetchall()
    users = {}
    for name, uid, n_open in rows:
        group = "demo" if name in (INITIATOR, *APPROVERS) else "busiest 1 %" if uid < lo + heavy else "others"
        users[name] = {"id": uid, "open": n_open, "group": group}
    return users


async def inbox_run(server: Server, heads: dict[str, dict], users: dict, *, order: list[str], clients: int,
                    client_kind: str, check: bool = False) -> dict:
    """GET the first inbox page for each name in `order`, from `clients` concurrent connections."""
    samples: list[tuple[str, float]] = []
    errors: list[dict] = []
    mismatched: list[str] = []
    todo = list(reversed(order))
    conns = Connections(client_kind, server.host, server.port, clients)
    t_begin = time.perf_counter()

    async def client():
        conn = conns.new()
        try:
            while todo:
                name = todo.pop()
                t = time.perf_counter()
                try:
                    status, payload = await conn.request("GET", INBOX_PATH, heads[name])
                except TransportError as exc:
                    errors.append({"status": "transport", "body": str(exc)[:300], "user": name})
                    continue
                dt = time.perf_counter() - t
                if status != 200:
                    errors.append({"status": status, "body": payload[:300].decode("utf-8", "replace"), "user": name})
                    continue
                samples.append((name, dt))
                if check:
                    body = json.loads(payload)
                    want = users[name]["open"]
                    items = body.get("items") or []
                    if body.get("total") != want or len(items) != min(20, want) or \
                            any(i.get("status") != "open" for i in items):
                        mismatched.append(f"{name}: total {body.get('total')}, {len(items)} items; SQL counts "
                                          f"{want} open")
        finally:
            await conn.aclose()

    try:
        await asyncio.gather(*(client() for _ in range(clients)))
    finally:
        await conns.aclose()
    elapsed = time.perf_counter() - t_begin
    return {"samples": samples, "errors": errors, "mismatched": mismatched, "clients": clients,
            "requests_per_s": len(samples) / elapsed}


async def inbox_open_loop(server: Server, heads: dict[str, dict], *, order: list[str], rate: float, pool: int,
                          client_kind: str, seed: int) -> dict:
    """Inbox requests arriving at `rate` per second (Poisson), whatever the server's speed, over up to `pool`
    connections. Each latency runs from the request's scheduled arrival, so time spent waiting for a free
    connection counts too (no coordinated omission)."""
    rnd = random.Random(seed)
    samples: list[tuple[str, float]] = []
    errors: list[dict] = []
    conns = Connections(client_kind, server.host, server.port, pool)
    free: asyncio.Queue = asyncio.Queue()
    for _ in range(pool):
        free.put_nowait(conns.new())
    late = 0

    async def one(name: str, due: float):
        nonlocal late
        if free.empty():  # every connection busy: this request waits for one (and is charged for it)
            late += 1
        conn = await free.get()
        try:
            status, payload = await conn.request("GET", INBOX_PATH, heads[name])
            if status != 200:
                errors.append({"status": status, "body": payload[:300].decode("utf-8", "replace"), "user": name})
            else:
                samples.append((name, time.perf_counter() - due))
        except TransportError as exc:
            errors.append({"status": "transport", "body": str(exc)[:300], "user": name})
        finally:
            free.put_nowait(conn)

    t0 = time.perf_counter() + 0.05
    due, pending = t0, []
    try:
        for name in order:
            due += rnd.expovariate(rate)
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.append(asyncio.ensure_future(one(name, due)))
        await asyncio.gather(*pending)
    finally:
        while not free.empty():
            await free.get_nowait().aclose()
        await conns.aclose()
    return {"samples": samples, "errors": errors, "rate": rate, "pool": pool, "queued": late,
            "requests_per_s": len(samples) / max(1e-9, time.perf_counter() - t0)}


# -- report ---------------------------------------------------------------------------------------------------
def _f(v: float | None, d: int = 1) -> str:
    return "–" if v is None or v != v else f"{v:,.{d}f}"  # noqa: PLR0124 - NaN check


def _lat_table(title: str, lat: dict[str, list[float]]) -> list[str]:
    lines = [title, "", "| request | n | p50 ms | p95 ms | p99 ms | max ms |", "|---|---:|---:|---:|---:|---:|"]
    for k in KINDS:
        s = summary_ms(lat[k])
        lines.append(f"| {KIND_LABELS[k]} | {s['n']:,} | {_f(s['p50'])} | {_f(s['p95'])} | {_f(s['p99'])} | "
                     f"{_f(s['max'])} |")
    return [*lines, ""]


def _group_stats(samples: list[tuple[str, float]], users: dict) -> list[tuple[str, int, dict, float]]:
    by = defaultdict(list)
    names = defaultdict(set)
    for name, dt in samples:
        by[users[name]["group"]].append(dt)
        names[users[name]["group"]].add(name)
    return [(g, len(names[g]), summary_ms(by[g]), statistics.fmean(users[n]["open"] for n in names[g]))
            for g in ("demo", "busiest 1 %", "others") if by[g]]


def notes(fig: dict) -> list[str]:
    out = []
    tp, m, ip = fig["throughput"], fig["machine"], fig.get("in_process")
    cpu = tp.get("cpu")
    if cpu:
        cap = cpu["wall"] * m["usable_cpus"]
        busy = cpu["machine_busy"] / cap * 100
        per = 1000 / max(tp["actions_per_s"] * cpu["wall"], 1e-9)
        out.append(
            f"CPU during the {tp['clients']}-client window: the machine was {busy:.0f} % busy "
            f"({m['usable_cpus']} CPUs). Per action: server {cpu['server'] * per:.1f} ms CPU, PostgreSQL "
            f"{(cpu['postgres'] + cpu['postgres_background']) * per:.1f} ms, load generator "
            f"{cpu['client'] * per:.1f} ms, anything else {cpu['other'] * per:.1f} ms. "
            + ("With the CPUs saturated, throughput is (CPU available) / (CPU per action), and latency under load "
               f"is mostly queueing (Little's law: {tp['clients']} clients / {tp['actions_per_s']:.0f} actions/s = "
               f"{tp['clients'] / max(tp['actions_per_s'], 1e-9) * 1000:.0f} ms mean per request)."
               if busy >= 90 else
               "The CPUs were not saturated: the limit is elsewhere (locks, the connection pool, the "
               "workers' thread pools, or the load generator)."))
        pg_all = cpu["postgres"] + cpu["postgres_background"]
        if cpu["server"] >= pg_all:
            out.append(f"The server's Python uses {cpu['server'] / max(pg_all, 1e-9):.1f}× the CPU of "
                       "PostgreSQL: request handling (uvicorn/h11, FastAPI, pydantic validation and serialisation, "
                       "authentication) and the engine (SpiffWorkflow restore, run, serialise) are the part to "
                       "make cheaper; the database is not the bottleneck at this scale.")
        need = m["usable_cpus"] * 1000 / (TARGET_APPROVALS_PER_S * len(KINDS) / len(APPROVERS))
        used = (cpu["server"] + cpu["postgres"] + cpu["postgres_background"] + cpu["client"]) * per
        out.append(f"Budget: {TARGET_APPROVALS_PER_S:.0f} approval actions/s means "
                   f"{TARGET_APPROVALS_PER_S * len(KINDS) / len(APPROVERS):.0f} actions/s with the starts, so at most "
                   f"{need:.1f} ms of CPU per action on these {m['usable_cpus']} CPUs for server, PostgreSQL and load "
                   f"generator together; this run used {used:.1f} ms. Even with the whole machine and nothing else "
                   f"running, the ceiling here is about {m['usable_cpus'] * 1000 / used * len(APPROVERS) / len(KINDS):.0f} "
                   "approval actions/s.")
        if cpu["other_top"]:
            out.append("Other processes used CPU during the window (the machine is shared; their share was "
                       "not available to the benchmark): "
                       + ", ".join(f"{c} {d:.1f} CPU-s" for c, d in cpu["other_top"]) + ".")
    if isinstance(ip, dict):
        st = ip["statements"]

        def n(k):
            return f"{st[k]['raw'] + st[k]['orm']} (+{st[k]['checkouts']})"

        out.append("Statements per call (engine/sql.py raw + ORM, and in brackets pool checkouts, which ping only a "
                   "connection idle for 5 s or more; BEGIN/COMMIT not counted, and authenticate sends neither): "
                   f"authenticate {n('authenticate')}, "
                   + ", ".join(f"{KIND_LABELS[k]} {n(k)}" for k in KINDS) + f", inbox {n('inbox')}. Every HTTP "
                   "request runs the authenticate statements before its own.")
    busiest = [x for _n, x in fig["inbox"].get("busiest", {}).get("samples", [])]
    if busiest and isinstance(ip, dict):
        out.append(f"Inbox: for {ip['inbox_user']} ({ip['inbox_total']:,} open tasks) the engine's inbox takes "
                   f"{ip['ms']['inbox']['p50']:.1f} ms (p50) in-process and authenticate "
                   f"{ip['ms']['authenticate']['p50']:.1f} ms, while the HTTP request takes "
                   f"{pct(busiest, 50) * 1000:.1f} ms p50: most of an inbox request is request handling and "
                   "the validation and serialisation of up to 20 TaskViews, not SQL.")
    if isinstance(ip, dict) and ip.get("explain"):
        times = []
        for x in ip["explain"]:
            t = next((line.split(":")[1].strip() for line in x["plan"] if line.startswith("Execution Time")), "?")
            times.append(t)
        out.append(f"Inbox SQL for {ip['inbox_user']} ({ip['inbox_total']:,} open tasks), EXPLAIN ANALYZE execution: "
                   + ", ".join(times) + f" ({len(times)} statement{'s' if len(times) != 1 else ''}, outside a "
                   "transaction). The page walks ix_tasks_assignee_status_id backwards and stops after 20 rows; "
                   "the total, a COUNT(*) subquery evaluated once, visits every open task of the user, so it grows "
                   "with the size of the inbox — see the plans below.")
    open_loop = fig["inbox"].get("open_loop")
    if open_loop:
        out.append(f"The open-loop inbox run sends requests at random (Poisson) times, {open_loop['rate']:.0f} per "
                   "second on average, whatever the server's speed, over up to "
                   f"{open_loop['pool']} connections; each latency counts from the request's arrival time, so a "
                   f"request that had to wait for a connection ({open_loop['queued']} did) is charged for it. "
                   f"{open_loop['rate']:.0f}/s is about four times the peak of an organisation of 11,000 members all "
                   "opening their 待办 within the same quarter of an hour (11,000 / 900 s ≈ 12/s).")
    conc = fig["inbox"].get("concurrent")
    if conc:
        out.append(f"The back-to-back inbox run is closed-loop (each of {conc['clients']} clients sends its next "
                   f"request as soon as the last returns, {conc['requests_per_s']:.0f} requests/s): it saturates the "
                   "CPUs, so its tail is queueing; it shows the capacity, not a latency anyone waits for at a "
                   "realistic load, and has no target.")
    out.append("Client, server and PostgreSQL share one machine: the load generator's CPU is taken from the "
               "server, so a separate load-generating machine would see somewhat more throughput.")
    if fig["params"]["server"] == "djflow":
        out.append("Server: `djflow serve --workers 2` — two uvicorn processes sharing one SO_REUSEPORT socket "
                   "created with IPPROTO_TCP so asyncio sets TCP_NODELAY (engine/cli.py). Plain `uvicorn --workers "
                   "2` (`--server uvicorn`) binds a socket with proto 0, asyncio then leaves Nagle on, and every "
                   "response waits ~40 ms for the client's delayed ACK (measured on this machine: GET /api/health "
                   "2 ms vs 44 ms).")
    out.append("The history rows are synthetic (state '{}', no audit events or notifications); only the inbox reads "
               f"them. The throughput run works on top of them, so its inserts maintain the indexes of a "
               f"{fig['history']['tasks']:,}-row table.")
    return out


def write_report(out: Path, fig: dict) -> None:
    m, pg, p, h = fig["machine"], fig["pg"], fig["params"], fig["history"]
    tp, base, ib, ip = fig["throughput"], fig.get("baseline"), fig["inbox"], fig.get("in_process")
    seq = [s for _, s in ib["sequential"]["samples"]]
    conc = [s for _, s in ib["concurrent"]["samples"]] if ib.get("concurrent") else []
    seq_p99, conc_p99 = pct(seq, 99) * 1000, pct(conc, 99) * 1000

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    server = (" ".join(fig["server_cmd"][2:]) if p["server"] == "uvicorn" else f"djflow serve --workers {p['workers']}")
    lines = [
        "# djflow REST API benchmark (bench/api.py)", "",
        (f"Run {fig['at']}. Machine: {m['usable_cpus']} CPUs ({m['cpu_model'] or platform.machine()}), "
         f"{_f(m['mem_gib'])} GiB RAM, Linux {m['kernel']}, Python {m['python']}. PostgreSQL {pg['server_version']} "
         f"(shared_buffers {pg['shared_buffers']}, work_mem {pg['work_mem']}, synchronous_commit "
         f"{pg['synchronous_commit']}, fsync {pg['fsync']}). Load generator, server and PostgreSQL on the same "
         f"machine, which was {fig['busy_before']['percent']:.0f} % busy just before the run"
         + (f" ({', '.join(f'{c} {p:.0f} % of a CPU' for c, p in fig['busy_before']['top'])})"
            if fig['busy_before']['top'] else "") + "."), "",
        (f"Server: `{server}` ({p['workers']} worker processes), DJFLOW_ENVIRONMENT=production, default argon2, "
         f"token and pool settings; healthy {fig['server_start_s']:.1f} s after start. Load generator: "
         f"{'a minimal asyncio HTTP/1.1 keep-alive client' if p['client'] == 'raw' else 'httpx.AsyncClient'}, "
         f"one connection per simulated client. Database `{fig['database']}` (dropped afterwards), "
         f"`djflow init --demo` {fig['init_s']:.1f} s."
         + (f" Settings changed for this run: {', '.join(fig['settings'])}." if fig.get("settings") else "")), "",
        *([(f"Machine speed (bench/api.py `reference_speed`, a fixed single-threaded Python workload): "
             f"{fig['speed_before']:,.0f} rounds/s just before the throughput run, {fig['speed_after']:,.0f} just "
             "after. The machine is shared and drifts; compare runs at like speeds."), ""]
          if fig.get("speed_before") else []),
        "| measure | result | target | |", "|---|---:|---:|---|",
        (f"| approval actions/s, {tp['clients']} clients | {_f(tp['approvals_per_s'], 0)} | "
         f"≥ {TARGET_APPROVALS_PER_S:.0f} | {verdict(tp['approvals_per_s'] >= TARGET_APPROVALS_PER_S)} |"),
        f"| all actions/s (starts + approvals) | {_f(tp['actions_per_s'], 0)} | | |",
        f"| complete instances/s | {_f(tp['instances_per_s'], 1)} | | |",
        (f"| inbox p99, one request at a time ({len(seq):,} requests) | {_f(seq_p99)} ms | "
         f"≤ {TARGET_INBOX_P99_MS:.0f} ms | {verdict(seq_p99 <= TARGET_INBOX_P99_MS)} |"),
    ]
    open_loop = ib.get("open_loop")
    if open_loop:
        lat = [x for _n, x in open_loop["samples"]]
        open_p99 = pct(lat, 99) * 1000
        lines.append(f"| inbox p99, requests arriving at {open_loop['rate']:.0f}/s ({len(lat):,} requests) | "
                     f"{_f(open_p99)} ms | ≤ {TARGET_INBOX_P99_MS:.0f} ms | {verdict(open_p99 <= TARGET_INBOX_P99_MS)} |")
    if conc:
        lines.append(f"| inbox p99, {ib['concurrent']['clients']} clients back to back ({len(conc):,} requests, "
                     f"{ib['concurrent']['requests_per_s']:.0f}/s: saturation) | {_f(conc_p99)} ms | | |")
    n_err = (tp["errors_in_window"] + len(ib["sequential"]["errors"]) + len(ib.get("concurrent", {}).get("errors", []))
             + len(ib.get("open_loop", {}).get("errors", [])))
    lines += [f"| errors in the measured runs (non-2xx or transport) | {n_err:,} | 0 | {verdict(n_err == 0)} |", ""]

    lines += ["## Throughput", "",
              (f"{tp['clients']} concurrent clients, each looping over complete `{PROCESS_KEY}` instances: POST "
               f"/api/process-instances as {INITIATOR} with the request form (amount {REQUEST['amount']}), then POST "
               f"/api/tasks/{{id}}/actions/approve as {', '.join(APPROVERS)}, each task id taken from the previous "
               "response's `new_tasks`"
               f"{', each request with a fresh Idempotency-Key' if p['idempotency'] else ''}. "
               f"{tp['warmup']:.0f} s warm-up, then {tp['duration']:.0f} s measured (requests finishing inside the "
               f"window count); {tp['total_requests']:,} successful requests in all."), ""]
    lines += _lat_table(f"Latency with {tp['clients']} clients:", tp["lat"])
    if base:
        lines += _lat_table(f"Latency with 1 client (unloaded; {base['duration']:.0f} s, "
                            f"{_f(base['approvals_per_s'], 0)} approval actions/s, "
                            f"{_f(base['actions_per_s'], 0)} actions/s):", base["lat"])
    cpu = tp.get("cpu")
    if cpu:
        per = 1000 / max(tp["actions_per_s"] * cpu["wall"], 1e-9)
        cap = cpu["wall"] * m["usable_cpus"]
        lines += [f"CPU in the measured window ({cpu['wall']:.1f} s × {m['usable_cpus']} CPUs = {cap:.0f} CPU-s):", "",
                  "| consumer | CPU-s | share of the machine | CPU ms per action |", "|---|---:|---:|---:|"]
        for label, key in ((f"server ({cpu['server_processes']} processes)", "server"),
                           (f"PostgreSQL, the bench database's {cpu['postgres_backends']} backends", "postgres"),
                           ("PostgreSQL background (WAL writer, checkpointer, autovacuum …)", "postgres_background"),
                           ("load generator (this process)", "client"), ("anything else", "other")):
            lines.append(f"| {label} | {cpu[key]:.1f} | {cpu[key] / cap * 100:.0f} % | {cpu[key] * per:.2f} |")
        lines += [f"| whole machine busy | {cpu['machine_busy']:.1f} | {cpu['machine_busy'] / cap * 100:.0f} % | "
                  f"{cpu['machine_busy'] * per:.2f} |", ""]
    all_errors = tp["errors"] + (base["errors"] if base else [])
    if all_errors:
        kinds = Counter((e["kind"], str(e["status"])) for e in all_errors)
        lines += [f"Errors: {len(all_errors):,} in all ({tp['errors_in_window']:,} inside the {tp['clients']}-client "
                  "measured window): " + ", ".join(f"{k} {s} × {c}" for (k, s), c in kinds.most_common()) + ".",
                  "", "First of each kind:", ""]
        seen = set()
        for e in all_errors:
            if (e["kind"], str(e["status"])) not in seen:
                seen.add((e["kind"], str(e["status"])))
                body = e["body"].replace("`", "'").replace("\n", " ")
                lines.append(f"- {e['kind']} {e['status']} at {e['at_s']} s: `{body}`")
        if fig.get("server_log_tail"):
            lines += ["", "Server log (tail):", "", "```", fig["server_log_tail"], "```"]
        lines.append("")

    lines += ["## Where the time goes", ""]
    if isinstance(ip, dict):
        lines += [(f"The same calls in this process, without HTTP, one at a time, on the same database "
                   f"({p['inprocess_chains']} chains; statements counted on one more call):"), "",
                  "| call | p50 ms | p95 ms | raw SQL | ORM SQL | pool checkouts |", "|---|---:|---:|---:|---:|---:|"]
        for k, label in (("authenticate", "authenticate() (every request)"),
                         *((k, f"engine: {KIND_LABELS[k]}") for k in KINDS),
                         ("inbox", f"engine.inbox ({ip['inbox_user']}, {ip['inbox_total']:,} open)")):
            s, st = ip["ms"][k], ip["statements"][k]
            lines.append(f"| {label} | {_f(s['p50'], 2)} | {_f(s['p95'], 2)} | {st['raw']} | {st['orm']} | "
                         f"{st['checkouts']} |")
        lines.append("")
    elif ip:
        lines += [f"The in-process measurement failed: `{ip}`", ""]
    asgi, bare = fig.get("asgi"), fig.get("asgi_bare")
    if isinstance(ip, dict) and isinstance(asgi, dict) and isinstance(bare, dict) and base:
        busiest = ip["inbox_user"]
        http = {k: summary_ms(base["lat"][k])["p50"] for k in KINDS}
        http["inbox"] = summary_ms([x for _n, x in ib["busiest"]["samples"]])["p50"] if ib.get("busiest") else None
        auth = ip["ms"]["authenticate"]["p50"]
        lines += ["Unloaded latency (p50 ms) taken apart: over HTTP with 1 client; the same request through the "
                  "app in this process (httpx.ASGITransport: no uvicorn, socket or process hop); the same without "
                  "the app's two `@app.middleware(\"http\")` layers; the engine call alone; authenticate() alone.", "",
                  "| request | HTTP | ASGI | ASGI, no middleware | engine | authenticate | → uvicorn + socket | "
                  "→ middleware | → FastAPI rest |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for k in (*KINDS, "inbox"):
            label = KIND_LABELS.get(k, f"inbox ({busiest})")
            h_, a_, b_, e_ = http[k], asgi[k]["p50"], bare[k]["p50"], ip["ms"][k]["p50"]
            if None in (h_, a_, b_, e_):
                continue
            lines.append(f"| {label} | {h_:.1f} | {a_:.1f} | {b_:.1f} | {e_:.1f} | {auth:.1f} | {h_ - a_:.1f} | "
                         f"{a_ - b_:.1f} | {b_ - e_ - auth:.1f} |")
        lines += ["", "(→ columns are differences of medians, so only indicative. \"FastAPI rest\" is routing, "
                  "dependency resolution — sync dependencies and routes each hop through the thread pool — request "
                  "validation, response-model validation and JSON encoding, plus httpx's own client cost.)", ""]
    elif isinstance(asgi, str) or isinstance(bare, str):
        lines += [f"The in-process ASGI measurement failed: `{asgi if isinstance(asgi, str) else bare}`", ""]
    elif asgi or bare:
        lines += ["(No 1-client run (--baseline 0), so the unloaded latency is not taken apart.)", ""]
    lines += [f"- {n}" for n in notes(fig)] + [""]

    lines += ["## Inbox", "",
              (f"History loaded by SQL before the server started: {h['tasks']:,} `tasks` rows ({h['open']:,} open) "
               f"over {h['instances']:,} instances and {h['members']:,} synthetic members, in {h['seconds']:.0f} s "
               f"(tasks {h['tasks_size']}, instances {h['instances_size']}, with indexes). Each demo approver holds "
               f"{DEMO_SHARE_PER_MILLE / 10:.0f} % of the approval slots, the busiest {h['heavy_members']} members "
               f"{HEAVY_SHARE_PER_MILLE / 10:.0f} % between them, the other members the rest; {RUNNING_PERCENT} % of "
               "the instances are running with their last task open."), "",
              (f"GET {INBOX_PATH} as {len(fig['inbox_users'])} users (the demo users and sampled members) after one "
               f"untimed round that also checks each `total` against SQL; {p['inbox_rounds']} shuffled rounds one "
               "request at a time"
               + (f", then {len(conc):,} requests from {ib['concurrent']['clients']} concurrent clients "
                  f"({ib['concurrent']['requests_per_s']:.0f} requests/s)" if conc else "") + "."), "",
              "| run: users | users | mean open tasks | requests | p50 ms | p95 ms | p99 ms | max ms |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    runs = [("one at a time", ib["sequential"]["samples"])]
    if conc:
        runs.append((f"{ib['concurrent']['clients']} concurrent", ib["concurrent"]["samples"]))
    for label, samples in runs:
        for g, n_users, s, mean_open in _group_stats(samples, fig["inbox_users"]):
            lines.append(f"| {label}: {g} | {n_users} | {mean_open:,.0f} | {s['n']:,} | {_f(s['p50'])} | "
                         f"{_f(s['p95'])} | {_f(s['p99'])} | {_f(s['max'])} |")
        s = summary_ms([x for _, x in samples])
        lines.append(f"| **{label}: all** | {len({n for n, _ in samples})} | | {s['n']:,} | **{_f(s['p50'])}** | "
                     f"{_f(s['p95'])} | **{_f(s['p99'])}** | {_f(s['max'])} |")
    lines.append("")
    mism = fig["inbox"]["check"]["mismatched"]
    lines.append(f"Check: {len(fig['inbox_users']) - len(mism)} of {len(fig['inbox_users'])} first pages agree with "
                 "SQL (total = open tasks, min(20, total) items, all open).")
    lines += [f"- {x}" for x in mism[:10]]
    for e in (ib["sequential"]["errors"] + ib.get("concurrent", {}).get("errors", []))[:5]:
        lines.append(f"- inbox error {e['status']} as {e['user']}: `{e['body']}`")
    if isinstance(ip, dict) and ip.get("explain"):
        lines += ["", (f"The SQL `WorkflowEngine.inbox` sent for {ip['inbox_user']} (captured in this process from "
                       "engine/sql.py at run time), with PostgreSQL's plan:"), ""]
        for x in ip["explain"]:
            lines += ["```sql", x["sql"], f"-- params: {x['params']}", "```", "", "```", *x["plan"], "```", ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")


# -- main ---------------------------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=_HERE / "report-api.md")
    ap.add_argument("--json", help="also write the raw figures as JSON to this file ('-' for stdout)")
    ap.add_argument("--server", choices=("djflow", "uvicorn"), default="djflow",
                    help="djflow: `djflow serve --workers N` (default); uvicorn: `uvicorn --factory --workers N`")
    ap.add_argument("--client", choices=("raw", "httpx"), default="raw",
                    help="load generator: a minimal asyncio HTTP/1.1 client (default) or httpx.AsyncClient")
    ap.add_argument("--workers", type=int, default=2, help="server worker processes (2)")
    ap.add_argument("--clients", type=int, default=50, help="concurrent clients in the throughput run (50)")
    ap.add_argument("--warmup", type=float, default=10, help="seconds of warm-up, not counted (10)")
    ap.add_argument("--duration", type=float, default=60, help="seconds measured (60)")
    ap.add_argument("--baseline", type=float, default=10, help="seconds of the 1-client run, 0 to skip (10)")
    ap.add_argument("--idempotency-keys", action="store_true", help="send a fresh Idempotency-Key with each action")
    ap.add_argument("--history-instances", type=int, default=200_000, help="synthetic instances, 5 tasks each")
    ap.add_argument("--members", type=int, default=11_000, help="synthetic members")
    ap.add_argument("--chunk", type=int, default=20_000, help="instances per INSERT statement while loading")
    ap.add_argument("--inbox-members", type=int, default=200, help="synthetic members sampled for the inbox")
    ap.add_argument("--inbox-rounds", type=int, default=3)
    ap.add_argument("--inbox-clients", type=int, default=10, help="concurrent inbox clients, 0 to skip (10)")
    ap.add_argument("--inbox-concurrent-requests", type=int, default=2000)
    ap.add_argument("--inbox-rate", type=float, default=50.0,
                    help="open-loop inbox requests per second (50), 0 to skip")
    ap.add_argument("--inbox-open-requests", type=int, default=1500, help="requests in the open-loop inbox run")
    ap.add_argument("--inprocess-chains", type=int, default=30)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep-db", action="store_true", help="do not drop the database (for debugging)")
    ap.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE",
                    help="a djflow setting for the server, e.g. engine_threads=3 (repeatable; for comparisons)")
    args = ap.parse_args()
    if args.members < 200 or args.inbox_members < 1:
        ap.error("--members must be at least 200 and --inbox-members at least 1")

    # SIGTERM ends the run like Ctrl+C: the finally blocks stop the server and drop the database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    fig: dict = {"at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine_info(),
                 "params": {"server": args.server, "client": args.client, "workers": args.workers,
                            "clients": args.clients, "warmup": args.warmup, "duration": args.duration,
                            "idempotency": args.idempotency_keys, "inbox_rounds": args.inbox_rounds,
                            "inprocess_chains": args.inprocess_chains}}
    say(f"machine: {fig['machine']['usable_cpus']} CPUs, {fig['machine']['cpu_model']}")
    busy, top = machine_busy_now()
    fig["busy_before"] = {"percent": busy, "top": top}
    say(f"  {busy:.0f} % busy before the run" + (f" (top: {', '.join(f'{c} {p:.0f} %' for c, p in top)})"
                                                 if top else ""))
    if busy > 15:
        say("  warning: the machine is not idle; other work will take CPU from the benchmark")
    tmp = Path(tempfile.mkdtemp(prefix="djflow-bench-api-"))
    try:
        with database(PG_ADMIN_URL, keep=args.keep_db) as (name, url):
            fig["database"] = name
            fig["pg"] = pg_info(url)
            say(f"PostgreSQL {fig['pg']['server_version']}")
            settings_kw, env = server_settings(url, tmp, args.setting)
            fig["settings"] = args.setting

            say(f"djflow init --demo on {name}")
            fig["init_s"] = djflow_init(env)
            say(f"  {fig['init_s']:.1f} s")

            from engine.config import Settings
            from engine.identity.passwords import hash_password

            member_hash = hash_password(MEMBER_PASSWORD, Settings(**settings_kw))
            say(f"loading the history: {args.history_instances:,} instances × 5 = "
                f"{args.history_instances * 5:,} tasks, {args.members:,} members")
            h = fig["history"] = load_history(url, instances=args.history_instances, members=args.members,
                                              member_hash=member_hash, chunk=args.chunk)
            say(f"  {h['tasks']:,} tasks ({h['open']:,} open) in {h['seconds']:.1f} s")

            say(f"starting the server ({args.server}, {args.workers} workers)")
            server = Server(args.server, args.workers, env, tmp / "server.log")
            fig["server_cmd"] = server.cmd
            try:
                fig["server_start_s"] = server.wait_healthy()
                say(f"  {server.base} healthy after {fig['server_start_s']:.1f} s")
                with httpx.Client(base_url=server.base, timeout=60) as c:
                    heads = {u: login(c, u, DEMO_PASSWORD) for u in (INITIATOR, *APPROVERS)}
                say(f"signed in {', '.join(heads)} (initial passwords changed)")

                if args.baseline > 0:
                    say(f"throughput, 1 client: 2 s warm-up + {args.baseline:.0f} s")
                    base = fig["baseline"] = asyncio.run(throughput(
                        server, heads, clients=1, warmup=2, duration=args.baseline,
                        idempotency=args.idempotency_keys, client_kind=args.client, cpu=None, label="1 client"))
                    say(f"  {base['approvals_per_s']:.0f} approval actions/s, errors {len(base['errors'])}")
                fig["speed_before"] = reference_speed()
                say(f"reference workload: {fig['speed_before']:,.0f} rounds/s (machine speed)")
                say(f"throughput, {args.clients} clients: {args.warmup:.0f} s warm-up + {args.duration:.0f} s")
                tp = fig["throughput"] = asyncio.run(throughput(
                    server, heads, clients=args.clients, warmup=args.warmup, duration=args.duration,
                    idempotency=args.idempotency_keys, client_kind=args.client, cpu=CpuMeter(server.proc.pid, url, name),
                    label=f"{args.clients} clients"))
                fig["speed_after"] = reference_speed()
                say(f"  {tp['approvals_per_s']:.0f} approval actions/s, {tp['actions_per_s']:.0f} actions/s, "
                    f"errors {tp['errors_in_window']} in the window ({len(tp['errors'])} in all)")
                for e in tp["errors"][:3]:
                    say(f"    {e['kind']} {e['status']}: {e['body'][:200]}")

                say("VACUUM ANALYZE (the inbox is timed in a steady state)")
                with psycopg.connect(url, autocommit=True) as c:
                    c.execute("VACUUM ANALYZE")

                users = fig["inbox_users"] = pick_inbox_users(url, h["member_ids"], h["heavy_members"],
                                                              sample=args.inbox_members, seed=args.seed)
                say(f"inbox: signing in {len(users)} users")
                with httpx.Client(base_url=server.base, timeout=60) as c:
                    inbox_heads = {u: login(c, u, NEW_PASSWORD) for u in users if users[u]["group"] == "demo"}
                inbox_heads.update(asyncio.run(login_many(
                    server.base, [u for u in users if users[u]["group"] != "demo"], MEMBER_PASSWORD)))

                say(f"where the time goes: {args.inprocess_chains} chains, authenticate and inbox in this process")
                busiest = max((u for u in users if users[u]["group"] == "demo"), key=lambda u: users[u]["open"])
                tokens = {u: inbox_heads[u]["Authorization"][7:] for u in (INITIATOR, busiest)}
                try:
                    ip = fig["in_process"] = in_process(url, settings_kw, tokens, chains=args.inprocess_chains,
                                                        inbox_user=busiest)
                    say("  p50: " + ", ".join(f"{k} {v['p50']:.2f} ms" for k, v in ip["ms"].items()))
                except Exception as exc:  # noqa: BLE001 - the engine is being reworked; report it, go on
                    fig["in_process"] = f"{type(exc).__name__}: {exc}"
                    say(f"  failed: {fig['in_process']}")
                for key, bare in (("asgi", False), ("asgi_bare", True)):
                    try:
                        fig[key] = asyncio.run(asgi_run(settings_kw, inbox_heads, chains=args.inprocess_chains,
                                                        inbox_user=busiest, without_middleware=bare))
                        say(f"  ASGI{' without middleware' if bare else ''} p50: "
                            + ", ".join(f"{k} {v['p50']:.2f} ms" for k, v in fig[key].items()))
                    except Exception as exc:  # noqa: BLE001 - the API is being reworked; report it, go on
                        fig[key] = f"{type(exc).__name__}: {exc}"
                        say(f"  ASGI run failed: {fig[key]}")

                rnd = random.Random(args.seed)
                names = list(inbox_heads)
                say(f"inbox: one untimed round ({len(names)} users) checking totals against SQL")
                fig["inbox"] = {"check": asyncio.run(inbox_run(server, inbox_heads, users, order=names, clients=1,
                                                               client_kind=args.client, check=True))}
                if fig["inbox"]["check"]["mismatched"]:
                    say(f"  {len(fig['inbox']['check']['mismatched'])} disagree, e.g. "
                        f"{fig['inbox']['check']['mismatched'][0]}")
                say(f"inbox, one request at a time: 200 requests as {busiest} (to set against the in-process figures)")
                fig["inbox"]["busiest"] = asyncio.run(inbox_run(server, inbox_heads, users, order=[busiest] * 200,
                                                                clients=1, client_kind=args.client))
                order = []
                for _ in range(args.inbox_rounds):
                    rnd.shuffle(names)
                    order += names
                say(f"inbox, one request at a time: {len(names)} users × {args.inbox_rounds} rounds")
                seq_run = fig["inbox"]["sequential"] = asyncio.run(inbox_run(
                    server, inbox_heads, users, order=order, clients=1, client_kind=args.client))
                seq = [s for _, s in seq_run["samples"]]
                say(f"  p50 {pct(seq, 50) * 1000:.1f} ms, p99 {pct(seq, 99) * 1000:.1f} ms, "
                    f"errors {len(seq_run['errors'])}")
                if args.inbox_rate > 0:
                    say(f"inbox, open loop: {args.inbox_open_requests} requests arriving at {args.inbox_rate:.0f}/s")
                    order = [rnd.choice(names) for _ in range(args.inbox_open_requests)]
                    open_run = fig["inbox"]["open_loop"] = asyncio.run(inbox_open_loop(
                        server, inbox_heads, order=order, rate=args.inbox_rate, pool=32, client_kind=args.client,
                        seed=args.seed))
                    lat = [s for _, s in open_run["samples"]]
                    say(f"  p50 {pct(lat, 50) * 1000:.1f} ms, p99 {pct(lat, 99) * 1000:.1f} ms, "
                        f"{open_run['requests_per_s']:.0f} requests/s, errors {len(open_run['errors'])}")
                if args.inbox_clients > 0:
                    say(f"inbox, {args.inbox_clients} concurrent clients: {args.inbox_concurrent_requests} requests")
                    order = [rnd.choice(names) for _ in range(args.inbox_concurrent_requests)]
                    conc_run = fig["inbox"]["concurrent"] = asyncio.run(inbox_run(
                        server, inbox_heads, users, order=order, clients=args.inbox_clients,
                        client_kind=args.client))
                    conc = [s for _, s in conc_run["samples"]]
                    say(f"  p50 {pct(conc, 50) * 1000:.1f} ms, p99 {pct(conc, 99) * 1000:.1f} ms, "
                        f"{conc_run['requests_per_s']:.0f} requests/s, errors {len(conc_run['errors'])}")
                if fig["throughput"]["errors"]:
                    fig["server_log_tail"] = server.tail(3000)
            except BaseException:
                say(f"server log (tail):\n{server.tail()}")
                raise
            finally:
                server.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_report(args.out, fig)
    say(f"wrote {args.out}")
    if args.json:
        data = json.dumps(fig, ensure_ascii=False, indent=1, default=str)
        sys.stdout.write(data + "\n") if args.json == "-" else Path(args.json).write_text(data, encoding="utf-8")


if __name__ == "__main__":
    main()
