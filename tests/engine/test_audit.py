"""The audit hash chain: every action is logged in its own transaction, and tampering is found."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sqlalchemy import select, text

from engine import WorkflowEngine
from engine.audit import verify
from engine.audit.chain import GENESIS, canonical, chain_hash
from engine.config import REPO_ROOT
from engine.models import AuditEvent
from tests.helpers import REQUEST, only_task
from tests.support.audit import tamper


def run_chain(engine: WorkflowEngine) -> int:
    started = engine.start(key="approval_chain", username="staff1", data=REQUEST)
    for who in ("kezhang", "fenguan", "juzhang"):
        engine.act(task_id=only_task(engine, who).id, action="approve", username=who, comment="同意")
    return started.instance_id


def events(engine: WorkflowEngine, instance_id: int) -> list[AuditEvent]:
    with engine.db.read() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.instance_id == instance_id)
                              .order_by(AuditEvent.seq)))


def test_every_step_is_logged_with_actor_payload_and_chain(engine: WorkflowEngine):
    iid = run_chain(engine)
    evs = events(engine, iid)
    assert [e.action for e in evs] == ["instance.start", "task.submit", "task.approve", "task.approve",
                                       "task.approve"]
    submit = evs[1]
    assert submit.payload["data"] == REQUEST and submit.task_id is not None
    assert evs[2].payload["comment"] == "同意" and evs[-1].payload["instance_status"] == "completed"
    # each event's hash recomputes from its predecessor with SM3 (the default)
    with engine.db.read() as s:
        all_events = list(s.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
    prev = GENESIS
    for e in all_events:
        assert e.hash_alg == "sm3" and e.prev_hash == prev
        prev = e.hash
    with engine.db.read() as s:
        result = verify(s)
    assert result.ok and result.checked == len(all_events) == result.head_seq


def _verify_cli(url: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine.cli", "audit", "verify", "--json"], cwd=REPO_ROOT,
                          env={"DJFLOW_DATABASE_URL": url, "PATH": "/usr/bin:/bin"}, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("change", ["UPDATE audit_events SET payload = '{}' WHERE seq = 1",
                                    "DELETE FROM audit_events WHERE seq = 1", "DELETE FROM audit_events"])
def test_the_database_refuses_to_change_or_remove_audit_events(engine: WorkflowEngine, change):
    run_chain(engine)
    with engine.db.read() as s:
        before = [(e.seq, e.hash, json.dumps(e.payload, sort_keys=True)) for e in
                  s.scalars(select(AuditEvent).order_by(AuditEvent.seq))]
    with pytest.raises(Exception, match="append-only"), engine.db.engine.begin() as conn:
        conn.execute(text(change))
    if engine.db.engine.dialect.name == "postgresql":
        with pytest.raises(Exception, match="append-only"), engine.db.engine.begin() as conn:
            conn.execute(text("TRUNCATE audit_events"))
    with engine.db.read() as s:
        after = [(e.seq, e.hash, json.dumps(e.payload, sort_keys=True)) for e in
                 s.scalars(select(AuditEvent).order_by(AuditEvent.seq))]
    assert after == before and len(after) >= 5


def test_changing_one_payload_is_detected_naming_that_seq(engine: WorkflowEngine, settings):
    iid = run_chain(engine)
    target = events(engine, iid)[2].seq
    clean = _verify_cli(settings.database_url)
    assert clean.returncode == 0, clean.stderr
    assert json.loads(clean.stdout)["ok"] is True

    payload = dict(events(engine, iid)[2].payload, comment="不同意")
    tamper(engine, "UPDATE audit_events SET payload = :p WHERE seq = :seq",
            p=json.dumps(payload, ensure_ascii=False), seq=target)

    tampered = _verify_cli(settings.database_url)
    assert tampered.returncode == 1
    report = json.loads(tampered.stdout)
    assert report["ok"] is False and report["first_bad_seq"] == target


def test_human_output_names_the_seq(engine: WorkflowEngine, settings):
    iid = run_chain(engine)
    target = events(engine, iid)[1].seq
    tamper(engine, "UPDATE audit_events SET actor_id = 1 WHERE seq = :seq", seq=target)
    proc = subprocess.run([sys.executable, "-m", "engine.cli", "audit", "verify"], cwd=REPO_ROOT,
                          env={"DJFLOW_DATABASE_URL": settings.database_url, "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and f"seq={target}" in proc.stdout


@pytest.mark.parametrize("how", ["delete_middle", "delete_last", "swap", "rehash_one"])
def test_removed_reordered_or_rehashed_rows_are_detected(engine: WorkflowEngine, how):
    iid = run_chain(engine)
    evs = events(engine, iid)
    a, b = evs[1], evs[2]
    if how == "delete_middle":
        tamper(engine, "DELETE FROM audit_events WHERE seq = :seq", seq=a.seq)
        expected = a.seq
    elif how == "delete_last":
        tamper(engine, "DELETE FROM audit_events WHERE seq = :seq", seq=evs[-1].seq)
        expected = evs[-1].seq
    elif how == "swap":
        # exchange the two rows' positions in the log (their content moves, seq numbers stay)
        tamper(engine, "UPDATE audit_events SET seq = -1 WHERE seq = :a", a=a.seq)
        tamper(engine, "UPDATE audit_events SET seq = :a WHERE seq = :b", a=a.seq, b=b.seq)
        tamper(engine, "UPDATE audit_events SET seq = :b WHERE seq = -1", b=b.seq)
        expected = a.seq
    else:
        # a forger who recomputes the changed row's own hash still breaks the link to the next row
        body = {"seq": b.seq, "ts": b.ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "actor_id": b.actor_id,
                "on_behalf_of": None, "action": b.action, "instance_id": b.instance_id, "task_id": b.task_id,
                "payload": dict(b.payload, comment="伪造"), "hash_alg": "sm3"}
        forged = chain_hash("sm3", b.prev_hash, body)
        assert canonical(body)
        tamper(engine, "UPDATE audit_events SET payload = :p, hash = :h WHERE seq = :seq",
                p=json.dumps(body["payload"], ensure_ascii=False), h=forged, seq=b.seq)
        expected = b.seq + 1
    with engine.db.read() as s:
        result = verify(s)
    assert not result.ok and result.first_bad_seq == expected, result


def test_sha256_is_selectable(sqlite_url):
    from engine import Database, WorkflowEngine
    from engine.setup import init
    from tests.conftest import make_settings

    settings = make_settings(sqlite_url, audit_hash="sha256")
    db = Database(sqlite_url)
    init(db, settings, demo=True)
    WorkflowEngine(db, settings).start(key="approval_chain", username="staff1", data=REQUEST)
    with db.read() as s:
        algs = set(s.scalars(select(AuditEvent.hash_alg)))
        assert algs == {"sha256"} and verify(s).ok


def test_the_documented_application_role_can_add_and_read_audit_events_but_not_change_them(pg_url):
    """engine/migrations/app_role.sql (PostgreSQL's roles and grants), applied to a role of this
    test's own (dropped afterwards)."""
    import secrets

    from engine import Database
    from engine.config import REPO_ROOT
    from engine.setup import init
    from tests.conftest import make_settings

    settings = make_settings(pg_url)
    engine = WorkflowEngine(Database(pg_url), settings)
    init(engine.db, settings, demo=True)
    run_chain(engine)
    role = f"djflow_app_{secrets.token_hex(4)}"
    grants = (REPO_ROOT / "engine/migrations/app_role.sql").read_text(encoding="utf-8").replace("djflow_app", role)
    with engine.db.engine.begin() as conn:
        conn.execute(text(f"CREATE ROLE {role} NOLOGIN"))
        sql = "\n".join(line for line in grants.splitlines() if not line.strip().startswith("--"))
        for statement in (st.strip() for st in sql.split(";")):
            if statement:
                conn.execute(text(statement))
    try:
        def as_app(sql: str):
            with engine.db.engine.begin() as conn:
                conn.execute(text(f"SET LOCAL ROLE {role}"))
                return conn.execute(text(sql)).all() if sql.startswith("SELECT") else conn.execute(text(sql))

        assert as_app("SELECT count(*) FROM audit_events")[0][0] >= 5
        assert as_app("SELECT count(*) FROM tasks")[0][0] > 0
        assert as_app("SELECT count(*) FROM audit_keys")[0][0] == 1
        for refused in ("UPDATE audit_events SET actor_id = 1", "DELETE FROM audit_events", "TRUNCATE audit_events",
                        "ALTER TABLE audit_events DISABLE TRIGGER USER", "UPDATE audit_keys SET alg = 'x'",
                        "DELETE FROM audit_checkpoints", "TRUNCATE audit_keys",
                        "INSERT INTO audit_archives (seq, first_seq, last_seq, checkpoint_seq, file, sha256, bytes, "
                        "created_at) VALUES (1, 1, 999999, 1, 'x', 'x', 0, 'x')"):
            with pytest.raises(Exception, match="permission denied|must be owner"):
                as_app(refused)
    finally:
        with engine.db.engine.begin() as conn:
            conn.execute(text(f"DROP OWNED BY {role}"))
            conn.execute(text(f"DROP ROLE {role}"))
        engine.db.dispose()


NASTY = {"引号": "it's \"quoted\" \\ back\\slash", "lines": "a\nb\tc\r", "emoji": "✓🙂", "empty": {},
         "list": [1, None, "x,y}{", 2.5, True], "sql": "'); DELETE FROM audit_head; --", "n": 12345678901234}


def _chain_rows(db) -> list:
    with db.read() as s:
        return s.execute(text("SELECT seq, ts, actor_id, on_behalf_of, action, instance_id, task_id, payload, "
                              "hash_alg, prev_hash, hash FROM audit_events ORDER BY seq")).all()


def _recomputed(rows) -> None:
    """Every row's hash, recomputed here from its columns as the verifier's specification says."""
    from engine.audit.chain import event_body

    prev = GENESIS
    for i, r in enumerate(rows, 1):
        payload = r.payload if isinstance(r.payload, dict) else json.loads(r.payload)
        body = event_body(seq=r.seq, ts=r.ts, actor_id=r.actor_id, on_behalf_of=r.on_behalf_of, action=r.action,
                          instance_id=r.instance_id, task_id=r.task_id, payload=payload, hash_alg=r.hash_alg)
        assert r.seq == i and r.prev_hash == prev and r.hash == chain_hash(r.hash_alg, prev, body), r.seq
        prev = r.hash


@pytest.mark.parametrize("alg", ["sm3", "sha256"])
def test_postgresql_chains_events_inside_the_database_exactly_as_djflow_does(pg_url, alg):
    """On PostgreSQL the closing statement's djflow_audit_append (migration 0013) hashes and inserts
    the events; their hashes must be the ones Python computes from the stored columns."""
    from engine import Database
    from engine.audit.chain import NewEvent, append_events
    from engine.setup import init
    from tests.conftest import make_settings

    settings = make_settings(pg_url, audit_hash=alg)
    db = Database(pg_url)
    init(db, settings, demo=True)
    assert alg in db.closing()
    with db.transaction() as sql:
        assert append_events(sql, [NewEvent("test.one", 1, 2, None, None, NASTY),
                                   NewEvent("test.two", None, None, 5, 6, {"k": "中文 ' \" \\"})], hash_alg=alg) is None
    with db.transaction() as sql:  # two appends in one transaction: one call, one lock, consecutive seqs
        append_events(sql, [NewEvent("test.three")], hash_alg=alg)
        append_events(sql, [NewEvent("test.four", payload={"n": 4})], hash_alg=alg)
    with pytest.raises(ZeroDivisionError), db.transaction() as sql:  # rolled back: no event, no gap
        append_events(sql, [NewEvent("test.lost")], hash_alg=alg)
        raise ZeroDivisionError
    WorkflowEngine(db, settings).start(key="approval_chain", username="staff1", data=REQUEST)
    rows = _chain_rows(db)
    assert [r.action for r in rows if r.action.startswith("test.")] == ["test.one", "test.two", "test.three",
                                                                       "test.four"]
    assert {r.hash_alg for r in rows} == {alg}
    stored = next(r.payload for r in rows if r.action == "test.one")
    assert (stored if isinstance(stored, dict) else json.loads(stored)) == NASTY
    _recomputed(rows)
    with db.read() as s:
        assert verify(s).ok
    db.dispose()


def test_without_pgcrypto_sm3_is_chained_in_python_and_both_ways_make_one_chain(pg_url):
    from engine import Database
    from engine.setup import init
    from tests.conftest import make_settings

    settings = make_settings(pg_url)
    db = Database(pg_url)
    init(db, settings, demo=True)
    run_chain(db_engine := WorkflowEngine(db, settings))
    with db.engine.begin() as conn:
        conn.execute(text("DROP EXTENSION pgcrypto"))
    python_side = Database(pg_url)
    assert python_side.closing() == {"sha256"}  # SHA-256 is built in; SM3 needs pgcrypto
    run_chain(WorkflowEngine(python_side, settings))
    with db.engine.begin() as conn:
        conn.execute(text("CREATE EXTENSION pgcrypto"))
    db.schema_changed()
    assert "sm3" in db.closing()
    run_chain(db_engine)
    rows = _chain_rows(db)
    assert len({r.instance_id for r in rows if r.action == "instance.start"}) == 3
    _recomputed(rows)
    with db.read() as s:
        assert verify(s).ok
    python_side.dispose()
    db.dispose()
