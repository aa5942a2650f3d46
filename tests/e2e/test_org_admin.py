"""组织管理 (/org) in the browser: a 党务工作者 works on the org tree and its people, imports a
workbook after a dry run that lists every bad row, and staff do not get the page at all."""
from __future__ import annotations

import io
import re
import secrets

import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect

from tests.helpers import write_workbook

pytestmark = pytest.mark.e2e


def api(page, path: str, **params) -> dict | list:
    """GET /api/… with the page's own session (its cookies)."""
    r = page.request.get("/api" + path, params=params)
    assert r.ok, f"{path}: {r.status} {r.text()}"
    return r.json()


def pick(page, testid: str, option: str, *, search: str | None = None) -> None:
    """Choose `option` in the antd Select marked `testid` inside the open dialog."""
    page.locator(f".ant-modal:visible [data-testid={testid}]").click()
    if search:
        page.keyboard.type(search)
    page.locator(f".ant-select-dropdown:visible .ant-select-item-option[title='{option}']").click()
    expect(page.locator(".ant-select-dropdown:visible")).to_have_count(0)  # closed: the next field is clickable


def open_org(pages, username: str, *, phone: bool = False):
    page = pages.open(phone=phone)
    pages.sign_in(page, username)
    if phone:  # the phone's header folds the menu
        page.goto("/org")
    else:
        page.get_by_role("link", name="组织管理").click()
    page.wait_for_url(re.compile(r"/org"))
    return page


def select_unit(page, code: str) -> None:
    page.get_by_test_id(f"org-node-{code}").click()
    page.get_by_test_id("unit-details").filter(has_text=code).wait_for()


def test_an_org_admin_adds_a_party_group_and_a_person_and_both_appear(pages):
    tag = secrets.token_hex(3)
    page = open_org(pages, "dangwei")  # 党务工作者 of 机关党委 and everything below it
    tree = page.get_by_test_id("org-tree")
    for name in ("机关党委", "第一党支部", "第二党支部", "第一党支部第一党小组"):
        expect(tree.get_by_text(name, exact=True)).to_be_visible()
    # 示范局 lies outside his scope: shown as the ancestor of his own 办公室, by name only.
    expect(page.get_by_test_id("org-node-sfj")).to_contain_text("仅名称")
    pages.shot(page, "tree")

    # A new 党小组 under 第一党支部: the only kind a 党支部 may hold, so it is chosen already.
    select_unit(page, "sfj-jgdw-zb1")
    expect(page.get_by_test_id("unit-title")).to_have_text("第一党支部")
    page.get_by_test_id("unit-add-child").click()
    page.get_by_test_id("unit-form-ok").click()  # empty: the form says what is missing, nothing is sent
    expect(page.locator(".ant-modal:visible .ant-form-item-explain-error")).to_have_count(2)
    code, name = f"e2e-zb1-xz-{tag}", f"第一党支部第二党小组{tag}"
    page.get_by_test_id("unit-code").fill(code)
    page.get_by_test_id("unit-name").fill(name)
    expect(page.locator(".ant-modal:visible [data-testid=unit-kind]")).to_contain_text("党小组")
    pages.shot(page, "new-unit")
    page.get_by_test_id("unit-form-ok").click()
    expect(page.get_by_test_id("unit-title")).to_have_text(name)  # the new unit is selected
    expect(tree.get_by_text(name, exact=True)).to_be_visible()
    branch = api(page, "/org-units", q="sfj-jgdw-zb1")["items"][0]
    created = api(page, "/org-units", q=code)["items"]
    assert [(u["name"], u["kind"], u["parent_id"]) for u in created] == [(name, "party_group", branch["id"])]
    page.get_by_role("tab", name="变更记录", exact=True).click()
    expect(page.get_by_test_id("unit-history")).to_contain_text("新建")

    # 赵六 leads the new group too (found among the people in scope; the term starts today).
    page.get_by_role("tab", name="职务", exact=True).click()
    page.get_by_test_id("position-add").click()
    pick(page, "person-select", "赵六（staff1，财务科）", search="赵六")
    pages.shot(page, "appoint")
    page.get_by_test_id("position-form-ok").click()
    expect(page.get_by_test_id("positions-table")).to_contain_text("赵六")
    held = api(page, "/positions", org_id=created[0]["id"])
    assert [(p["key"], p["username"]) for p in held] == [("group_leader", "staff1")]

    # A new member of 第一党支部: the unit is filled in, the required fields are checked first.
    select_unit(page, "sfj-jgdw-zb1")
    page.get_by_role("tab", name="人员", exact=True).click()
    expect(page.get_by_test_id("people-table")).to_contain_text("赵六")
    page.get_by_test_id("person-add").click()
    page.get_by_test_id("person-username").fill("bad name!")
    page.get_by_test_id("person-form-ok").click()
    expect(page.locator(".ant-modal:visible")).to_contain_text("用户名只能包含字母、数字")
    username, person = f"e2e_{tag}", f"测试{tag}"
    page.get_by_test_id("person-username").fill(username)
    page.get_by_test_id("person-name").fill(person)
    page.get_by_test_id("person-code").fill(f"E2E-{tag}")
    pick(page, "person-status", "预备党员")
    pages.shot(page, "new-person")
    page.get_by_test_id("person-form-ok").click()
    expect(page.locator(".ant-modal:visible")).to_have_count(0)
    page.get_by_test_id("people-search").locator("input").fill(username)
    page.get_by_test_id("people-search").locator("input").press("Enter")
    expect(page.get_by_test_id("person-row")).to_have_count(1)
    row = page.get_by_test_id("person-row").filter(has_text=person)
    expect(row).to_contain_text("预备党员")
    expect(row).to_contain_text("无登录账号")
    pages.shot(page, "people")
    found = api(page, "/users", q=username)["items"]
    assert [(p["display_name"], p["branch_name"], p["party_status"], p["member_code"]) for p in found] == [
        (person, "第一党支部", "probationary", f"E2E-{tag}")]


def test_an_import_is_checked_row_by_row_and_only_a_clean_workbook_is_written(pages, tmp_path):
    pages.expect_console(r"status of 422")  # the dry run of the bad workbook answers 422 with its report
    tag = secrets.token_hex(3)
    page = open_org(pages, "dangwei")
    page.get_by_role("tab", name="导入导出", exact=True).click()
    group = f"e2e-imp-{tag}"
    good = ["", f"imp_{tag}", f"导入{tag}", "", "", "", "sfj-jgdw-zb1", "正式党员", "2020-07-01", ""]

    bad = tmp_path / "bad.xlsx"
    write_workbook(bad, {
        "组织": [[group, "导入党小组", "支队", "sfj-jgdw-zb1", 1, "", ""]],
        "人员": [[f"IMP-{tag}-1", *good[1:]],
                 [f"IMP-{tag}-2", f"imp_{tag}_2", "错号", "123", "", "", "sfj-jgdw-zb1", "正式党员", "", ""],
                 [f"IMP-{tag}-3", f"imp_{tag}_3", "错状态", "", "", "", "sfj-jgdw-zb1", "党员x", "", ""]],
    })
    page.locator("input[type=file]").set_input_files(bad)
    page.get_by_test_id("import-check").click()
    expect(page.get_by_test_id("import-result")).to_contain_text("发现 3 处问题，未写入任何数据")
    rows = page.get_by_test_id("problem-row")
    expect(rows).to_have_count(3)
    cells = [[c.strip() for c in r.locator("td").all_inner_texts()] for r in rows.all()]
    assert cells == [
        ["组织", "2", "类型", "「支队」不是可用的类型（党委、党总支、党支部、党小组、单位、科室）"],
        ["人员", "3", "身份证号", "身份证号应为18位，前17位为数字，最后一位为数字或X"],
        ["人员", "4", "党员状态", "「党员x」不是可用的状态（申请人、入党积极分子、发展对象、预备党员、正式党员、非党员）"],
    ]
    assert page.get_by_test_id("import-run").count() == 0  # no import while anything is wrong
    pages.shot(page, "import-problems")
    # The table sorts (row number, descending) and filters (the 人员 sheet only).
    header = page.get_by_test_id("import-problems").locator("th").filter(has_text="行")
    header.click()
    header.click()
    expect(rows.first.locator("td").nth(1)).to_have_text("4")
    page.get_by_test_id("import-problems").locator("th").filter(has_text="工作表").locator(".ant-table-filter-trigger").click()
    page.locator(".ant-table-filter-dropdown:visible").get_by_text("人员", exact=True).click()
    page.locator(".ant-table-filter-dropdown:visible").get_by_role("button", name="确定").click()
    expect(rows).to_have_count(2)
    pages.shot(page, "import-problems-filtered")
    assert api(page, "/users", q=f"IMP-{tag}")["total"] == 0
    assert api(page, "/org-units", q=group)["total"] == 0

    clean = tmp_path / "clean.xlsx"
    write_workbook(clean, {
        "组织": [[group, f"导入党小组{tag}", "党小组", "sfj-jgdw-zb1", 9, "2026-01-05", ""]],
        "人员": [[f"IMP-{tag}-1", *good[1:]]],
        "职务": [[group, "组长", f"IMP-{tag}-1", "2026-01-05", ""]],
    })
    page.locator("input[type=file]").set_input_files(clean)
    expect(page.get_by_test_id("import-report")).to_have_count(0)  # a new file drops the old report
    # A slow line (4 KB/s up) shows the upload's progress.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 100, "downloadThroughput": -1,
                                                  "uploadThroughput": 4 * 1024})
    page.get_by_test_id("import-check").click()
    expect(page.get_by_test_id("import-progress")).to_be_visible()
    pages.shot(page, "import-uploading")
    expect(page.get_by_test_id("import-result")).to_contain_text("检查通过")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                  "uploadThroughput": -1})
    counts = page.get_by_test_id("import-counts")
    expect(counts.locator("tr").filter(has_text="人员")).to_contain_text("1")
    assert api(page, "/users", q=f"IMP-{tag}")["total"] == 0  # a dry run writes nothing
    pages.shot(page, "import-clean")
    page.get_by_test_id("import-run").click()
    expect(page.get_by_test_id("import-result")).to_contain_text("导入完成，共写入 3 行")
    pages.shot(page, "import-done")
    people = api(page, "/users", q=f"IMP-{tag}")["items"]
    assert [(p["display_name"], p["branch_name"], p["party_status"]) for p in people] == [(f"导入{tag}", "第一党支部", "full")]
    unit = api(page, "/org-units", q=group)["items"]
    assert [(u["kind"], u["established_on"]) for u in unit] == [("party_group", "2026-01-05")]
    assert [p["username"] for p in api(page, "/positions", org_id=unit[0]["id"])] == [f"imp_{tag}"]

    # The export downloads the workbook in the import layout, the new member in it.
    with page.expect_download() as got:
        page.get_by_test_id("export").click()
    assert got.value.suggested_filename == "人员与组织.xlsx"
    book = load_workbook(io.BytesIO(open(got.value.path(), "rb").read()), read_only=True)
    assert {"组织", "人员", "职务", "分管"} <= set(book.sheetnames)
    assert any(f"IMP-{tag}-1" in row for row in book["人员"].iter_rows(values_only=True))

    # The new group is in the tree at once.
    page.get_by_role("tab", name="组织与人员", exact=True).click()
    expect(page.get_by_test_id(f"org-node-{group}")).to_be_visible()


def test_a_delegation_is_made_for_a_member_and_revoked(pages):
    page = open_org(pages, "dangwei")  # delegation.manage: for the people in his scope too
    page.get_by_role("tab", name="委托", exact=True).click()
    page.get_by_test_id("delegation-add").click()
    page.get_by_test_id("delegation-form-ok").click()
    expect(page.locator(".ant-modal:visible .ant-form-item-explain-error")).to_have_count(1)  # 受托人 is required
    pick(page, "delegation-owner", "蒋二（rudang，财务科）", search="蒋二")
    pick(page, "person-picker", "卫五（办公室）", search="卫五")
    page.locator(".ant-modal:visible #reason").fill("外出学习")
    pages.shot(page, "delegation-form")
    page.get_by_test_id("delegation-form-ok").click()
    row = page.get_by_test_id("delegations-table").locator("tr").filter(has_text="外出学习")
    expect(row).to_contain_text("蒋二")
    expect(row).to_contain_text("卫五")
    expect(row).to_contain_text("生效中")
    made = [d for d in api(page, "/delegations", role="all") if d["reason"] == "外出学习"]
    assert [(d["username"], d["delegate_username"], d["active"]) for d in made] == [("rudang", "zb2member", True)]
    pages.shot(page, "delegations")
    row.get_by_test_id("delegation-revoke").click()
    page.locator(".ant-popconfirm:visible").get_by_role("button", name="撤销委托").click()
    expect(row).to_have_count(0)  # ended ones are shown on request only
    gone = [d for d in api(page, "/delegations", role="all", include_ended="true") if d["id"] == made[0]["id"]]
    assert gone[0]["revoked_at"] is not None


def test_the_security_administrator_grants_a_role_for_one_branch_and_revokes_it(pages):
    page = open_org(pages, "secadmin")  # roles and grants; no org records (secadmin has no org.read)
    assert page.get_by_test_id("org-tree").count() == 0
    roles = page.get_by_test_id("roles-table")
    expect(roles.locator("tr").filter(has_text="党务工作者")).to_contain_text("批量导入人员与组织")
    branch2 = next(g["org_unit_id"] for g in api(page, "/role-grants") if g["username"] == "zb2shuji")
    page.get_by_test_id("grant-add").click()
    pick(page, "person-select", "卫五（zb2member，办公室）", search="卫五")
    pick(page, "grant-role", "流程设计员（本组织及下级）")
    page.locator(".ant-modal:visible").get_by_test_id("org-picker").click()  # units by name: /api/directory/orgs
    page.locator(".ant-select-tree-title", has_text=re.compile("^第二党支部$")).click()
    pages.shot(page, "grant-form")
    page.get_by_test_id("grant-form-ok").click()
    row = page.get_by_test_id("grants-table").locator("tr").filter(has_text="zb2member").filter(has_text="流程设计员")
    expect(row).to_contain_text("第二党支部")
    assert [(g["role_key"], g["org_unit_id"]) for g in api(page, "/role-grants") if g["username"] == "zb2member"] == [
        ("staff", None), ("designer", branch2)]
    pages.shot(page, "grants")
    row.get_by_role("button", name="撤销授权").click()
    page.locator(".ant-popconfirm:visible").get_by_role("button", name="撤销授权").click()
    expect(row).to_have_count(0)
    assert [g["role_key"] for g in api(page, "/role-grants") if g["username"] == "zb2member"] == ["staff"]


def test_staff_get_no_menu_item_and_a_refusal_at_org(pages):
    page = pages.open()
    pages.sign_in(page, "staff1")
    page.get_by_test_id("tab-mine").wait_for()
    assert page.get_by_role("link", name="组织管理").count() == 0
    page.goto("/org")
    expect(page.get_by_test_id("org-forbidden")).to_contain_text("没有访问权限")
    assert page.get_by_test_id("org-tree").count() == 0
    pages.shot(page, "staff-refused")


def test_the_page_fits_a_phone(pages):
    page = open_org(pages, "shuji", phone=True)  # 党务工作者 of 第一党支部 only
    expect(page.get_by_test_id("unit-title")).to_have_text("第一党支部")  # his own branch opens first
    expect(page.get_by_test_id("org-node-sfj-jgdw")).to_contain_text("仅名称")
    assert page.get_by_test_id("org-node-sfj-jgdw-zb2").count() == 0  # another branch is not his to see
    page.get_by_role("tab", name="人员", exact=True).click()
    expect(page.get_by_test_id("people-table")).to_contain_text("吴十")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the org page scrolls sideways on a phone ({width} px wide)"
    pages.shot(page, "phone")


def test_the_page_reads_in_english(pages):
    page = pages.open(lang="en")
    pages.sign_in(page, "zb2shuji")  # 党务工作者 of 第二党支部
    page.get_by_role("link", name="Organisation admin").click()
    expect(page.get_by_test_id("unit-title")).to_have_text("第二党支部")
    for tab in ("Units and people", "Delegations", "Import and export"):
        expect(page.get_by_role("tab", name=tab, exact=True)).to_be_visible()
    for tab in ("Posts", "In charge", "History", "Checks"):
        expect(page.get_by_test_id("unit-tabs").get_by_role("tab", name=tab, exact=True)).to_be_visible()
    expect(page.get_by_test_id("unit-details")).to_contain_text("Party branch")
    page.get_by_role("tab", name="Posts", exact=True).click()
    expect(page.get_by_test_id("positions-table")).to_contain_text("Secretary")
    pages.shot(page, "english")
