"""Benchmark: CPU instructions the server spends per approval action, counted by callgrind.

    python bench/instructions.py                      # 30 chains, prints and writes bench/report-instructions.md
    python bench/instructions.py --chains 50 --setting engine_threads=3

Why: this machine is shared, and the same build's throughput in bench/api.py moves between about
240 and 410 approval actions/s from one run to the next (server CPU per action 1.9–3.5 ms for the
same work). Instructions do not drift: two runs of one build agree within 0.3 %, so a change of
1 % is visible here long before it is in throughput. Use it to compare two builds; use bench/api.py
for what a user sees.

What it does: a throw-away PostgreSQL database (`djflow_bench_<hex>`, dropped afterwards), `djflow
init --demo`, one `djflow serve` worker process (the code path of each of `--workers 2`'s workers)
run under `valgrind --tool=callgrind` with counting off; signs in the four demo users, runs 5
approval_chain instances (start + submit as staff1, then kezhang, fenguan, juzhang approve) to warm
up, switches counting on, runs --chains more one request at a time, switches it off. Reported:
instructions of the server process (every thread: the event loop and the engine threads; the timer
ticker is off, `timer_tick_seconds=0`, as its work follows the wall clock) per chain and per action
(a chain is 4 actions). PostgreSQL's own instructions are not
counted (bench/api.py measures its CPU). Needs valgrind (`callgrind_control`) and PostgreSQL at
DJFLOW_BENCH_PG.
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
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
from datetime import datetime, timezone  # noqa: E402

import httpx  # noqa: E402

from bench import api as B  # noqa: E402


def counted(out: Path) -> int:
    """Instructions in callgrind's output files (one per dump; `totals:` of each)."""
    total = 0
    for f in sorted(out.parent.glob(out.name + "*")):
        for line in f.read_text(errors="replace").splitlines():
            if line.startswith("totals:"):
                total += int(line.split()[1])
    return total


def run(chains: int, settings: list[str], tmp: Path) -> dict:
    with B.database(B.PG_ADMIN_URL) as (_name, url):
        # No timer ticker: its work follows the wall clock, which callgrind stretches about 50×, so
        # with it the count moved by 3 % between two runs of one build on a slow day.
        _kw, env = B.server_settings(url, tmp, ["timer_tick_seconds=0", *settings])
        B.say("djflow init --demo")
        B.djflow_init(env)
        out = tmp / "callgrind.out"
        B.say("starting the server under callgrind (slow: about 50× fewer instructions per second)")
        server = B.Server("worker", 1, env, tmp / "server.log",
                          prefix=("valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"))
        try:
            server.wait_healthy(timeout=300)
            return _measure(server, chains, out)
        finally:
            server.stop()


def _measure(server: B.Server, chains: int, out: Path) -> dict:
    pid = str(server.proc.pid)  # valgrind runs the server in its own process
    with httpx.Client(base_url=server.base, timeout=300) as c:
        heads = {u: B.login(c, u, B.DEMO_PASSWORD) for u in (B.INITIATOR, *B.APPROVERS)}

        def chain() -> None:
            r = c.post("/api/process-instances", json=B.START_BODY, headers=heads[B.INITIATOR])
            for who in B.APPROVERS:
                if r.status_code not in (200, 201):
                    raise SystemExit(f"{r.request.url.path}: {r.status_code} {r.text[:300]}")
                task = next(t for t in r.json()["new_tasks"] if t["assignee"] == who)
                r = c.post(f"/api/tasks/{task['id']}/actions/approve", json=B.APPROVE_BODY, headers=heads[who])
            if r.status_code != 200 or r.json()["instance_status"] != "completed":
                raise SystemExit(f"the last approval did not complete the instance: {r.status_code} {r.text[:300]}")

        for _ in range(5):
            chain()
        control = ["callgrind_control", "-i"]
        subprocess.run([*control, "on", pid], check=True, capture_output=True)
        for i in range(chains):
            chain()
            if (i + 1) % 10 == 0:
                B.say(f"  {i + 1}/{chains} chains")
        subprocess.run([*control, "off", pid], check=True, capture_output=True)
        subprocess.run(["callgrind_control", "-d", pid], check=True, capture_output=True)
    total = counted(out)
    if total == 0:
        raise SystemExit("callgrind counted nothing (was counting switched on?)")
    return {"chains": chains, "instructions": total, "per_chain": total / chains, "per_action": total / chains / 4}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chains", type=int, default=30, help="approval chains counted (4 actions each)")
    ap.add_argument("--setting", action="append", default=[], metavar="KEY=VALUE",
                    help="a djflow setting for the server, e.g. engine_threads=3 (repeatable)")
    ap.add_argument("--out", type=Path, default=_HERE / "report-instructions.md")
    args = ap.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("needs valgrind (callgrind_control): apt-get install -y valgrind")
    tmp = Path(tempfile.mkdtemp(prefix="djflow-bench-instr-"))
    try:
        fig = run(args.chains, args.setting, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    at = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = ["# Server instructions per approval action (bench/instructions.py)", "",
             f"Run {at}; {fig['chains']} approval_chain instances (start + 3 approvals each) one request at a time "
             "against one `djflow serve` worker on PostgreSQL, counted by callgrind (every thread of the server "
             "process; PostgreSQL not counted)." + (f" Settings: {', '.join(args.setting)}." if args.setting else ""),
             "", "| measure | instructions |", "|---|---:|",
             f"| per chain (4 actions) | {fig['per_chain'] / 1e6:,.2f} M |",
             f"| per action | {fig['per_action'] / 1e6:,.2f} M |", "",
             "Two runs of one build agree within 0.3 %; compare builds with this, not with wall-clock throughput."]
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    B.say(f"{fig['per_action'] / 1e6:.2f} M instructions per action ({fig['per_chain'] / 1e6:.2f} M per chain); "
          f"wrote {args.out}")


if __name__ == "__main__":
    main()
