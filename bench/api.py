"""Benchmark: the REST API under load, served by uvicorn (2 workers) on PostgreSQL.

1. A fresh database `djflow_bench_<hex>` is created (and dropped at the end, even on failure),
   initialised with `djflow init --demo`, and loaded with 1,000,000 `tasks` rows (200,000
   instances × 5 tasks over 11,000 synthetic members, 3 % of the tasks open) by SQL.
2. `uvicorn api.main:create_app --factory --workers 2` serves it.
3. Throughput: 50 concurrent clients each run complete instances of the shipped approval chain
   over HTTP — start as staff1 (amount 12000, so three levels), then approve as kezhang, fenguan
   and juzhang, each taking the task id from the previous response. Reported: approval actions/s,
   all actions/s, and p50/p95/p99 latency per kind of request. Any non-2xx is counted and shown.
4. Inbox: GET /api/tasks?scope=mine&status=open (page of 20) for synthetic members, one request at
   a time, with the 1,000,000-row table; p50/p99 and the EXPLAIN ANALYZE of the query.

Targets (issue 4): ≥ 300 approval actions/s; inbox p99 ≤ 50 ms. Run: `python bench/api.py --out
bench/report-api.md` (`make bench` does). Needs PostgreSQL at DJFLOW_BENCH_PG (default
postgresql://postgres@127.0.0.1:5432/postgres).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import socket
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_ROOT = _HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

import httpx  # noqa: E402
import psycopg  # noqa: E402

ADMIN_PASSWORD = "Bench-admin-2026"
DEMO_PASSWORD = "Bench-demo-2026"
NEW_PASSWORD = "Bench-changed-2027"
MEMBER_PASSWORD = "Bench-member-2026"
REQUEST = {"title": "办公设备采购", "category": "采购", "amount": 12000, "reason": "更换老旧电脑"}
APPROVERS = ("kezhang", "fenguan", "juzhang")


def say(msg: str) -> None:
    print(msg, flush=True)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


@contextmanager
def database(admin_url: str):
    name = f"djflow_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0]
    try:
        yield name, f"{base}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        say(f"dropped database {name}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed(url: str, *, instances: int, per_instance: int, members: int, open_share: float) -> dict:
    """Synthetic members, instances and tasks, written by SQL in the server (generate_series)."""
    from engine.config import Settings
    from engine.identity.passwords import hash_password

    member_hash = hash_password(MEMBER_PASSWORD, Settings(argon2_time_cost=1, argon2_memory_kib=8192))
    t0 = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as c:
        dept, branch = c.execute("SELECT department_id, branch_id FROM users WHERE username = 'staff1'").fetchone()
        definition = c.execute("SELECT id, version FROM process_definitions WHERE key = 'approval_chain' "
                               "ORDER BY version DESC LIMIT 1").fetchone()
        c.execute(
            "INSERT INTO users (username, display_name, name_pinyin, password_hash, status, department_id, branch_id, "
            "party_status, must_change_password, failed_logins, created_at) "
            "SELECT 'm' || lpad(g::text, 6, '0'), '党员' || g, 'dangyuan' || g, %s, 'active', %s, %s, 'full', false, 0, "
            "now() FROM generate_series(1, %s::int) g", (member_hash, dept, branch, members))
        lo, hi = c.execute("SELECT min(id), max(id) FROM users WHERE username LIKE 'm%%'").fetchone()
        say(f"  {members:,} members in {time.perf_counter() - t0:.1f} s")
        step = 50_000
        for start in range(0, instances, step):
            n = min(step, instances - start)
            c.execute(
                "INSERT INTO process_instances (definition_id, definition_key, definition_version, title, "
                "initiator_id, status, state, serializer_version, version, started_at, ended_at) "
                "SELECT %s, 'approval_chain', %s, '历史申请 ' || g, %s + (g %% %s), 'completed', '{}', 1, 1, "
                "now() - (g || ' minutes')::interval, now() FROM generate_series(%s::bigint, %s::bigint) g",
                (definition[0], definition[1], lo, hi - lo + 1, start + 1, start + n))
            say(f"  instances {start + n:,}/{instances:,}  ({time.perf_counter() - t0:.1f} s)")
        first_instance = c.execute("SELECT min(id) FROM process_instances WHERE title LIKE '历史申请%%'").fetchone()[0]
        open_per_mille = round(open_share * 1000)
        for start in range(0, instances, step):
            n = min(step, instances - start)
            c.execute(
                "INSERT INTO tasks (instance_id, spiff_task_id, node_id, node_name, assignee_id, status, slot, "
                "created_at, completed_at, completed_by, outcome, kind, activation) "
                "SELECT i.id, gen_random_uuid()::text, 'node_' || k, '审批 ' || k, a.uid, "
                "CASE WHEN (i.id * 7 + k * 13) %% 1000 < %s THEN 'open' ELSE 'completed' END, 0, "
                "now() - ((i.id %% 100000) || ' minutes')::interval, "
                "CASE WHEN (i.id * 7 + k * 13) %% 1000 < %s THEN NULL ELSE now() END, "
                "CASE WHEN (i.id * 7 + k * 13) %% 1000 < %s THEN NULL ELSE a.uid END, "
                "CASE WHEN (i.id * 7 + k * 13) %% 1000 < %s THEN NULL ELSE 'approved' END, 'approve', 1 "
                "FROM process_instances i CROSS JOIN generate_series(1, %s::int) k "
                "CROSS JOIN LATERAL (SELECT %s + ((i.id * 31 + k * 101) %% %s) AS uid) a "
                "WHERE i.id BETWEEN %s AND %s",
                (open_per_mille, open_per_mille, open_per_mille, open_per_mille, per_instance, lo, hi - lo + 1,
                 first_instance + start, first_instance + start + n - 1))
            say(f"  tasks {(start + n) * per_instance:,}/{instances * per_instance:,}  "
                f"({time.perf_counter() - t0:.1f} s)")
        c.execute("ANALYZE")
        total = c.execute("SELECT count(*), count(*) FILTER (WHERE status = 'open') FROM tasks").fetchone()
    return {"tasks": total[0], "open": total[1], "seconds": time.perf_counter() - t0, "member_ids": (lo, hi)}


def login(client: httpx.Client, username: str, password: str, new_password: str | None = None) -> dict:
    r = client.post("/api/auth/login", json={"username": username, "password": password})
    r.raise_for_status()
    body = r.json()
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    if body.get("must_change_password") and new_password:
        client.post("/api/auth/password", headers=headers,
                    json={"old_password": password, "new_password": new_password}).raise_for_status()
        return login(client, username, new_password)
    return headers


async def throughput(base: str, headers: dict[str, dict], *, clients: int, instances: int, warmup: int) -> dict:
    lat: dict[str, list[float]] = {"start": [], **{a: [] for a in APPROVERS}}
    errors: list[str] = []
    counter = {"left": warmup + instances, "done": 0}
    measuring = {"on": False, "t0": 0.0, "approvals": 0, "actions": 0}

    async with httpx.AsyncClient(base_url=base, timeout=60, limits=httpx.Limits(max_connections=clients + 5)) as c:
        async def call(kind: str, method: str, url: str, who: str, body: dict):
            t = time.perf_counter()
            r = await c.request(method, url, headers=headers[who], json=body)
            dt = time.perf_counter() - t
            if r.status_code >= 300:
                errors.append(f"{kind} {r.status_code} {r.text[:200]}")
                return None
            if measuring["on"]:
                lat[kind].append(dt)
                measuring["actions"] += 1
                measuring["approvals"] += kind != "start"
            return r.json()

        async def worker():
            while counter["left"] > 0:
                counter["left"] -= 1
                res = await call("start", "POST", "/api/process-instances", "staff1",
                                 {"key": "approval_chain", "data": REQUEST})
                for who in APPROVERS:
                    if res is None or not res["new_tasks"]:
                        break
                    task = res["new_tasks"][0]
                    res = await call(who, "POST", f"/api/tasks/{task['id']}/actions/approve", who,
                                     {"comment": "同意"})
                counter["done"] += 1
                if counter["done"] == warmup and not measuring["on"]:
                    measuring.update(on=True, t0=time.perf_counter())
                if counter["done"] % 200 == 0:
                    say(f"  {counter['done']:,}/{warmup + instances:,} instances")

        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - measuring["t0"]
    return {"lat": lat, "errors": errors, "elapsed": elapsed, "approvals": measuring["approvals"],
            "actions": measuring["actions"]}


def inbox(base: str, member_ids: tuple[int, int], url: str, *, users: int, rounds: int) -> dict:
    with psycopg.connect(url) as c:
        names = [r[0] for r in c.execute(
            "SELECT u.username FROM users u WHERE u.id BETWEEN %s AND %s AND EXISTS "
            "(SELECT 1 FROM tasks t WHERE t.assignee_id = u.id AND t.status = 'open') ORDER BY u.id LIMIT %s",
            (*member_ids, users)).fetchall()]
        uid = c.execute("SELECT id FROM users WHERE username = %s", (names[0],)).fetchone()[0]
        explain = [r[0] for r in c.execute(
            "EXPLAIN (ANALYZE, BUFFERS) SELECT t.id, i.title, a.username FROM tasks t "
            "JOIN process_instances i ON i.id = t.instance_id LEFT JOIN users a ON a.id = t.assignee_id "
            "LEFT JOIN users b ON b.id = t.completed_by LEFT JOIN users o ON o.id = t.on_behalf_of_id "
            "WHERE t.assignee_id = %s AND t.status = 'open' ORDER BY t.id DESC LIMIT 20 OFFSET 0", (uid,)).fetchall()]
        explain_count = [r[0] for r in c.execute(
            "EXPLAIN (ANALYZE) SELECT COUNT(*) FROM tasks t JOIN process_instances i ON i.id = t.instance_id "
            "LEFT JOIN users a ON a.id = t.assignee_id WHERE t.assignee_id = %s AND t.status = 'open'",
            (uid,)).fetchall()]
    times: list[float] = []
    sizes: list[int] = []
    with httpx.Client(base_url=base, timeout=30) as client:
        heads = {}
        for n, name in enumerate(names, 1):
            heads[name] = login(client, name, MEMBER_PASSWORD)
            if n % 50 == 0:
                say(f"  signed in {n}/{len(names)} members")
        for name in names:  # one untimed round: connections, caches and prepared statements warm up
            client.get("/api/tasks", params={"scope": "mine", "status": "open", "size": 20}, headers=heads[name])
        for _ in range(rounds):
            for name in names:
                t = time.perf_counter()
                r = client.get("/api/tasks", params={"scope": "mine", "status": "open", "size": 20},
                               headers=heads[name])
                times.append(time.perf_counter() - t)
                r.raise_for_status()
                sizes.append(len(r.json()["items"]))
    return {"times": times, "explain": explain, "explain_count": explain_count, "users": len(names),
            "mean_items": statistics.mean(sizes)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench/report-api.md")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--workers", type=int, default=2, help="server worker processes (2)")
    ap.add_argument("--instances", type=int, default=1000, help="timed complete instances (1000)")
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--seed-instances", type=int, default=200_000)
    ap.add_argument("--members", type=int, default=11_000)
    ap.add_argument("--inbox-users", type=int, default=200)
    ap.add_argument("--inbox-rounds", type=int, default=3)
    args = ap.parse_args()
    admin_url = os.environ.get("DJFLOW_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")

    with database(admin_url) as (name, url):
        sa_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("DJFLOW_")},
               "DJFLOW_DATABASE_URL": sa_url, "DJFLOW_ADMIN_PASSWORD": ADMIN_PASSWORD,
               "DJFLOW_DEMO_PASSWORD": DEMO_PASSWORD, "DJFLOW_SECRET_KEY": secrets.token_hex(32),
               "DJFLOW_ACCESS_TOKEN_MINUTES": "240", "DJFLOW_SESSION_IDLE_MINUTES": "240",
               "DJFLOW_ARGON2_TIME_COST": "1", "DJFLOW_ARGON2_MEMORY_KIB": "8192",
               "DJFLOW_LOGIN_CLIENT_MAX_FAILURES": "100000", "DJFLOW_ENVIRONMENT": "test"}
        bin_dir = Path(sys.executable).parent
        say(f"database {name}: djflow init --demo")
        subprocess.run([str(bin_dir / "djflow"), "init", "--demo"], env=env, check=True, capture_output=True)
        say(f"loading {args.seed_instances * 5:,} tasks")
        seeded = seed(url, instances=args.seed_instances, per_instance=5, members=args.members, open_share=0.03)
        say(f"  {seeded['tasks']:,} tasks ({seeded['open']:,} open) in {seeded['seconds']:.1f} s")

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        # two uvicorn servers on one port (SO_REUSEPORT; engine/cli.py says why not uvicorn's --workers)
        server = subprocess.Popen([str(bin_dir / "djflow"), "serve", "--workers", str(args.workers), "--host",
                                   "127.0.0.1", "--port", str(port)], env=env, cwd=_ROOT,
                                  stdout=subprocess.DEVNULL)
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            else:
                raise SystemExit("the server did not answer /api/health")
            with httpx.Client(base_url=base, timeout=30) as c:
                heads = {u: login(c, u, DEMO_PASSWORD, NEW_PASSWORD) for u in ("staff1", *APPROVERS)}
            say(f"throughput: {args.clients} clients, {args.warmup} warm-up + {args.instances} timed instances")
            tp = asyncio.run(throughput(base, heads, clients=args.clients, instances=args.instances,
                                        warmup=args.warmup))
            say(f"  {tp['approvals'] / tp['elapsed']:.0f} approval actions/s, errors {len(tp['errors'])}")
            say("VACUUM ANALYZE after the throughput run (the inbox is timed in steady state)")
            with psycopg.connect(url, autocommit=True) as c:
                c.execute("VACUUM ANALYZE")
            say("inbox: signing in members and timing GET /api/tasks")
            ib = inbox(base, seeded["member_ids"], url, users=args.inbox_users, rounds=args.inbox_rounds)
            say(f"  p50 {pct(ib['times'], 50) * 1000:.1f} ms, p99 {pct(ib['times'], 99) * 1000:.1f} ms")
        finally:
            server.terminate()
            server.wait(30)
        with psycopg.connect(url) as c:
            pg_version = c.execute("SHOW server_version").fetchone()[0]
    write_report(Path(args.out), args, seeded, tp, ib, pg_version)
    say(f"wrote {args.out}")


def write_report(out: Path, args, seeded: dict, tp: dict, ib: dict, pg_version: str) -> None:
    ms = lambda v: f"{v * 1000:.1f}"  # noqa: E731
    approvals_s = tp["approvals"] / tp["elapsed"]
    actions_s = tp["actions"] / tp["elapsed"]
    inbox_p99 = pct(ib["times"], 99) * 1000
    lines = [
        "# djflow REST API benchmark", "",
        f"Machine: {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}, "
        f"PostgreSQL {pg_version}. Server: `djflow serve --workers {args.workers}` (uvicorn processes sharing the port); clients, server and PostgreSQL share the machine.", "",
        "| measure | result | target | |", "|---|---:|---:|---|",
        f"| approval actions/s ({args.clients} clients) | {approvals_s:,.0f} | ≥ 300 | "
        f"{'PASS' if approvals_s >= 300 else 'FAIL'} |",
        f"| all actions/s (starts + approvals) | {actions_s:,.0f} | | |",
        f"| inbox p99 with {seeded['tasks']:,} tasks | {inbox_p99:.1f} ms | ≤ 50 ms | "
        f"{'PASS' if inbox_p99 <= 50 else 'FAIL'} |",
        f"| errors (non-2xx) | {len(tp['errors'])} | 0 | {'PASS' if not tp['errors'] else 'FAIL'} |", "",
        f"Throughput: {args.warmup} warm-up instances, then {args.instances} timed complete instances of "
        f"approval_chain (start with the request form + 3 approvals) by {args.clients} concurrent clients "
        f"over HTTP/1.1 keep-alive; {tp['elapsed']:.1f} s of timed work.", "",
        "| request | n | p50 ms | p95 ms | p99 ms |", "|---|---:|---:|---:|---:|",
    ]
    for kind, values in tp["lat"].items():
        label = "start + submit (staff1)" if kind == "start" else f"approve ({kind})"
        lines.append(f"| {label} | {len(values):,} | {ms(pct(values, 50))} | {ms(pct(values, 95))} | "
                     f"{ms(pct(values, 99))} |")
    lines += ["", f"Inbox: GET /api/tasks?scope=mine&status=open&size=20 for {ib['users']} members, "
              f"{args.inbox_rounds} rounds, one request at a time ({len(ib['times'])} requests, "
              f"{ib['mean_items']:.1f} items per page on average), after loading {seeded['tasks']:,} task rows "
              f"({seeded['open']:,} open) over {args.seed_instances:,} instances and {args.members:,} members "
              f"in {seeded['seconds']:.0f} s.", "",
              f"p50 {ms(pct(ib['times'], 50))} ms · p95 {ms(pct(ib['times'], 95))} ms · p99 {inbox_p99:.1f} ms · "
              f"max {ms(max(ib['times']))} ms", "",
              "The page query (PostgreSQL's plan, measured in the database):", "", "```",
              *ib["explain"], "```", "", "The count query beside it:", "", "```", *ib["explain_count"], "```"]
    if tp["errors"]:
        lines += ["", "First errors:", "", *[f"- `{e}`" for e in tp["errors"][:10]]]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
