"""/api/calendar: the year as a unit works it, and entering or removing a local day (audited)."""
from __future__ import annotations

from tests.api.helpers import demo_client, login


def test_the_2026_national_day_holiday_and_a_units_own_day_off(db_url):
    c = demo_client(db_url)
    staff, admin = login(c, "staff1"), login(c, "admin")
    r = c.get("/api/calendar/2026", headers=staff)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["official"] is True and len(body["days"]) == 365
    days = {d["day"]: d for d in body["days"]}
    assert days["2026-10-01"]["workday"] is False and days["2026-10-01"]["holiday"]
    assert days["2026-10-01"]["source"] == "official"
    # a unit's own day off, for that unit and below only
    r = c.put("/api/calendar/days/2026-12-31", headers=staff, json={"workday": False})
    assert r.status_code == 403
    r = c.put("/api/calendar/days/2026-12-31", headers=admin, json={"workday": False, "note": "年终盘点",
                                                                    "org_code": "sfj"})
    assert r.status_code == 200, r.text
    assert r.json()["source"] == "local" and r.json()["org_code"] == "sfj"
    here = {d["day"]: d for d in c.get("/api/calendar/2026?org=sfj", headers=staff).json()["days"]}
    assert here["2026-12-31"]["workday"] is False and here["2026-12-31"]["note"] == "年终盘点"
    everyone = {d["day"]: d for d in c.get("/api/calendar/2026", headers=staff).json()["days"]}
    assert everyone["2026-12-31"]["workday"] is True
    assert c.get("/api/calendar/2026?org=nope", headers=staff).status_code == 404
    assert c.get("/api/calendar/1800", headers=staff).status_code == 422
    assert c.delete("/api/calendar/days/2026-12-31?org=sfj", headers=admin).status_code == 204
    assert c.delete("/api/calendar/days/2026-12-31?org=sfj", headers=admin).status_code == 404
    again = {d["day"]: d for d in c.get("/api/calendar/2026?org=sfj", headers=staff).json()["days"]}
    assert again["2026-12-31"]["workday"] is True
