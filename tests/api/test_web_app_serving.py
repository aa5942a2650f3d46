"""`djflow serve` serves the built web app at /: hashed assets cached for a year, the page never
cached, client-side routes answered with the page, and /api left exactly as it was."""
from __future__ import annotations

import pytest

from tests.api.helpers import demo_client, login

SCRIPT = "console.log('djflow');" * 400  # large enough to be gzipped


@pytest.fixture
def dist(tmp_path):
    d = tmp_path / "dist"
    (d / "assets").mkdir(parents=True)
    (d / "index.html").write_text('<!doctype html><script type="module" src="/assets/index-3f9a1c.js"></script>',
                                  encoding="utf-8")
    (d / "assets" / "index-3f9a1c.js").write_text(SCRIPT, encoding="utf-8")
    (d / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>", encoding="utf-8")
    return d


@pytest.fixture
def client(sqlite_url, dist):
    return demo_client(sqlite_url, ui_dir=dist)


def test_hashed_assets_are_cached_for_a_year_and_the_page_never(client):
    asset = client.get("/assets/index-3f9a1c.js")
    assert asset.status_code == 200 and asset.text == SCRIPT
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert asset.headers["content-type"].startswith("text/javascript") or \
        asset.headers["content-type"].startswith("application/javascript")
    page = client.get("/")
    assert page.status_code == 200 and "index-3f9a1c.js" in page.text
    assert page.headers["cache-control"] == "no-cache"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "unsafe-eval" not in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"


def test_a_client_side_route_gets_the_page_and_a_missing_asset_a_404(client):
    for path in ("/inbox", "/tasks/12", "/instances/3?tab=history", "/start/approval_chain",
                 "/designer/processes/Process_1.2"):
        r = client.get(path)
        assert r.status_code == 200 and "index-3f9a1c.js" in r.text, path
    # A stale tab asking for last week's bundle must not be handed HTML as JavaScript.
    assert client.get("/assets/index-old.js").status_code == 404
    assert client.get("/robots.txt").status_code == 404
    assert client.post("/inbox").status_code == 405


def test_scripts_go_gzipped_to_a_browser_that_asks_and_a_known_copy_is_a_304(client):
    r = client.get("/assets/index-3f9a1c.js", headers={"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip" and r.headers["vary"] == "Accept-Encoding"
    assert int(r.headers["content-length"]) < len(SCRIPT) / 10
    raw = client.get("/assets/index-3f9a1c.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers and raw.text == SCRIPT
    # Each encoding has its own tag, so a cache never answers a plain request with gzip.
    assert r.headers["etag"] != raw.headers["etag"]
    again = client.get("/assets/index-3f9a1c.js",
                       headers={"If-None-Match": r.headers["etag"], "Accept-Encoding": "gzip"})
    assert again.status_code == 304 and again.content == b""
    listed = client.get("/assets/index-3f9a1c.js",
                        headers={"If-None-Match": f'"other", W/{raw.headers["etag"]}', "Accept-Encoding": "identity"})
    assert listed.status_code == 304
    crossed = client.get("/assets/index-3f9a1c.js", headers={"If-None-Match": raw.headers["etag"],
                                                            "Accept-Encoding": "gzip"})
    assert crossed.status_code == 200
    refused = client.get("/assets/index-3f9a1c.js", headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "content-encoding" not in refused.headers and refused.text == SCRIPT


def test_the_api_keeps_its_own_answers_beside_the_app(client):
    missing = client.get("/api/no-such-thing")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    assert client.get("/api/health").json()["status"] in ("ok", "degraded")
    headers = login(client, "staff1")
    assert client.get("/api/tasks", headers=headers).status_code == 200
    # A GET on an action route is still the API's 405, not the page.
    assert client.get("/api/tasks/1/actions/approve", headers=headers).status_code == 405


def test_without_a_build_only_the_api_is_served(sqlite_url, tmp_path):
    c = demo_client(sqlite_url, ui_dir=tmp_path / "nothing")
    assert c.get("/").status_code == 404
    assert c.get("/api/health").status_code == 200


def test_the_person_picker_finds_people_by_pinyin_initials_with_nothing_sensitive(client):
    headers = login(client, "staff1")
    r = client.get("/api/directory", params={"q": "qq"}, headers=headers)  # 钱七
    assert r.status_code == 200
    assert r.json() == [{"username": "kezhang", "display_name": "钱七", "department_name": "财务科"}]
    everyone = client.get("/api/directory", params={"limit": 50}, headers=headers).json()
    assert "admin" not in {p["username"] for p in everyone} and len(everyone) >= 10
    # A LIKE wildcard is a character to look for, not "everyone".
    assert client.get("/api/directory", params={"q": "%"}, headers=headers).json() == []
    assert client.get("/api/directory").status_code == 401


def test_the_person_picker_browses_the_whole_org_tree_by_name_and_narrows_to_a_unit(client):
    """Staff see only their own units in /api/org-units/tree, but the picker's tree names every
    active unit (as every person's department already does) and nothing more."""
    headers = login(client, "kezhang")
    r = client.get("/api/directory/orgs", headers=headers)
    assert r.status_code == 200
    roots = r.json()

    def walk(nodes):
        for n in nodes:
            yield n
            yield from walk(n["children"])

    units = {n["name"]: n for n in walk(roots)}
    assert {"示范局", "办公室", "财务科", "机关党委", "第一党支部", "第二党支部"} <= set(units)
    assert all(set(n) == {"id", "name", "kind", "children"} for n in units.values())
    assert [c["name"] for c in units["示范局"]["children"]] == ["办公室", "财务科"]
    office = client.get("/api/directory", params={"org_id": units["办公室"]["id"], "limit": 50}, headers=headers).json()
    assert office and {p["department_name"] for p in office} == {"办公室"}
    assert "shuji" in {p["username"] for p in office} and "kezhang" not in {p["username"] for p in office}
    assert client.get("/api/directory/orgs").status_code == 401
    # the 安全保密管理员 scopes role grants by unit without reading the org records themselves
    secadmin = login(client, "secadmin")
    assert client.get("/api/org-units/tree", headers=secadmin).status_code == 403
    assert client.get("/api/directory/orgs", headers=secadmin).json() == roots
    assert client.get("/api/directory/orgs", headers=login(client, "auditor")).status_code == 403
