"""GET /api/party-dues/ledger (api/dues/): a member's 党费 by month, scoped like /api/users: the
member themselves, or someone whose 查看人员档案 scope reaches the member's branch or department;
403 without that permission, 404 outside the scope (as for an unknown member); problem+json."""
from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest

from engine.party import dues
from tests.api.helpers import demo_client, login

ROOT = Path(__file__).resolve().parents[2]
AT = datetime.fromisoformat("2027-01-05T10:00:00+08:00")


@pytest.fixture
def client(db_url, tmp_path):
    processes, forms = tmp_path / "process_definitions", tmp_path / "forms"
    processes.mkdir()
    forms.mkdir()
    shutil.copytree(ROOT / "process_definitions" / "party_dues", processes / "party_dues")
    for form in (ROOT / "forms").glob("pd_*"):
        shutil.copytree(form, forms / form.name)
    c = demo_client(db_url, process_dir=processes, forms_dir=forms)
    engine = c.app.state.engine
    with engine.db.transaction() as sql:
        ids = dict(sql.rows("SELECT username, id FROM users"))
        orgs = dict(sql.rows("SELECT code, id FROM org_units"))
        dues.set_base(sql, user_id=ids["staff1"], category="salary", base="3000.01", effective_from="2026-11", at=AT)
        dues.set_base(sql, user_id=ids["zb2member"], category="student", effective_from="2026-11", at=AT)
        for month in ("2026-11", "2026-12", "2027-01", "2027-02"):
            for branch in ("sfj-jgdw-zb1", "sfj-jgdw-zb2"):
                dues.compute_month(sql, branch_id=orgs[branch], month=month, policy=dues.Policy(), instance_id=None,
                                   at=AT)
        sql.run("UPDATE dues_ledger SET status = 'paid', paid_amount = amount, paid_via = 'cash' "
                "WHERE month IN ('2026-11', '2026-12', '2027-01') AND user_id = ?", (ids["staff1"],))
    yield c
    engine.db.dispose()


def get(client, who: str, **params):
    return client.get("/api/party-dues/ledger", params=params, headers=login(client, who))


def test_the_branch_secretary_reads_a_members_ledger_by_year(client):
    r = get(client, "shuji", member="staff1", year=2027)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["member"], body["display_name"], body["year"]) == ("staff1", "赵六", 2027)
    assert [(e["month"], e["status"], e["amount"], e["rate"]) for e in body["entries"]] == [
        ("2027-01", "paid", "30.00", "1%"), ("2027-02", "due", "30.00", "1%")]
    assert body["entries"][0]["paid_amount"] == "30.00" and body["entries"][0]["branch_code"] == "sfj-jgdw-zb1"
    assert body["paid_through"] == "2027-01"  # 党费已交到 2027年1月
    assert (body["amount_due"], body["amount_paid"], body["outstanding"]) == ("60.00", "30.00", "30.00")
    assert body["consecutive_unpaid"] == 1
    assert [(b["category"], b["base"], b["effective_from"]) for b in body["bases"]] == [("salary", "3000.01",
                                                                                         "2026-11")]
    earlier = get(client, "shuji", member="staff1", year=2026).json()
    assert [e["month"] for e in earlier["entries"]] == ["2026-11", "2026-12"]
    assert earlier["paid_through"] == "2027-01"  # over all years


def test_a_member_reads_their_own_ledger_but_nobody_elses(client):
    own = get(client, "zb2member", member="zb2member", year=2027)
    assert own.status_code == 200 and [e["amount"] for e in own.json()["entries"]] == ["0.20", "0.20"]
    assert own.json()["paid_through"] is None
    other = get(client, "staff1", member="kezhang", year=2027)  # 普通用户: no 查看人员档案
    assert other.status_code == 403
    assert other.headers["content-type"].startswith("application/problem+json")


def test_another_branchs_secretary_gets_404_as_for_an_unknown_member(client):
    for member in ("zb2member", "nobody"):
        r = get(client, "shuji", member=member)
        assert r.status_code == 404, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["status"] == 404
    assert get(client, "zb2shuji", member="zb2member", year=2027).status_code == 200
    assert get(client, "zb2shuji", member="staff1").status_code == 404
    # the 机关党委 secretary, above both branches, reads both
    assert get(client, "dangwei", member="zb2member").status_code == 200
    assert get(client, "dangwei", member="staff1").status_code == 200


def test_bad_requests_are_problems(client):
    headers = login(client, "shuji")
    for params in ({}, {"member": "staff1", "year": 1999}, {"member": "staff1", "year": "x"}):
        r = client.get("/api/party-dues/ledger", params=params, headers=headers)
        assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    assert client.get("/api/party-dues/ledger", params={"member": "staff1"}).status_code == 401
