"""/api/org-units, /api/positions and 分管 through the API: scoping, moves, the §5 rules."""
from __future__ import annotations

from sqlalchemy import select

from engine.models import AuditEvent
from tests.api.helpers import demo_client, login
from tests.helpers import counts


def _orgs(client, headers) -> dict[str, dict]:
    r = client.get("/api/org-units", params={"size": 500}, headers=headers)
    assert r.status_code == 200, r.text
    return {o["code"]: o for o in r.json()["items"]}


def _users(client, headers) -> dict[str, int]:
    return {u["username"]: u["id"] for u in
            client.get("/api/users", params={"size": 200}, headers=headers).json()["items"]}


def test_create_move_history_and_tree(db_url):
    client = demo_client(db_url)
    admin = login(client, "admin")
    orgs = _orgs(client, admin)
    jgdw, zb1, zb2 = orgs["sfj-jgdw"], orgs["sfj-jgdw-zb1"], orgs["sfj-jgdw-zb2"]

    r = client.post("/api/org-units", headers=admin, json={
        "code": "sfj-jgdw-zzb", "name": "机关第一党总支", "kind": "general_branch", "parent_id": jgdw["id"],
        "sort_order": 10, "established_on": "2021-07-01"})
    assert r.status_code == 201, r.text
    zzb = r.json()
    assert (zzb["kind_name"], zzb["path"], zzb["approval_authority"]) \
        == ("党总支", f"{jgdw['path']}{zzb['id']}/", False)
    group = client.post("/api/org-units", headers=admin, json={
        "code": "sfj-jgdw-zb1-g1", "name": "第一党小组", "kind": "party_group", "parent_id": zb1["id"]}).json()

    r = client.post(f"/api/org-units/{zb1['id']}/move", headers=admin, json={"parent_id": zzb["id"]})
    assert r.status_code == 200, r.text
    assert r.json()["path"] == f"{zzb['path']}{zb1['id']}/"
    assert client.get(f"/api/org-units/{group['id']}", headers=admin).json()["path"] \
        == f"{zzb['path']}{zb1['id']}/{group['id']}/"
    history = client.get(f"/api/org-units/{zb1['id']}/history", headers=admin).json()
    assert [(h["action"], h["old_parent_id"], h["new_parent_id"], h["old_path"]) for h in history] == [
        ("move", jgdw["id"], zzb["id"], zb1["path"])]

    tree = client.get("/api/org-units/tree", params={"root_id": jgdw["id"]}, headers=admin).json()
    assert [c["code"] for c in tree[0]["children"]] == ["sfj-jgdw-zb2", "sfj-jgdw-zzb"]
    assert tree[0]["children"][1]["children"][0]["children"][0]["code"] == "sfj-jgdw-zb1-g1"
    groups = client.get("/api/org-units", params={"kind": "party_group"}, headers=admin).json()
    assert sorted(g["code"] for g in groups["items"]) == ["sfj-jgdw-zb1-g1", "sfj-jgdw-zb1-xz1"]  # + the demo's
    assert [o["code"] for o in client.get("/api/org-units", params={"q": "总支"}, headers=admin).json()["items"]] \
        == ["sfj-jgdw-zzb"]

    # the branch secretary keeps the moved branch and its group, and still not the other branch
    shuji = login(client, "shuji")
    mine = _orgs(client, shuji)
    assert mine["sfj-jgdw-zb1-g1"]["limited"] is False and "sfj-jgdw-zb2" not in mine
    assert client.get(f"/api/org-units/{zb2['id']}", headers=shuji).status_code == 404

    # rename and reorder are audited
    r = client.patch(f"/api/org-units/{group['id']}", headers=shuji, json={"name": "财务党小组", "sort_order": 3})
    assert r.status_code == 200 and r.json()["name"] == "财务党小组"
    with client.app.state.engine.db.read() as s:
        actions = [a for (a,) in s.execute(select(AuditEvent.action).where(AuditEvent.action.like("org.%"))
                                           .order_by(AuditEvent.seq))]
    assert actions == ["org.create", "org.create", "org.move", "org.update"]


def test_cycles_and_wrong_parents_are_422_with_the_field_and_nothing_written(sqlite_url):
    client = demo_client(sqlite_url)
    admin = login(client, "admin")
    orgs = _orgs(client, admin)
    engine = client.app.state.engine
    before = counts(engine)
    for org, parent, says in (("sfj-jgdw", "sfj-jgdw-zb1", "环"), ("sfj-jgdw-zb1", "sfj", "不能设在单位之下"),
                              ("sfj-cwk", "sfj-jgdw", "不能设在党委之下")):
        r = client.post(f"/api/org-units/{orgs[org]['id']}/move", headers=admin,
                        json={"parent_id": orgs[parent]["id"]})
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        [problem] = r.json()["errors"]
        assert problem["field"] == "parent_id" and says in problem["reason"]
    r = client.post("/api/org-units", headers=admin, json={"code": "zzb", "name": "总支", "kind": "general_branch",
                                                            "parent_id": orgs["sfj-jgdw"]["id"],
                                                            "approval_authority": True})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "approval_authority"
    assert client.post("/api/org-units", headers=admin, json={"code": "bad code", "name": "x",
                                                               "kind": "branch"}).status_code == 422
    assert counts(engine) == before
    assert client.get(f"/api/org-units/{orgs['sfj-jgdw-zb1']['id']}/history", headers=admin).json() == []


def test_out_of_scope_ids_are_404_and_staff_cannot_write(db_url):
    client = demo_client(db_url)
    admin, shuji, staff1 = login(client, "admin"), login(client, "shuji"), login(client, "staff1")
    orgs = _orgs(client, admin)
    people = _users(client, admin)
    zb1, zb2, jgdw = orgs["sfj-jgdw-zb1"]["id"], orgs["sfj-jgdw-zb2"]["id"], orgs["sfj-jgdw"]["id"]
    before = counts(client.app.state.engine)

    mine = _orgs(client, shuji)
    assert "sfj-jgdw-zb2" not in mine and mine["sfj-jgdw"]["limited"] is True
    assert "sfj-jgdw-zb2" not in client.get("/api/org-units/tree", headers=shuji).text
    for method, path, body in (("GET", f"/api/org-units/{zb2}", None),
                               ("PATCH", f"/api/org-units/{zb2}", {"name": "改名"}),
                               ("POST", f"/api/org-units/{zb2}/move", {"parent_id": jgdw}),
                               ("GET", f"/api/org-units/{zb2}/history", None),
                               ("GET", f"/api/org-units/{zb2}/checks", None),
                               ("GET", f"/api/org-units/{zb2}/in-charge", None),
                               ("POST", f"/api/org-units/{zb2}/in-charge", {"leader_user_id": people["dangwei"]}),
                               ("GET", "/api/positions?org_id=" + str(zb2), None),
                               ("POST", "/api/positions", {"org_unit_id": zb2, "key": "committee_member",
                                                           "user_id": people["zb2shuji"]}),
                               ("GET", "/api/org-units/999999", None)):
        r = client.request(method, path, json=body, headers=shuji)
        assert r.status_code == 404, (method, path, r.text)
    zb2_secretary = client.get("/api/positions", params={"org_id": zb2}, headers=admin).json()[0]["id"]
    assert client.post(f"/api/positions/{zb2_secretary}/end", headers=shuji).status_code == 404
    assert zb2_secretary not in [p["id"] for p in client.get("/api/positions", headers=shuji).json()]
    assert client.get(f"/api/org-units/{zb1}", headers=shuji).status_code == 200

    # staff read their own units (ancestors by name only) and write nothing
    seen = {code: o["limited"] for code, o in _orgs(client, staff1).items()}
    assert seen == {"sfj": True, "sfj-cwk": False, "sfj-jgdw": True, "sfj-jgdw-zb1": False}
    assert client.get(f"/api/org-units/{jgdw}", headers=staff1).json()["approval_authority"] is None
    assert client.get(f"/api/org-units/{jgdw}/history", headers=staff1).status_code == 404
    for method, path, body in (("POST", "/api/org-units", {"code": "g", "name": "g", "kind": "party_group",
                                                           "parent_id": zb1}),
                               ("PATCH", f"/api/org-units/{zb1}", {"name": "改名"}),
                               ("POST", f"/api/org-units/{zb1}/move", {"parent_id": jgdw}),
                               ("POST", "/api/positions", {"org_unit_id": zb1, "key": "committee_member",
                                                           "user_id": people["staff1"]}),
                               ("POST", f"/api/positions/{zb2_secretary}/end", None),
                               ("POST", f"/api/org-units/{zb1}/in-charge", {"leader_user_id": people["juzhang"]}),
                               ("DELETE", f"/api/org-units/{zb1}/in-charge?leader_user_id=1", None)):
        r = client.request(method, path, json=body, headers=staff1)
        assert r.status_code == 403, (method, path, r.text)
    assert counts(client.app.state.engine) == before


def test_positions_rules_warnings_checks_and_in_charge(sqlite_url):
    client = demo_client(sqlite_url)
    admin = login(client, "admin")
    orgs = _orgs(client, admin)
    zb1, zb2, cwk, bgs = (orgs[c]["id"] for c in ("sfj-jgdw-zb1", "sfj-jgdw-zb2", "sfj-cwk", "sfj-bgs"))
    people = _users(client, admin)
    r = client.post("/api/users", headers=admin, json={"username": "dy8", "display_name": "党员八",
                                                       "branch_code": "sfj-jgdw-zb1", "party_status": "full"})
    assert r.status_code == 201, r.text
    people["dy8"] = r.json()["user"]["id"]

    # the demo's 支委会 (书记 吴十, 组织委员 陈三, 宣传委员 钱七) grown to 7, then the 8th refused
    for key, username in (("deputy_secretary", "staff1"), ("discipline_member", "fenguan"),
                          ("committee_member", "juzhang"), ("committee_member", "dangwei")):
        r = client.post("/api/positions", headers=admin, json={"org_unit_id": zb1, "key": key,
                                                               "user_id": people[username],
                                                               "starts_on": "2024-07-01", "ends_on": "2027-06-30"})
        assert r.status_code == 201, r.text
        assert r.json()["warnings"] == []
    before = counts(client.app.state.engine)
    r = client.post("/api/positions", headers=admin, json={"org_unit_id": zb1, "key": "committee_member",
                                                           "user_id": people["dy8"]})
    assert r.status_code == 422
    assert r.json()["errors"] == [{"field": "key",
                                   "reason": "第一党支部的支部委员会已有 7 人，一般不超过 7 人，不能再增加委员"}]
    assert counts(client.app.state.engine) == before
    current = client.get("/api/positions", params={"org_id": zb1}, headers=admin).json()
    assert len(current) == 7 and {p["key_name"] for p in current} >= {"书记", "副书记", "组织委员"}
    assert client.get(f"/api/org-units/{zb1}/checks", headers=admin).json() == []

    # warnings come back with the assignment and from the checks
    r = client.post("/api/positions", headers=admin, json={"org_unit_id": zb2, "key": "organization_member",
                                                           "user_id": people["zb2shuji"]})
    assert r.status_code == 201
    [warning] = r.json()["warnings"]
    assert (warning["level"], warning["code"], warning["rule"]) == ("warning", "committee_not_expected", "[C]")
    checks = client.get(f"/api/org-units/{zb2}/checks", headers=login(client, "zb2shuji")).json()
    assert {c["code"] for c in checks} == {"branch_too_small", "committee_not_expected"}
    assert all(c["source"].startswith("rules.md §5") for c in checks)

    # wrong post for the unit: a hard error
    r = client.post("/api/positions", headers=admin, json={"org_unit_id": cwk, "key": "secretary",
                                                           "user_id": people["kezhang"]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "key"

    # ending a term
    head = client.get("/api/positions", params={"org_id": cwk}, headers=admin).json()[0]
    assert (head["key_name"], head["username"]) == ("科长", "kezhang")
    r = client.post(f"/api/positions/{head['id']}/end", headers=admin, json={"note": "调任"})
    assert r.status_code == 200 and r.json()["current"] is False
    assert client.get("/api/positions", params={"org_id": cwk}, headers=admin).json() == []
    assert len(client.get("/api/positions", params={"org_id": cwk, "current": False}, headers=admin).json()) == 1
    assert [p["key"] for p in client.get("/api/positions", params={"user_id": people["kezhang"]},
                                         headers=admin).json()] == ["propaganda_member"]

    # 分管
    assert [v["username"] for v in client.get(f"/api/org-units/{cwk}/in-charge", headers=admin).json()] \
        == ["fenguan"]
    r = client.post(f"/api/org-units/{bgs}/in-charge", headers=admin, json={"leader_user_id": people["fenguan"]})
    assert r.status_code == 201 and r.json()["posts"] == ["示范局副局长", "第一党支部纪检委员"]
    assert client.post(f"/api/org-units/{bgs}/in-charge", headers=admin,
                       json={"leader_user_id": people["fenguan"]}).status_code == 409
    r = client.delete(f"/api/org-units/{bgs}/in-charge", params={"leader_user_id": people["fenguan"]},
                      headers=admin)
    assert r.status_code == 204
    assert client.get(f"/api/org-units/{bgs}/in-charge", headers=admin).json() == []


def test_dissolving_needs_an_empty_unit(sqlite_url):
    client = demo_client(sqlite_url)
    admin = login(client, "admin")
    orgs = _orgs(client, admin)
    r = client.patch(f"/api/org-units/{orgs['sfj']['id']}", headers=admin, json={"status": "dissolved"})
    assert r.status_code == 409
    reasons = [e["reason"] for e in r.json()["errors"]]
    assert "还有 2 个未撤销的下级组织：办公室、财务科" in reasons[0] and "名人员隶属于该组织" in reasons[1]
    new = client.post("/api/org-units", headers=admin, json={"code": "sfj-xxk", "name": "信息科",
                                                             "kind": "department",
                                                             "parent_id": orgs["sfj"]["id"]}).json()
    r = client.patch(f"/api/org-units/{new['id']}", headers=admin, json={"status": "dissolved"})
    assert r.status_code == 200 and r.json()["status"] == "dissolved"
    assert "sfj-xxk" not in client.get("/api/org-units/tree", headers=admin).text
    assert "sfj-xxk" in client.get("/api/org-units/tree", params={"include_dissolved": True}, headers=admin).text
    assert [o["code"] for o in client.get("/api/org-units", params={"status": "dissolved"},
                                          headers=admin).json()["items"]] == ["sfj-xxk"]
    r = client.patch(f"/api/org-units/{new['id']}", headers=admin, json={"status": "active"})
    assert r.status_code == 200
    assert [h["action"] for h in client.get(f"/api/org-units/{new['id']}/history", headers=admin).json()] == [
        "create", "dissolve", "restore"]
