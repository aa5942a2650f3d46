"""The monitor's process data and audit-chain status, the auditor's search by person, and the
person picker narrowed by the org tree, through the built web app in Chromium."""
from __future__ import annotations

import re
import secrets

import pytest
from playwright.sync_api import expect

from tests.e2e.test_web_app import open_task, staff1_starts

pytestmark = pytest.mark.e2e


def test_the_monitor_shows_the_data_masked_where_personal_and_the_instance_chain_intact(pages):
    title = f"会议室设备-{secrets.token_hex(3)}"
    _, instance_id = staff1_starts(pages, title, 1200)

    page = pages.open()
    pages.sign_in(page, "shuji")  # org_admin of staff1's branch
    page.goto(f"/monitor/{instance_id}")
    data = page.get_by_test_id("monitor-variables")
    expect(data.get_by_test_id("variable-title")).to_have_text(title)
    expect(data.get_by_test_id("variable-amount")).to_have_text("1200")
    expect(data).to_contain_text("申请事项")  # the form's title for the field, not only its name
    who = data.get_by_test_id("variable-initiator")
    expect(who).to_contain_text("赵六")
    assert "birth_date" not in who.inner_text()  # personal facts stay out of the panel
    expect(data.get_by_test_id("variable-masked").first).to_be_visible()
    chain = page.get_by_test_id("monitor-chain-ok")
    expect(chain).to_contain_text("审计事件完整")
    pages.shot(page, "monitor-data-chain")


def test_the_auditor_finds_one_persons_events_by_name_and_reads_one_whole(pages):
    title = f"审计检索-{secrets.token_hex(3)}"
    staff1_starts(pages, title, 500)

    page = pages.open()
    pages.sign_in(page, "auditor")
    page.wait_for_url(re.compile(r"/audit$"))
    box = page.get_by_test_id("audit-actor").locator("input")
    box.fill("赵六")
    box.press("Enter")
    page.wait_for_url(re.compile(r"actor=%E8%B5%B5%E5%85%AD|actor=赵六"))
    cells = page.get_by_test_id("audit-who")
    expect(cells.first).to_contain_text("赵六（staff1）")
    texts = cells.all_inner_texts()
    assert texts and all("赵六（staff1）" in t for t in texts), texts
    row = page.locator("tr.ant-table-row").filter(has_text="instance.start").first
    row.locator(".ant-table-row-expand-icon").click()
    expect(page.locator("[data-testid^=audit-payload-]").first).to_contain_text(title)
    pages.shot(page, "audit-by-person")
    page.reload()  # the filter lives in the URL
    expect(page.get_by_test_id("audit-who").first).to_contain_text("赵六（staff1）")


def test_a_task_is_transferred_to_someone_picked_from_the_org_tree(pages):
    title = f"转办-{secrets.token_hex(3)}"
    staff, instance_id = staff1_starts(pages, title, 900)

    ke = pages.open()
    pages.sign_in(ke, "kezhang")
    open_task(ke, title)
    ke.get_by_test_id("action-transfer").click()
    dialog = ke.locator(".ant-modal")
    dialog.get_by_test_id("person-picker-org").click()
    ke.locator(".ant-select-tree-title", has_text=re.compile("^办公室$")).click()
    dialog.get_by_test_id("person-picker").click()
    options = ke.locator(".ant-select-dropdown:visible .ant-select-item-option")
    expect(options.filter(has_text="吴十")).to_have_count(1)
    names = options.all_inner_texts()
    assert names and all("办公室" in n for n in names), names  # only 办公室's people are offered
    assert not any("财务科" in n for n in names)
    options.filter(has_text="吴十").click()
    dialog.get_by_test_id("dialog-comment").fill("请书记阅处")
    pages.shot(ke, "transfer-by-org")
    ke.get_by_test_id("dialog-ok").click()
    staff.goto(f"/instances/{instance_id}")
    expect(staff.get_by_test_id("history")).to_contain_text("请书记阅处")
    expect(staff.locator(".ant-descriptions")).to_contain_text("吴十")
