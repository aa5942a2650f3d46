"""Signed checkpoints, proofs and offline bundles of the audit log, and tampering caught both ways:
by `djflow audit verify` on the database and by `verify-bundle` on an export, each naming the
first bad seq."""
from __future__ import annotations

import json
import random
import subprocess
import sys
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import select, text

from engine import Database, WorkflowEngine
from engine.audit import bundle, checkpoints, keys, offline, sigs
from engine.audit.chain import chain_hash, format_ts
from engine.clock import now
from engine.config import REPO_ROOT
from engine.errors import Conflict
from engine.models import AuditCheckpoint, AuditHead
from engine.setup import init
from engine.sql import Sql
from tests.conftest import make_settings
from tests.engine.test_audit import run_chain
from tests.support.audit import tamper


@pytest.fixture
def log(engine: WorkflowEngine):
    """Three approval chains, a checkpoint after each of the first two, and a tail after the last."""
    sizes = []
    for _ in range(2):
        run_chain(engine)
        sizes.append(checkpoints.write(engine.db, engine.settings, force=True)["tree_size"])
    run_chain(engine)
    with engine.db.read() as s:
        head = s.get(AuditHead, 1).seq
    assert head > sizes[-1]
    return engine, sizes, head


def _db_verdict(engine: WorkflowEngine, *, cli: bool) -> tuple[bool, int | None]:
    """`djflow audit verify`: the command line, or the same function in this process."""
    if cli:
        proc = subprocess.run([sys.executable, "-m", "engine.cli", "audit", "verify", "--json"], cwd=REPO_ROOT,
                              env={"DJFLOW_DATABASE_URL": engine.settings.database_url, "PATH": "/usr/bin:/bin",
                                   "DJFLOW_AUDIT_KEY_DIR": str(engine.settings.audit_key_dir)},
                              capture_output=True, text=True, timeout=120)
        report = json.loads(proc.stdout)
        assert proc.returncode == (0 if report["ok"] else 1)
        return report["ok"], report["first_bad_seq"]
    with engine.db.read() as s:
        r = checkpoints.verify(s, engine.settings)
    return r.ok, r.first_bad_seq


def _bundle_verdict(path: Path, trust: list[str], *, cli: bool, jobs: int | None = None) -> tuple[bool, int | None]:
    if cli:
        args = [a for k in trust for a in ("--trust", k)]
        proc = subprocess.run([sys.executable, "-m", "engine.cli", "audit", "verify-bundle", str(path), *args,
                               "--json"], cwd=REPO_ROOT, env={"PATH": "/usr/bin:/bin"}, capture_output=True,
                              text=True, timeout=120)
        report = json.loads(proc.stdout)
        assert proc.returncode == (0 if report["ok"] else 1)
        return report["ok"], report.get("first_bad_seq")
    try:
        offline.verify_bundle(str(path), trust, jobs=jobs)
    except offline.Problem as p:
        return False, p.seq
    return True, None


def _trust(engine: WorkflowEngine) -> list[str]:
    with engine.db.read() as s:
        return [k["key_id"] for k in keys.log_keys(s)][:1]


def _rows(engine: WorkflowEngine, first: int) -> list[dict]:
    """The events from seq `first` on as dicts: body fields (payload parsed), prev_hash and hash."""
    with engine.db.read() as s:
        return [dict(zip(checkpoints.EVENT_COLUMNS.split(", "), r), ts=format_ts(Sql.from_ts(r[1])), payload=json.loads(r[7]))
                for r in checkpoints.raw_rows(s, first, 2**62)]


def _rechain(engine: WorkflowEngine, evs: list[dict], prev: str) -> None:
    """A forger's rewrite: every hash from evs[0] on recomputed, and the head moved to match."""
    for ev in evs:
        body = {k: ev[k] for k in offline.BODY_KEYS}
        ev["prev_hash"], ev["hash"] = prev, chain_hash(ev["hash_alg"], prev, body)
        prev = ev["hash"]
        tamper(engine, "UPDATE audit_events SET prev_hash = :p, hash = :h WHERE seq = :seq",
                p=ev["prev_hash"], h=ev["hash"], seq=ev["seq"])
    tamper(engine, "UPDATE audit_head SET seq = :seq, hash = :h WHERE id = 1", seq=evs[-1]["seq"], h=prev)


TAMPERING = ["payload", "garbage", "delete", "swap", "insert_rehashed", "truncate_tail", "resigned_checkpoint"]


@pytest.mark.parametrize("how", TAMPERING)
def test_tampering_is_caught_by_verify_and_by_verify_bundle(log, how, tmp_path):
    engine, (s1, s2), head = log
    trust = _trust(engine)
    cli = engine.db.engine.dialect.name == "sqlite"
    assert _db_verdict(engine, cli=cli) == (True, None)
    k = 5
    if how == "payload":  # one payload changed by someone who switched the triggers off
        tamper(engine, "UPDATE audit_events SET payload = '{\"comment\":\"不同意\"}' WHERE seq = :k", k=k)
        expected = k
    elif how == "garbage":  # not even JSON any more (SQLite stores any text; PostgreSQL's json type refuses it)
        if engine.db.is_sqlite:
            tamper(engine, "UPDATE audit_events SET payload = '{not json' WHERE seq = :k", k=k)
        else:
            tamper(engine, "UPDATE audit_events SET actor_id = 999 WHERE seq = :k", k=k)
        expected = k
    elif how == "delete":
        tamper(engine, "DELETE FROM audit_events WHERE seq = :k", k=k)
        expected = k
    elif how == "swap":
        for a, b in ((k, -1), (k + 1, k), (-1, k + 1)):
            tamper(engine, "UPDATE audit_events SET seq = :b WHERE seq = :a", a=a, b=b)
        expected = k
    elif how == "insert_rehashed":
        # A row slipped in after k, later rows renumbered and the whole chain after it recomputed:
        # the chain alone checks out, the first checkpoint after k does not.
        later = _rows(engine, k + 1)
        tamper(engine, "UPDATE audit_events SET seq = -seq - 1 WHERE seq > :k", k=k)
        tamper(engine, "UPDATE audit_events SET seq = -seq WHERE seq < 0")
        forged = dict(later[0], seq=k + 1, action="task.approve", payload={"comment": "补签"})
        tamper(engine, f"INSERT INTO audit_events ({checkpoints.EVENT_COLUMNS}) VALUES (:seq, :ts, :actor_id, "
                        ":on_behalf_of, :action, :instance_id, :task_id, :payload, :hash_alg, :prev_hash, :hash)",
                **dict(forged, ts=later[0]["ts"].replace("T", " ").rstrip("Z"), payload=json.dumps(forged["payload"])))
        _rechain(engine, _rows(engine, k + 1), _rows(engine, k)[0]["hash"])
        expected = s1
    elif how == "truncate_tail":  # the events after the last checkpoint removed
        tamper(engine, "DELETE FROM audit_events WHERE seq > :s", s=s2)
        expected = s2 + 1
    else:  # checkpoint 1 signed again with a key of the forger's own, added to audit_keys
        forger = sigs.generate("ed25519")
        pub = sigs.public_key("ed25519", forger)
        kid = offline.key_id("ed25519", pub)
        tamper(engine, "INSERT INTO audit_keys (key_id, alg, public_key, created_at) VALUES (:k, 'ed25519', :p, "
                        "'2999-01-01T00:00:00.000000Z')", k=kid, p=pub.hex())
        with engine.db.read() as s:
            cp = checkpoints.as_dict(s.get(AuditCheckpoint, 1))
        cp["key_id"] = kid
        sig = sigs.sign("ed25519", forger, offline.checkpoint_message(cp)).hex()
        tamper(engine, "UPDATE audit_checkpoints SET key_id = :k, signature = :s WHERE seq = 1", k=kid, s=sig)
        expected = s1
    assert _db_verdict(engine, cli=True) == (False, expected)  # the command line, on both databases
    out = tmp_path / "bundle.zip"
    bundle.export(engine.db, engine.settings, out)
    assert _bundle_verdict(out, trust, cli=cli) == (False, expected)
    if how == "resigned_checkpoint":  # without --trust the forger's key is not the first: still refused
        assert _bundle_verdict(out, [], cli=False) == (False, expected)


def test_a_bundle_edited_by_hand_is_caught(log, tmp_path):
    engine, _sizes, _head = log
    trust = _trust(engine)
    good = tmp_path / "good.zip"
    result = bundle.export(engine.db, engine.settings, good)
    assert _bundle_verdict(good, trust, cli=True) == (True, None)
    assert result.first_seq == 1 and result.events == result.last_seq

    def edit(target: Path, change) -> None:
        with zipfile.ZipFile(good) as src, zipfile.ZipFile(target, "w") as dst:
            files = {n: src.read(n) for n in src.namelist()}
            lines = files["events/000001.jsonl"].splitlines(keepends=True)
            files["events/000001.jsonl"] = b"".join(change(lines))
            for n, data in files.items():
                dst.writestr(n, data)

    def reword(lines):
        line = json.loads(lines[6])
        line["event"]["payload"]["comment"] = "不同意"
        lines[6] = offline.bundle_line(line["hash"], line["prev_hash"], offline.canonical(line["event"]))
        return lines

    def reformat(lines):  # the same content, spaced out: not the bytes that were hashed
        lines[3] = json.dumps(json.loads(lines[3]), ensure_ascii=False).encode() + b"\n"
        return lines

    edited = tmp_path / "edited.zip"
    edit(edited, reword)
    assert _bundle_verdict(edited, trust, cli=True) == (False, 7)
    spaced = tmp_path / "spaced.zip"
    edit(spaced, reformat)
    assert _bundle_verdict(spaced, trust, cli=False) == (False, 4)
    cut = tmp_path / "cut.zip"
    edit(cut, lambda lines: lines[:-3])  # the tail cut off: the last checkpoint covers more
    assert _bundle_verdict(cut, trust, cli=False) == (False, result.last_seq - 2)
    # and the bundle's own copy of the verifier, run by a bare Python with nothing of djflow
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(edited) as z:
        z.extractall(folder)
    bare = subprocess.run(["/usr/bin/env", "-i", sys.executable, "-I", str(folder / "verifier" / "offline.py"),
                           str(edited), "--trust", trust[0]], capture_output=True, text=True, timeout=120)
    assert bare.returncode == 1 and "seq=7" in bare.stdout, bare.stdout + bare.stderr
    ok = subprocess.run(["/usr/bin/env", "-i", sys.executable, "-I", str(folder / "verifier" / "offline.py"),
                         str(good), "--trust", trust[0]], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "校验通过" in ok.stdout, ok.stdout + ok.stderr
    readme = zipfile.ZipFile(good).read("README.txt").decode()
    assert "校验说明" in readme and trust[0] in readme


def test_a_part_of_the_log_exports_from_the_checkpoint_before_it(log, tmp_path):
    engine, (s1, s2), head = log
    out = tmp_path / "part.zip"
    result = bundle.export(engine.db, engine.settings, out, since=s1 + 3, until=s2 + 1)
    assert result.first_seq == s1 + 1  # from checkpoint 1's frontier, not from event 1
    assert result.last_seq >= s2 + 1 and result.checkpoints >= 2
    report = offline.verify_bundle(str(out), _trust(engine))
    assert report.first_seq == s1 + 1 and report.last_seq == result.last_seq


@pytest.mark.parametrize("alg", ["ed25519", "sm2"])
def test_checkpoints_every_n_events_or_t_seconds_signed_with_either_algorithm(sqlite_url, tmp_path, alg):
    settings = make_settings(sqlite_url, audit_sign_alg=alg, audit_checkpoint_events=12,
                             audit_checkpoint_seconds=60, audit_key_dir=tmp_path / "keys")
    db = Database(sqlite_url)
    init(db, settings, demo=True)
    engine = WorkflowEngine(db, settings)
    assert engine.audit_checkpoint() is not None  # init wrote more than 12 events
    run_chain(engine)  # 5 more: fewer than 12 and less than a minute
    assert engine.audit_checkpoint() is None
    with time_machine.travel(now() + timedelta(seconds=61), tick=False):
        cp = engine.audit_checkpoint()
    assert cp is not None and cp["seq"] == 2
    with db.read() as s:
        key = keys.log_keys(s)[0]
        r = checkpoints.verify(s, settings)
    assert key["alg"] == alg and (tmp_path / "keys" / f"{key['key_id']}.key").stat().st_mode & 0o077 == 0
    assert sigs.verify(alg, bytes.fromhex(key["public_key"]), offline.checkpoint_message(cp),
                       bytes.fromhex(cp["signature"]))
    assert r.ok and r.checkpoints == 2 and r.untrusted_root is None
    db.dispose()


def test_a_rotated_key_is_endorsed_by_the_old_one_and_old_checkpoints_still_verify(log, tmp_path):
    engine, _sizes, _head = log
    first = _trust(engine)
    new = keys.rotate(engine.db, engine.settings, alg="sm2")
    key_dir = Path(engine.settings.audit_key_dir)
    assert not (key_dir / f"{first[0]}.key").exists() and (key_dir / f"{first[0]}.pub").exists()
    run_chain(engine)
    cp = checkpoints.write(engine.db, engine.settings, force=True)
    assert cp["key_id"] == new.key_id
    with engine.db.read() as s:
        r = checkpoints.verify(s, engine.settings)
    assert r.ok and r.checkpoints == 3
    out = tmp_path / "rotated.zip"
    bundle.export(engine.db, engine.settings, out)
    assert _bundle_verdict(out, first, cli=False) == (True, None)  # trusting only the first key


def test_signing_refuses_a_log_that_does_not_check_out(log):
    engine, _sizes, head = log
    tamper(engine, "UPDATE audit_events SET action = 'task.reject' WHERE seq = :s", s=head)
    with pytest.raises(Conflict, match=f"seq={head}"):
        checkpoints.write(engine.db, engine.settings, force=True)


def test_incremental_verification_starts_from_a_checkpoint(log):
    engine, (s1, s2), head = log
    tamper(engine, "UPDATE audit_events SET payload = '{}' WHERE seq = :s", s=s2 + 1)
    with engine.db.read() as s:
        r = checkpoints.verify(s, engine.settings, from_checkpoint=2)
    assert (r.ok, r.first_bad_seq, r.from_seq) == (False, s2 + 1, s2 + 1) and r.checked == 0
    # a forged starting point (its frontier no longer matches its signed root) is refused
    tamper(engine, "UPDATE audit_checkpoints SET frontier = '[]' WHERE seq = 1")
    with engine.db.read() as s:
        r = checkpoints.verify(s, engine.settings, from_checkpoint=1)
    assert not r.ok and r.first_bad_seq == s1


def test_inclusion_and_consistency_proofs_verify_with_the_independent_verifier(log):
    engine, _sizes, _head = log
    for _ in range(3):
        run_chain(engine)
        checkpoints.write(engine.db, engine.settings, force=True)
    rng = random.Random(7)
    with engine.db.read() as s:
        ring = offline.KeyRing(keys.log_keys(s), _trust(engine))
        cps = checkpoints.checkpoints(s)
        for _ in range(20):
            cp = rng.choice(cps)
            seq = rng.randint(1, cp["tree_size"])
            proof = checkpoints.inclusion(s, seq, cp["seq"])
            offline.verify_inclusion_proof(proof, ring)
            bad = dict(proof, leaf=_rows(engine, seq % cp["tree_size"] + 1)[0]["hash"]) if cp["tree_size"] > 1 else None
            if bad:
                with pytest.raises(offline.Problem):
                    offline.verify_inclusion_proof(bad, ring)
        for _ in range(10):
            a, b = sorted(rng.sample(cps, 2), key=lambda c: c["seq"])
            proof = checkpoints.consistency(s, a["seq"], b["seq"])
            offline.verify_consistency_proof(proof, ring)
            forged = dict(proof, first=dict(proof["first"], root=proof["second"]["root"]))
            with pytest.raises(offline.Problem):
                offline.verify_consistency_proof(forged, ring)


FAKE_ARCHIVE = ("INSERT INTO audit_archives (seq, first_seq, last_seq, checkpoint_seq, file, sha256, bytes, created_at) "
                "VALUES (1, 1, 999, 1, 'x', 'x', 0, 'x')")


@pytest.mark.parametrize("table,change", [
    ("audit_checkpoints", "UPDATE audit_checkpoints SET root_hash = 'x'"),
    ("audit_checkpoints", "DELETE FROM audit_checkpoints"),
    ("audit_keys", "UPDATE audit_keys SET public_key = 'x'"),
    ("audit_keys", "DELETE FROM audit_keys"),
    ("audit_archives", (FAKE_ARCHIVE, "DELETE FROM audit_archives")),
    ("audit_events", (FAKE_ARCHIVE, "DELETE FROM audit_events WHERE seq = 1"))])  # a record, but the rows are young
def test_the_database_refuses_to_change_checkpoints_or_keys(log, table, change):
    engine, _sizes, _head = log
    with pytest.raises(Exception, match="append-only"):
        with engine.db.engine.begin() as conn:
            for statement in (change,) if isinstance(change, str) else change:
                conn.execute(text(statement))
    with engine.db.read() as s:
        assert s.scalar(select(AuditCheckpoint.root_hash).where(AuditCheckpoint.seq == 1)) != "x"
        assert checkpoints.verify(s, engine.settings).ok


def test_a_witness_webhook_receives_each_checkpoint_and_others_do_not(engine: WorkflowEngine):
    from engine.models import WebhookDelivery

    with engine.db.engine.begin() as conn:
        for name, events in (("witness", '["audit.checkpoint"]'), ("everything", None)):
            conn.execute(text("INSERT INTO webhooks (name, url, secret, events, format, active, created_at) "
                              "VALUES (:n, 'http://127.0.0.1:9/x', 's', :e, 'djflow', :t, :at)"),
                         {"n": name, "e": events, "t": True, "at": now().replace(tzinfo=None)})
    cp = checkpoints.write(engine.db, engine.settings, force=True, webhooks=engine.webhooks)
    with engine.db.read() as s:
        rows = s.scalars(select(WebhookDelivery)).all()
    assert [(r.webhook_id, r.event) for r in rows] == [(1, "audit.checkpoint")]
    body = json.loads(rows[0].body)
    assert {k: body[k] for k in cp} == cp


@pytest.mark.parametrize("how", ["payload", "delete"])
def test_verification_in_parallel_finds_the_same_first_bad_seq(log, how, tmp_path, monkeypatch):
    """Ranges of 8 events checked by 2 worker processes, from the database and from a bundle of
    8-event files: the same verdict as one process."""
    engine, (s1, _s2), _head = log
    monkeypatch.setattr(checkpoints, "PART_EVENTS", 8)
    monkeypatch.setattr(bundle, "PART_EVENTS", 8)
    good = tmp_path / "good.zip"
    bundle.export(engine.db, engine.settings, good)
    assert len(json.loads(zipfile.ZipFile(good).read("manifest.json"))["parts"]) > 3
    assert offline.verify_bundle(str(good), _trust(engine), jobs=2).checkpoints >= 2
    with engine.db.read() as s:
        assert checkpoints.verify(s, engine.settings, jobs=2).ok
    k = s1 - 3  # inside the second 8-event range or later, before the first checkpoint
    if how == "payload":
        tamper(engine, "UPDATE audit_events SET payload = '{\"comment\":\"不同意\"}' WHERE seq = :k", k=k)
    else:
        tamper(engine, "DELETE FROM audit_events WHERE seq = :k", k=k)
    with engine.db.read() as s:
        serial, parallel = checkpoints.verify(s, engine.settings, jobs=1), checkpoints.verify(s, engine.settings, jobs=2)
    assert (serial.ok, serial.first_bad_seq) == (parallel.ok, parallel.first_bad_seq) == (False, k)
    out = tmp_path / "bad.zip"
    bundle.export(engine.db, engine.settings, out)
    for jobs in (1, 2):
        assert _bundle_verdict(out, _trust(engine), cli=False, jobs=jobs) == (False, k)


def test_archiving_moves_old_checkpointed_ranges_to_a_file_and_keeps_proofs_valid(db_url, tmp_path):
    """A log written 200 days ago: the range up to its last checkpoint moves to a verified bundle
    file, the rows leave the database, and verification, proofs and exports go on."""
    from engine.audit import archive

    settings = make_settings(db_url, audit_key_dir=tmp_path / "keys")
    db = Database(db_url)
    with time_machine.travel(now() - timedelta(days=200)):
        init(db, settings, demo=True)
        engine = WorkflowEngine(db, settings)
        for _ in range(2):
            run_chain(engine)
            checkpoints.write(db, settings, force=True)
    with time_machine.travel(now() - timedelta(days=100)):  # too young: nothing moves
        run_chain(engine)
        young = checkpoints.write(db, settings, force=True)
        assert archive.archive(db, settings, tmp_path / "cold", before=now()) is None
    run_chain(engine)  # today
    done = archive.archive(db, settings, tmp_path / "cold")
    assert done is not None and done.first_seq == 1 and done.last_seq < young["tree_size"]
    assert offline.verify_bundle(done.file, None).last_seq == done.last_seq
    with db.read() as s:
        assert list(checkpoints.raw_rows(s, 1, done.last_seq)) == []
        r = checkpoints.verify(s, settings)
        assert r.ok and r.from_seq == done.last_seq + 1 and r.archived_through == done.last_seq
        ring = offline.KeyRing(keys.log_keys(s), None)
        latest_cp = checkpoints.checkpoints(s)[-1]
        assert latest_cp["tree_size"] > done.last_seq
        for seq in (done.last_seq + 1, latest_cp["tree_size"], 1, done.last_seq):  # after and inside the archive
            offline.verify_inclusion_proof(checkpoints.inclusion(s, seq), ring)
        offline.verify_consistency_proof(checkpoints.consistency(s, young["seq"]), ring)
        offline.verify_consistency_proof(checkpoints.consistency(s, 1), ring)
    with pytest.raises(Exception, match="append-only"):  # younger rows still cannot go
        with db.engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_events WHERE seq = :s"), {"s": done.last_seq + 1})
    out = tmp_path / "after.zip"
    result = bundle.export(db, settings, out)
    assert result.first_seq == done.last_seq + 1
    assert offline.verify_bundle(str(out), None).last_seq == result.last_seq
    with pytest.raises(Exception, match="已归档"):
        bundle.export(db, settings, tmp_path / "old.zip", since=1, until=5)
    db.dispose()


def test_a_bundle_that_would_unpack_to_gigabytes_is_refused_unread(tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("events/000001.jsonl", "w", force_zip64=True) as f:
            block = b"0" * (1 << 20)
            for _ in range(offline.MAX_MEMBER_BYTES // len(block) + 1):
                f.write(block)
    assert bomb.stat().st_size < 5 * 2**20
    with pytest.raises(offline.Problem, match="解压后超过"):
        offline.verify_bundle(str(bomb))


def test_payloads_with_number_keys_and_events_hashed_the_earlier_way_verify(engine: WorkflowEngine, tmp_path):
    """Number keys sort differently before and after JSON turns them into strings, so the stored
    text is not the canonical JSON of its parse. Events hash their stored text (chain.event_bytes);
    an event hashed before that, as the canonical JSON of the parsed payload, still verifies."""
    from engine.audit import append
    from engine.audit.chain import event_body, event_bytes

    with engine.db.unit_of_work() as s:
        append(s, action="test.numbers", payload={2: "二", 10: "十"}, hash_alg="sm3")
    with engine.db.read() as s:
        head = s.get(AuditHead, 1)
        seq, prev = head.seq + 1, head.hash
    ts = now()
    stored = json.dumps({10: "十", 2: "二"}, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    legacy = chain_hash("sm3", prev, event_body(seq=seq, ts=ts, actor_id=None, on_behalf_of=None, action="test.legacy",
                                                instance_id=None, task_id=None, payload=json.loads(stored),
                                                hash_alg="sm3"))
    assert legacy != offline.chain_hash_bytes("sm3", prev, event_bytes(
        seq, format_ts(ts), None, None, "test.legacy", None, None, stored, "sm3"))  # the two ways differ here
    sql_ts = ts.replace(tzinfo=None).isoformat(sep=" ") if engine.db.is_sqlite else ts
    tamper(engine, "INSERT INTO audit_events (seq, ts, action, payload, hash_alg, prev_hash, hash) "
                    "VALUES (:seq, :ts, 'test.legacy', :p, 'sm3', :prev, :h)", seq=seq, ts=sql_ts, p=stored, prev=prev,
            h=legacy)
    tamper(engine, "UPDATE audit_head SET seq = :seq, hash = :h WHERE id = 1", seq=seq, h=legacy)
    with engine.db.read() as s:
        r = checkpoints.verify(s, engine.settings)
    assert r.ok and r.head_seq == seq, r
    out = tmp_path / "numbers.zip"
    bundle.export(engine.db, engine.settings, out)
    assert offline.verify_bundle(str(out), _trust(engine)).last_seq > seq
