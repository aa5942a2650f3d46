"""Benchmark: organisations and people at 10× a real district.

    python bench/org.py --out bench/report-org.md                  # what `make bench` runs
    python bench/org.py --branches 300 --members 11200 --json -    # a district, figures as JSON

1. Import: a generated workbook (engine/org/synthetic.py) of 3,000 branches and 112,000
   members with valid ID numbers, phones, positions and 分管, imported with
   `import_workbook` on a fresh SQLite file and, when reachable, a fresh PostgreSQL database
   (djflow_bench_<hex>, dropped afterwards). Reported: generation time, import wall time,
   members per second, peak RSS of the importing process.
2. Assignment-rule resolution: for 10,000 randomly chosen members, resolve typical rules
   with RuleResolver in one read transaction, as the engine does when it creates tasks.
   Reported: µs per resolution (median, p95) per rule.

It measures, it does not judge: exit 0 unless a run is invalid (an import fails).
"""
from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_ROOT = _HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import secrets  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timezone  # noqa: E402

from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from engine import Database  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.org.rules import Person, RuleResolver, parse_rule  # noqa: E402
from engine.org.synthetic import write_sample  # noqa: E402

PG_ADMIN_URL = os.environ.get("DJFLOW_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
RULES = ("position:secretary@initiator.branch", "in_charge_of:initiator.department",
         "leaders:initiator.department:levels=2", "position:head@initiator.department")
err = Console(stderr=True)


def _settings(url: str) -> Settings:
    return Settings(database_url=url, environment="test", admin_password="Bench-admin-2026",
                    argon2_time_cost=1, argon2_memory_kib=8192)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err, transient=True)


def import_run(url: str, workbook: Path, members: int) -> dict:
    """Import `workbook` into a fresh database at `url` in a child process (for a clean peak RSS),
    showing its progress stages as a bar."""
    code = (
        "import json, resource, sys, time\n"
        "from pathlib import Path\n"
        "sys.path.insert(0, sys.argv[3])\n"
        "from bench.org import _settings\n"
        "from engine import Database\n"
        "from engine.setup import init\n"
        "from engine.org.workbook import import_workbook\n"
        "url, path = sys.argv[1], Path(sys.argv[2])\n"
        "s = _settings(url); db = Database(url); init(db, s)\n"
        "last = [0.0]\n"
        "def say(stage, n, total):\n"
        "    now = time.perf_counter()\n"
        "    if now - last[0] > 0.2: last[0] = now; print('P', stage, n, total, file=sys.stderr, flush=True)\n"
        "print('P 读取工作簿 0 0', file=sys.stderr, flush=True)\n"
        "t = time.perf_counter(); r = import_workbook(db, s, path, progress=say); dt = time.perf_counter() - t\n"
        "assert r.ok, r.problems[:5]\n"
        "print(json.dumps({'seconds': dt, 'counts': r.counts,\n"
        "                  'peak_rss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n")
    proc = subprocess.Popen([sys.executable, "-c", code, url, str(workbook), str(_ROOT)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=_ROOT)
    other: list[str] = []
    with _progress() as bar:
        job = bar.add_task("导入", total=None)
        for line in proc.stderr:
            parts = line.split()
            if len(parts) == 4 and parts[0] == "P":
                total = int(parts[3])
                bar.update(job, description=f"导入：{parts[1]}", completed=int(parts[2]), total=total or None)
            else:
                other.append(line)
    stdout = proc.stdout.read()
    if proc.wait(timeout=3600) != 0:
        raise SystemExit(f"import into {url} failed:\n{''.join(other)[-3000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["members_per_second"] = members / result["seconds"]
    return result


def resolution_run(url: str, samples: int, seed: int) -> dict:
    """µs per resolution of each rule for `samples` random members (one read transaction)."""
    db = Database(url)
    out = {}
    with db.transaction(write=False) as sql:
        people = sql.rows("SELECT id, username, display_name, department_id, branch_id FROM users "
                          "WHERE member_code IS NOT NULL AND department_id IS NOT NULL AND branch_id IS NOT NULL")
        rnd = random.Random(seed)
        chosen = [rnd.choice(people) for _ in range(samples)]
        with _progress() as bar:
            for rule_text in RULES:
                rule = parse_rule(rule_text)
                job = bar.add_task(f"解析 {rule_text}", total=samples)
                times, found = [], 0
                for n, (uid, username, name, dept, branch) in enumerate(chosen, 1):
                    t = time.perf_counter_ns()
                    # A fresh resolver per task, as the engine builds one per action.
                    resolver = RuleResolver(sql, initiator=Person(uid, username, name), department_id=dept,
                                            branch_id=branch, data={})
                    try:
                        found += bool(resolver.resolve(rule))
                    except Exception:  # noqa: BLE001 - a member without a 分管 leader is a valid outcome
                        pass
                    times.append((time.perf_counter_ns() - t) / 1000)
                    if n % 500 == 0:
                        bar.update(job, completed=n)
                times.sort()
                out[rule_text] = {"median_us": statistics.median(times), "p95_us": times[int(len(times) * 0.95)],
                                  "mean_us": statistics.fmean(times), "resolved": found, "samples": samples}
    db.dispose()
    return out


def pg_database() -> tuple[str, callable] | None:
    try:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        name = f"djflow_bench_{secrets.token_hex(4)}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - PostgreSQL is optional for the bench
        err.print(f"PostgreSQL 不可用，跳过：{type(exc).__name__}")
        return None

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", drop


def report(figures: dict) -> str:
    g = figures["generated"]
    lines = [
        "## Organisations and people (bench/org.py)", "",
        f"Run {figures['at']} on {figures['machine']}, Python {figures['python']}.", "",
        f"Workbook: {g['branches']:,} branches, {g['members']:,} members, {g['rows']['组织']:,} org rows, "
        f"{g['rows']['职务']:,} positions, {g['rows']['分管']:,} 分管 rows; generated in {g['seconds']:.1f} s, "
        f"{g['bytes'] / 1e6:.1f} MB.", "",
        "| database | import (s) | members/s | peak RSS (MiB) |", "|---|---:|---:|---:|"]
    for db, r in figures["import"].items():
        lines.append(f"| {db} | {r['seconds']:.1f} | {r['members_per_second']:,.0f} | {r['peak_rss_mib']:.0f} |")
    lines += ["", f"Assignment-rule resolution, {figures['samples']:,} random members each, a fresh resolver per "
              "resolution (as the engine does per action):", "",
              "| database | rule | median µs | p95 µs | mean µs | resolved |", "|---|---|---:|---:|---:|---:|"]
    for db, rules in figures["resolution"].items():
        for rule, r in rules.items():
            lines.append(f"| {db} | `{rule}` | {r['median_us']:.0f} | {r['p95_us']:.0f} | {r['mean_us']:.0f} | "
                         f"{r['resolved']:,}/{r['samples']:,} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--branches", type=int, default=3000)
    ap.add_argument("--members", type=int, default=112_000)
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=_HERE / "report-org.md")
    ap.add_argument("--json", help="also write raw figures as JSON to this file ('-' for stdout)")
    ap.add_argument("--no-postgres", action="store_true")
    args = ap.parse_args()

    figures: dict = {"at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                     "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "python": platform.python_version(),
                     "samples": args.samples, "import": {}, "resolution": {}}
    with tempfile.TemporaryDirectory() as tmp:
        workbook = Path(tmp) / "district.xlsx"
        err.print(f"生成工作簿：{args.branches} 个党支部，{args.members} 名人员 …")
        t = time.perf_counter()
        rows = write_sample(workbook, args.branches, args.members, seed=args.seed)
        figures["generated"] = {"branches": args.branches, "members": args.members, "rows": rows,
                                "seconds": time.perf_counter() - t, "bytes": workbook.stat().st_size}
        targets = [("SQLite", f"sqlite:///{Path(tmp) / 'bench.db'}", None)]
        if not args.no_postgres:
            pg = pg_database()
            if pg:
                targets.append(("PostgreSQL", pg[0], pg[1]))
        try:
            for name, url, _drop in targets:
                err.print(f"导入到 {name} …")
                figures["import"][name] = import_run(url, workbook, args.members)
                err.print(f"  {figures['import'][name]['seconds']:.1f} s")
                figures["resolution"][name] = resolution_run(url, args.samples, args.seed)
        finally:
            for _name, _url, drop in targets:
                if drop:
                    drop()
    figures["peak_rss_mib_bench"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    args.out.write_text(report(figures), encoding="utf-8")
    err.print(f"报告已写入 {args.out}")
    if args.json:
        data = json.dumps(figures, ensure_ascii=False, indent=2)
        sys.stdout.write(data + "\n") if args.json == "-" else Path(args.json).write_text(data, encoding="utf-8")


if __name__ == "__main__":
    main()
