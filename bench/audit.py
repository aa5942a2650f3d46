"""Benchmark: what the audit log costs and how fast it verifies.

    python bench/audit.py --out bench/report-audit.md          # what `make bench` runs
    python bench/audit.py --events 50000 --chains 20 --out /tmp/a.md   # a smoke run

1. Append overhead per action, on a throw-away PostgreSQL database (`djflow_bench_<hex>`, dropped
   afterwards) with `djflow init --demo`: complete approval_chain instances (a start and three
   approvals) through WorkflowEngine in this process, alternating chain by chain between the normal
   build and one whose audit append does nothing, same run, same database. Reported: time per
   action with and without the log and their ratio, and the time inside the append itself.
2. A log of --events events (default 1,000,000) written to a SQLite file with the engine's own
   append, in transactions of 1,000 events shaped like real ones, with a signed checkpoint after
   each (`audit_checkpoint_events` = 1,000). Reported: checkpoint signing time (the signature
   alone, Ed25519 and SM2, and the whole checkpoint: verifying the 1,000 new events, the tree,
   the signature), `djflow audit verify` on the database and `verify-bundle` on an export of the
   whole log, in events per second (SM3), and the bundle's size per 100,000 events.

It measures, it does not judge: exit 0 whatever the targets say.
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
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timezone  # noqa: E402

from bench.api import PG_ADMIN_URL, database, machine_info, say  # noqa: E402

REQUEST = {"title": "办公设备采购", "category": "采购", "amount": 12000, "reason": "更换老旧电脑", "expected_date": "2026-12-01"}
TARGET_OVERHEAD, TARGET_VERIFY = 0.10, 200_000


def _settings(url: str, key_dir: Path, **extra):
    from engine.config import Settings

    return Settings(database_url=url, demo_password="Bench-demo-2026", admin_password="Bench-admin-2026",
                    audit_key_dir=key_dir, argon2_time_cost=1, argon2_memory_kib=8192, **extra)


# -- 1. append overhead -----------------------------------------------------------------------------
def overhead(url: str, key_dir: Path, chains: int, rounds: int) -> dict:
    import engine.runtime.engine as runtime
    from engine import Database, WorkflowEngine
    from engine.setup import init

    settings = _settings(url, key_dir)
    db = Database(url)
    init(db, settings, demo=True)
    eng = WorkflowEngine(db, settings)
    real = runtime.append_events
    inside: list[float] = []

    def timed(*a, **kw):
        t = time.perf_counter()
        try:
            return real(*a, **kw)
        finally:
            inside.append(time.perf_counter() - t)

    def nothing(*_a, **_kw):
        return 0

    def chain(times: list[float]) -> None:
        t = time.perf_counter()
        started = eng.start(key="approval_chain", username="staff1", data=REQUEST)
        task = started.new_tasks[0]
        for who in ("kezhang", "fenguan", "juzhang"):
            times.append(time.perf_counter() - t)
            t = time.perf_counter()
            task = eng.act(task_id=task.id, action="approve", username=who, comment="同意").new_tasks
            task = task[0] if task else None
        times.append(time.perf_counter() - t)

    per_action: dict[str, list[float]] = {"with": [], "without": []}
    for _ in range(5):
        chain([])  # warm the caches
    # Alternate chain by chain, so drift (the database growing, the machine's other load) hits both.
    for i in range(chains * rounds):
        mode = "with" if i % 2 == 0 else "without"
        runtime.append_events = timed if mode == "with" else nothing
        chain(per_action[mode])
        if (i + 1) % chains == 0:
            say(f"  {i + 1}/{chains * rounds} chains: median with {statistics.median(per_action['with']) * 1000:.2f} "
                f"ms/action, without {statistics.median(per_action['without']) * 1000:.2f} ms/action")
    runtime.append_events = real
    parts = breakdown(db)
    closing = "sm3" in (db.closing() or ())
    db.dispose()
    w, wo = statistics.median(per_action["with"]), statistics.median(per_action["without"])
    return {"with_ms": w * 1000, "without_ms": wo * 1000, "ratio": w / wo - 1,
            "inside_ms": statistics.median(inside) * 1000, "inside_share": statistics.median(inside) / w,
            "actions": len(per_action["with"]) + len(per_action["without"]), "breakdown": parts,
            "closing": "the events are only rendered here: the database chains and inserts them in the closing "
                       "statement" if closing else "chained in Python: the head's locking read, hashing, the insert"}


def breakdown(db, n: int = 3000) -> dict:
    """Where the append's time goes: transactions of one deferred write, alone ("bare"), with the
    append of one approval event in the closing statement (PostgreSQL's way, "append"), and with the
    same append chained in Python ("python": the head's locking read carrying the write, then the
    insert; SQLite's way, and PostgreSQL's without pgcrypto), interleaved; medians in ms."""
    from engine.audit.chain import NewEvent, append_events

    with db.transaction() as sql:
        sql.run("CREATE TABLE bench_scratch (id int PRIMARY KEY, v int)")
        sql.run("INSERT INTO bench_scratch VALUES (1, 0)")
    event = [NewEvent(*a) for a in [("task.approve", 3, None, 1, 6, payloads(1)[2][1])]]
    kinds = ("bare", "append", "python")
    times: dict[str, list[float]] = {k: [] for k in kinds}
    for i in range(n):
        kind = kinds[i % len(kinds)]
        t = time.perf_counter()
        with db.transaction() as sql:
            sql.defer("UPDATE bench_scratch SET v = v + 1 WHERE id = 1", ())
            if kind == "python":
                sql.closing = None
            if kind != "bare":
                append_events(sql, event, hash_alg="sm3")
        times[kind].append(time.perf_counter() - t)
    return {k: statistics.median(v[len(v) // 10:]) * 1000 for k, v in times.items()}


# -- 2. a large log ---------------------------------------------------------------------------------
def payloads(i: int) -> list[tuple[str, dict]]:
    """The five events of one approval chain, shaped like the engine's."""
    return [("instance.start", {"process_key": "approval_chain", "version": 1, "title": f"办公设备采购 {i}",
                                "business_key": None, "client": "10.0.0.8", "request_id": f"req-{i:08d}"}),
            ("task.submit", {"node": "submit_request", "data": REQUEST, "new_tasks": [i * 5 + 1],
                             "client": "10.0.0.8", "request_id": f"req-{i:08d}"}),
            *[("task.approve", {"node": node, "comment": "同意", "decision": "approved", "new_tasks": [i * 5 + k],
                                "client": "10.0.0.9", "request_id": f"req-{i:08d}-{k}"})
              for k, node in enumerate(("dept_review", "leader_review", "head_review"), 2)]]


def big_log(path: Path, key_dir: Path, n: int) -> dict:
    from engine import Database
    from engine.audit import checkpoints, sigs
    from engine.audit.chain import NewEvent, append_events
    from engine.audit.offline import checkpoint_message
    from engine.migrate import upgrade
    from engine.setup import ensure_key

    url = f"sqlite:///{path}"
    settings = _settings(url, key_dir, audit_checkpoint_events=1000)
    db = Database(url)
    upgrade(db)
    with db.unit_of_work() as s:
        ensure_key(s, settings)
    t0, cp_times, written, i = time.perf_counter(), [], 0, 0
    while written < n:
        batch: list = []
        while len(batch) < min(1000, n - written):
            for action, payload in payloads(i):
                batch.append(NewEvent(action, 3 + i % 40, None, 1 + i, 5 * i + 1, payload))
            i += 1
        batch = batch[:min(1000, n - written)]
        with db.transaction() as sql:
            append_events(sql, batch, hash_alg="sm3")
        written += len(batch)
        t = time.perf_counter()
        checkpoints.write(db, settings, force=True)
        cp_times.append(time.perf_counter() - t)
        if written % 100_000 == 0 or written == n:
            say(f"  written {written:,}/{n:,} events ({written / (time.perf_counter() - t0):,.0f}/s, checkpoints incl.)")
    gen_s = time.perf_counter() - t0
    sign = {}
    msg = checkpoint_message({"tree_size": n, "root": "ab" * 32, "chain_head": "cd" * 32,
                              "ts": "2026-12-02T00:00:00.000000Z", "hash_alg": "sm3", "key_id": "0" * 16})
    for alg in ("ed25519", "sm2"):
        key = sigs.generate(alg)
        times = []
        for _ in range(100):
            t = time.perf_counter()
            sigs.sign(alg, key, msg)
            times.append(time.perf_counter() - t)
        vt = []
        pub, sig = sigs.public_key(alg, key), sigs.sign(alg, key, msg)
        for _ in range(100):
            t = time.perf_counter()
            sigs.verify(alg, pub, msg, sig)
            vt.append(time.perf_counter() - t)
        sign[alg] = {"sign_ms": statistics.median(times) * 1000, "verify_ms": statistics.median(vt) * 1000}
    return {"db": db, "settings": settings, "events": n, "generate_s": gen_s, "checkpoints": len(cp_times),
            "checkpoint_ms": statistics.median(cp_times) * 1000, "checkpoint_p95_ms":
            sorted(cp_times)[int(len(cp_times) * 0.95) - 1] * 1000 if len(cp_times) > 1 else cp_times[0] * 1000,
            "sign": sign}


def verification(log: dict, tmp: Path) -> dict:
    from engine.audit import bundle, checkpoints
    from engine.audit.offline import verify_bundle

    db, settings, n = log["db"], log["settings"], log["events"]
    say("  djflow audit verify (database) …")
    t = time.perf_counter()
    with db.read() as s:
        r = checkpoints.verify(s, settings, progress=lambda k: k % 200_000 == 0 and say(f"    {k:,}"))
    db_s = time.perf_counter() - t
    assert r.ok, r
    say("  export …")
    out = tmp / "all.zip"
    t = time.perf_counter()
    res = bundle.export(db, settings, out, progress=lambda k, total: k % 200_000 == 0 and say(f"    {k:,}/{total:,}"))
    export_s = time.perf_counter() - t
    say("  verify-bundle …")
    t = time.perf_counter()
    report = verify_bundle(str(out))
    bundle_s = time.perf_counter() - t
    say("  proofs …")
    with db.read() as s:
        cps = checkpoints.checkpoints(s)
        t = time.perf_counter()
        checkpoints.inclusion(s, max(1, n // 3), cps[-1]["seq"])
        inclusion_s = time.perf_counter() - t
        t = time.perf_counter()
        checkpoints.consistency(s, cps[len(cps) // 2]["seq"], cps[-1]["seq"])
        consistency_s = time.perf_counter() - t
    part = tmp / "part.zip"
    pr = bundle.export(db, settings, part, since=1, until=min(n, 100_000))
    db.dispose()
    return {"db_verify_s": db_s, "db_rate": r.checked / db_s, "export_s": export_s, "bundle_bytes": res.bytes,
            "bundle_events": report.events, "bundle_verify_s": bundle_s, "bundle_rate": report.events / bundle_s,
            "per_100k_bytes": pr.bytes * 100_000 / pr.events, "checkpoints_verified": report.checkpoints,
            "inclusion_s": inclusion_s, "consistency_s": consistency_s}


def write_report(out: Path, fig: dict) -> None:
    m, o, g, v = fig["machine"], fig["overhead"], fig["log"], fig["verify"]
    b = o["breakdown"]

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    lines = ["# djflow audit log benchmark (bench/audit.py)", "",
             f"Run {fig['at']}. Machine: {m['usable_cpus']} CPUs ({m['cpu_model']}), Python {m['python']}.", "",
             "| measure | value | target | |", "|---|---:|---:|---|",
             f"| append overhead per action (median latency of {o['actions']:,} actions alternating chain by chain, "
             f"PostgreSQL) | {o['ratio'] * 100:+.1f} % ({o['with_ms']:.2f} vs {o['without_ms']:.2f} ms) | ≤ 10 % | "
             f"{verdict(o['ratio'] <= TARGET_OVERHEAD)} |",
             f"| time in the client's `append_events`, per action ({o['closing']}) | "
             f"{o['inside_ms']:.3f} ms ({o['inside_share'] * 100:.1f} % of the action) | | |",
             f"| one-write transaction: bare / + a one-event append in the closing statement / + the same "
             f"append chained in Python | {b['bare']:.3f} / {b['append']:.3f} / {b['python']:.3f} ms | | |",
             f"| verify-bundle, {v['bundle_events']:,} events (SM3, offline verifier) | {v['bundle_rate']:,.0f} "
             f"events/s ({v['bundle_verify_s']:.1f} s) | ≥ 200,000/s | {verdict(v['bundle_rate'] >= TARGET_VERIFY)} |",
             f"| djflow audit verify, same log in SQLite | {v['db_rate']:,.0f} events/s ({v['db_verify_s']:.1f} s) | "
             f"≥ 200,000/s | {verdict(v['db_rate'] >= TARGET_VERIFY)} |",
             f"| checkpoint every 1,000 events: verify them, tree, sign, store (median / p95) | "
             f"{g['checkpoint_ms']:.1f} / {g['checkpoint_p95_ms']:.1f} ms | | |",
             f"| signature alone: Ed25519 sign / verify | {g['sign']['ed25519']['sign_ms']:.3f} / "
             f"{g['sign']['ed25519']['verify_ms']:.3f} ms | | |",
             f"| signature alone: SM2 sign / verify (pure Python) | {g['sign']['sm2']['sign_ms']:.2f} / "
             f"{g['sign']['sm2']['verify_ms']:.2f} ms | | |",
             f"| inclusion proof / consistency proof against the newest checkpoint ({g['events']:,} events) | "
             f"{v['inclusion_s']:.2f} / {v['consistency_s']:.2f} s | | |",
             f"| bundle size per 100,000 events | {v['per_100k_bytes'] / 1e6:.1f} MB | | |",
             f"| whole-log bundle ({g['events']:,} events, {v['checkpoints_verified']:,} checkpoints) | "
             f"{v['bundle_bytes'] / 1e6:.1f} MB, exported in {v['export_s']:.1f} s | | |",
             f"| writing the log ({g['events']:,} events with a checkpoint per 1,000) | {g['generate_s']:.1f} s | | |",
             "", "Notes:",
             "- The overhead is measured in one process acting alone (no contention for the audit head's row "
             "lock); under 50 concurrent clients the lock costs more, see bench/report-api.md and issue 4.",
             "- Each event's hash needs its predecessor's. On PostgreSQL with migration 0013 the append is one "
             "more expression in the statement that ends every unit of work (djflow_audit_append: lock the head, "
             "hash, insert), so it adds no round trip; chained in Python (SQLite, or no pgcrypto for SM3) it "
             "costs one round trip more, as the breakdown row's last column shows.",
             "- The large log's events are shaped like an approval chain's (start, submit, three approvals) with "
             "client address and request id, written by the engine's own append."]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=_HERE / "report-audit.md")
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--chains", type=int, default=50, help="approval chains between progress lines (50)")
    ap.add_argument("--rounds", type=int, default=8, help="progress lines: chains × rounds in all (8)")
    args = ap.parse_args()
    fig = {"at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine_info()}
    with tempfile.TemporaryDirectory(prefix="djflow-bench-audit-") as tmp_name:
        tmp = Path(tmp_name)
        say("1. append overhead (PostgreSQL)")
        with database(PG_ADMIN_URL) as (_name, url):
            fig["overhead"] = overhead(url.replace("postgresql://", "postgresql+psycopg://", 1), tmp / "keys",
                                       args.chains, args.rounds)
        say(f"2. a log of {args.events:,} events (SQLite)")
        log = big_log(tmp / "audit.db", tmp / "keys", args.events)
        fig["log"] = {k: v for k, v in log.items() if k not in ("db", "settings")}
        fig["verify"] = verification(log, tmp)
    write_report(args.out, fig)
    say(f"wrote {args.out}")
    say(args.out.read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
