"""The staff and auditor journeys of issue 8 through the built web app in Chromium."""
from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import record_timing

pytestmark = pytest.mark.e2e


def start_request(pages, page, title: str, amount: int) -> int:
    """staff1 fills the approval_chain application and submits it; returns the instance id."""
    page.get_by_role("link", name="发起申请").click()
    page.get_by_test_id("start-approval_chain").click()
    page.locator("#root_title").fill(title)
    page.locator("#root_category").click()
    page.locator(".ant-select-item-option[title='差旅']").click()
    page.locator("#root_amount").fill(str(amount))
    page.locator("#root_reason").fill("赴省厅参加党建工作会议")
    page.get_by_test_id("start-title").fill(title)
    pages.shot(page, "start-form")
    page.get_by_test_id("start-submit").click()
    page.wait_for_url(re.compile(r"/instances/\d+$"))
    return int(page.url.rsplit("/", 1)[1])


def staff1_starts(pages, title: str, amount: int):
    """staff1 signs in on a page of their own and starts a request; returns (page, instance id)."""
    staff = pages.open()
    pages.sign_in(staff, "staff1")
    return staff, start_request(pages, staff, title, amount)


def open_task(page, title: str) -> None:
    page.get_by_role("link", name="待办").first.click()
    page.get_by_test_id("task-row").filter(has_text=title).click()
    page.wait_for_url(re.compile(r"/tasks/\d+$"))
    page.get_by_test_id("actions").wait_for()


def approve(pages, username: str, title: str, *, phone: bool = False, opinion: str = "同意") -> None:
    page = pages.open(phone=phone)
    pages.sign_in(page, username)
    open_task(page, title)
    page.get_by_test_id("opinion").fill(opinion)
    pages.shot(page, f"{username}-task")
    page.get_by_test_id("action-approve").click()
    page.wait_for_url(re.compile(r"/instances/\d+$"))


def test_a_request_is_started_approved_on_a_phone_and_shown_completed_with_its_path(pages):
    title = f"差旅报销-{secrets.token_hex(3)}"
    staff = pages.open()
    pages.sign_in(staff, "staff1")
    pages.shot(staff, "inbox")
    instance_id = start_request(pages, staff, title, 12000)
    assert staff.get_by_test_id("instance-status").inner_text() == "运行中"

    # kezhang on a phone: the first load of the inbox is timed in a fresh context (nothing cached,
    # only the session carried over), then the task is approved there.
    signed = pages.open(phone=True)
    pages.sign_in(signed, "kezhang")
    phone = pages.open(phone=True, storage_state=signed.context.storage_state())
    t0 = time.perf_counter()
    phone.goto("/inbox")
    phone.get_by_test_id("task-row").filter(has_text=title).wait_for()
    record_timing("phone, empty cache: navigation to the inbox until the task row shows, ms",
                  (time.perf_counter() - t0) * 1000)
    nav = phone.evaluate("performance.getEntriesByType('navigation')[0].toJSON()")
    record_timing("phone, empty cache: load event end, ms", nav["loadEventEnd"])
    record_timing("phone, empty cache: bytes transferred", phone.evaluate(
        "performance.getEntriesByType('resource').reduce((n, r) => n + r.transferSize, 0) + "
        "performance.getEntriesByType('navigation')[0].transferSize"))
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the phone inbox scrolls sideways ({width} px wide)"
    pages.shot(phone, "kezhang-phone-inbox")
    open_task(phone, title)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    amount = phone.locator("#root_amount")  # the application is read-only to an approver
    assert amount.is_disabled() or amount.get_attribute("readonly") is not None
    phone.get_by_test_id("opinion").fill("情况属实，同意")
    pages.shot(phone, "kezhang-phone-task")
    phone.get_by_test_id("action-approve").click()
    phone.wait_for_url(re.compile(r"/instances/\d+$"))
    pages.shot(phone, "kezhang-phone-after")

    approve(pages, "fenguan", title)
    approve(pages, "juzhang", title)

    staff.goto(f"/instances/{instance_id}")
    assert staff.get_by_test_id("instance-status").inner_text() == "已完成"
    staff.locator("[data-testid=diagram][data-ready='1']").wait_for()
    ids = "els => els.map(e => e.getAttribute('data-element-id')).sort()"
    assert staff.locator(".djs-element.dj-node-completed").evaluate_all(ids) == sorted(
        ["start", "submit_request", "dept_review", "leader_review", "amount_gateway", "head_review", "end"])
    # 12,000 元 is above the threshold: the gateway's 低于标准 branch was not taken and stays grey.
    assert staff.locator(".djs-element.dj-flow-taken").evaluate_all(ids) == sorted(
        ["flow_start", "flow_to_dept", "flow_to_leader", "flow_to_gateway", "flow_above_threshold", "flow_to_end"])
    assert staff.locator(".djs-element.dj-node-active").count() == 0
    history = staff.get_by_test_id("history").inner_text()
    assert "情况属实，同意" in history and "钱七" in history and "周九" in history
    pages.shot(staff, "completed")


def test_returned_to_the_initiator_then_resubmitted_with_edited_data(pages):
    title = f"会议费-{secrets.token_hex(3)}"
    staff = pages.open()
    pages.sign_in(staff, "staff1")
    start_request(pages, staff, title, 5000)

    ke = pages.open()
    pages.sign_in(ke, "kezhang")
    open_task(ke, title)
    ke.get_by_test_id("action-return").click()
    targets = ke.get_by_test_id("return-targets")
    assert "发起申请" in targets.inner_text()
    targets.get_by_text("发起申请").click()
    ke.get_by_test_id("dialog-comment").fill("金额有误，请按标准重新填写")
    pages.shot(ke, "return-dialog")
    ke.get_by_test_id("dialog-ok").click()
    ke.wait_for_url(re.compile(r"/instances/\d+$"))

    open_task(staff, title)
    note = staff.get_by_test_id("task-note").inner_text()
    assert "退回" in note and "金额有误，请按标准重新填写" in note
    assert staff.locator("#root_amount").input_value() in ("5000", "5,000")
    staff.locator("#root_amount").fill("4800")
    pages.shot(staff, "resubmit")
    staff.get_by_test_id("action-submit").click()
    staff.wait_for_url(re.compile(r"/instances/\d+$"))

    open_task(ke, title)
    assert ke.locator("#root_amount").input_value() in ("4800", "4,800")


def test_the_auditor_verifies_the_chain_and_exports_a_bundle_that_verifies_offline(pages, tmp_path):
    page = pages.open()
    pages.sign_in(page, "auditor")
    page.wait_for_url(re.compile(r"/audit$"))
    page.get_by_test_id("verify").click()
    result = page.get_by_test_id("verify-result")
    result.wait_for()
    assert "链完整" in result.inner_text()
    assert page.locator("table tbody tr").count() > 5
    pages.shot(page, "audit")
    # The exported bundle verifies offline, with no database.
    with page.expect_download() as got:
        page.get_by_test_id("export").click()
    bundle = tmp_path / got.value.suggested_filename
    got.value.save_as(bundle)
    assert bundle.name.startswith("djflow-audit-") and bundle.suffix == ".zip"
    djflow = Path(sys.executable).parent / "djflow"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJFLOW_")}
    checked = subprocess.run([str(djflow), "audit", "verify-bundle", str(bundle)], capture_output=True, text=True,
                             env=env, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_app_switches_to_english_and_remembers_it(pages):
    page = pages.open()
    page.goto("/")
    assert page.get_by_role("button", name="登录").is_visible()
    page.get_by_test_id("lang-switch").click()
    assert page.get_by_role("button", name="Sign in").is_visible()
    assert page.evaluate("document.documentElement.lang") == "en"
    pages.sign_in(page, "shuji")
    assert page.get_by_test_id("tab-mine").inner_text().startswith("To do")
    pages.shot(page, "english-inbox")
    page.reload()
    page.get_by_test_id("tab-mine").wait_for()
    assert page.get_by_test_id("tab-mine").inner_text().startswith("To do")


def test_five_wrong_passwords_lock_the_account_and_the_page_says_until_when(pages):
    pages.expect_console(r"status of (401|423)")
    page = pages.open()
    page.goto("/")
    for _ in range(5):
        page.get_by_label("用户名").fill("zb2member")
        page.get_by_label("密码", exact=True).fill("wrong-password-1")
        page.locator("button[type=submit]").click()
        page.get_by_test_id("login-error").wait_for()
    page.get_by_label("密码", exact=True).fill("wrong-password-1")
    page.locator("button[type=submit]").click()
    page.get_by_test_id("login-error").filter(has_text="账号已锁定").wait_for()
    assert "后再试" in page.get_by_test_id("login-error").inner_text()
    pages.shot(page, "locked")


def pick(page, testid: str, option: str, *, search: str | None = None) -> None:
    """Choose `option` in the antd Select marked `testid` (typing `search` first, for long lists:
    the dropdown only draws the options in view)."""
    page.get_by_test_id(testid).click()
    if search:
        page.keyboard.type(search)
    page.locator(f".ant-select-dropdown:visible .ant-select-item-option[title='{option}']").click()


def append_user_task(page, after: str, name: str) -> None:
    """Select `after` on the canvas, append a task from its context pad, make it a user task, name it."""
    append = page.locator(".djs-context-pad .entry[data-action='append.append-task']")
    # A select's dropdown just closed may swallow the first click on the canvas: click until the pad shows.
    for _ in range(3):
        page.locator(f".djs-element[data-element-id='{after}']").first.click()
        try:
            append.wait_for(timeout=2000)
            break
        except Exception:  # noqa: BLE001 - playwright's TimeoutError; try the click again
            continue
    append.click()
    page.locator(".djs-context-pad .entry[data-action='replace']").click()
    page.locator(".djs-popup .entry[data-id='replace-with-user-task']").click()
    page.get_by_test_id("element-name").fill(name)


def add_field(page, kind: str, name: str, title: str, *, required: bool = False) -> None:
    """In the form designer: a field of `kind` from the palette, named and titled."""
    page.get_by_test_id(f"palette-{kind}").click()
    page.get_by_test_id("field-name").fill(name)
    page.get_by_test_id("field-title").fill(title)
    if required:
        page.get_by_test_id("field-required").check()


def build_trip_form(pages, page) -> None:
    page.get_by_role("link", name="表单设计").click()
    page.get_by_test_id("form-new").click()
    page.get_by_test_id("form-key").fill("trip_form")
    page.get_by_test_id("form-title").fill("出差申请")
    add_field(page, "text", "destination", "目的地", required=True)
    add_field(page, "money", "budget", "预算")
    page.get_by_test_id("palette-radio").click()
    # Two fields of one name are refused before anything is sent.
    page.get_by_test_id("field-name").fill("budget")
    assert "字段名 budget 重复" in page.get_by_test_id("form-problems").inner_text()
    page.get_by_test_id("field-name").fill("transport")
    page.get_by_test_id("field-title").fill("交通方式")
    assert page.get_by_test_id("form-problems").count() == 0
    preview = page.get_by_test_id("form-preview")
    for label in ("目的地", "预算", "交通方式"):
        assert label in preview.inner_text()
    pages.shot(page, "form-designer")
    page.get_by_test_id("form-save").click()
    page.get_by_test_id("form-version").filter(has_text="1").wait_for()
    page.wait_for_url(re.compile(r"/designer/forms/trip_form$"))

    # What was stored is what the task page will render.
    stored = page.evaluate("fetch('/api/forms/trip_form').then(r => r.json())")
    assert stored["version"] == 1
    assert stored["schema"]["required"] == ["destination"]
    assert list(stored["schema"]["properties"]) == ["destination", "budget", "transport"]
    assert stored["ui_schema"]["budget"]["ui:widget"] == "money"
    assert stored["ui_schema"]["transport"]["ui:widget"] == "radio"

    # Reopened, it shows the same fields; the JSON tab holds the schema.
    page.reload()
    page.get_by_test_id("designer-field").nth(2).wait_for()
    assert page.get_by_test_id("designer-field").count() == 3
    page.get_by_role("tab", name="JSON（高级）").click()
    assert '"destination"' in page.get_by_test_id("form-json").input_value()


def test_a_designer_builds_a_form_draws_a_two_step_process_and_publishes_it(pages):
    page = pages.open()
    pages.sign_in(page, "designer")
    build_trip_form(pages, page)

    page.get_by_role("link", name="流程设计").click()
    page.get_by_test_id("process-new").click()
    page.get_by_test_id("new-process-key").fill("trip_approval")
    page.get_by_test_id("new-process-name").fill("出差审批")
    page.get_by_test_id("new-process-ok").click()
    # Chinese labels on the palette.
    assert page.locator(".djs-palette .entry[aria-label='结束事件']").count() == 1

    append_user_task(page, "start", "发起申请")
    pick(page, "rule-kind", "发起人本人")
    pick(page, "element-form", "出差申请（trip_form）", search="trip_form")
    submit_id = page.locator(".djs-element.selected").first.get_attribute("data-element-id")

    append_user_task(page, submit_id, "科室负责人审批")
    pick(page, "rule-kind", "职务（如科室负责人）")
    assert "发起人所在科室的负责人" in page.get_by_test_id("properties").inner_text()
    pick(page, "element-form", "审批意见（approval_opinion）", search="approval_opinion")
    review_id = page.locator(".djs-element.selected").first.get_attribute("data-element-id")
    page.locator(".djs-context-pad .entry[data-action='append.end-event']").click()

    page.get_by_test_id("process-validate").click()
    page.get_by_test_id("process-problems").filter(has_text="校验通过").wait_for()
    pages.shot(page, "process-designer")
    page.get_by_test_id("process-publish").click()
    page.wait_for_url(re.compile(r"/designer/processes/trip_approval$"))
    page.get_by_test_id("process-versions").wait_for()

    version = page.evaluate("fetch('/api/process-definitions/trip_approval/versions/1').then(r => r.json())")
    assert version["status"] == "published"
    nodes = version["nodes"]
    assert nodes[submit_id]["name"] == "发起申请" and nodes[submit_id]["form_key"] == "trip_form"
    assert nodes[review_id]["rule"] == "position:head@initiator.department"

    # staff1 finds it in the catalogue and starts it; it waits for 钱七, 财务科's head.
    staff = pages.open()
    pages.sign_in(staff, "staff1")
    staff.get_by_role("link", name="发起申请").click()
    staff.get_by_test_id("start-trip_approval").click()
    staff.locator("#root_destination").fill("杭州")
    staff.locator("#root_budget").fill("1800")
    staff.get_by_text("选项一").click()
    staff.get_by_test_id("start-submit").click()
    staff.wait_for_url(re.compile(r"/instances/\d+$"))
    assert "钱七（科室负责人审批）" in staff.locator(".ant-descriptions").inner_text()
    pages.shot(staff, "started-designed-process")


def test_a_party_secretary_finds_an_instance_in_the_monitor_and_cancels_it_with_a_reason(pages):
    title = f"办公用品-{secrets.token_hex(3)}"
    staff = pages.open()
    pages.sign_in(staff, "staff1")
    instance_id = start_request(pages, staff, title, 800)

    page = pages.open()
    pages.sign_in(page, "shuji")  # org_admin of 第一党支部, staff1's branch
    page.get_by_role("link", name="流程监控").click()
    page.get_by_test_id("monitor-search").locator("input").fill(title)
    page.get_by_test_id("monitor-search").locator("input").press("Enter")
    rows = page.get_by_test_id("monitor-row")
    expect(rows).to_have_count(1)  # only the searched-for instance
    expect(rows.first).to_contain_text(title)
    rows.first.click()
    page.wait_for_url(re.compile(rf"/monitor/{instance_id}$"))
    assert page.get_by_test_id("monitor-instance-status").inner_text() == "运行中"
    assert "科室负责人审批" in page.locator(".ant-table").first.inner_text()
    page.get_by_test_id("monitor-cancel").click()
    page.get_by_test_id("monitor-cancel-reason").fill("重复申请，已另行办理")
    pages.shot(page, "monitor-cancel")
    page.get_by_test_id("monitor-cancel-ok").click()
    page.get_by_test_id("monitor-instance-status").filter(has_text="已取消").wait_for()
    page.get_by_test_id("history").filter(has_text="重复申请，已另行办理").wait_for()
    pages.shot(page, "monitor-cancelled")

    # The initiator sees it ended, and kezhang's task is gone from his inbox.
    staff.goto(f"/instances/{instance_id}")
    assert staff.get_by_test_id("instance-status").inner_text() == "已取消"
    ke = pages.open()
    pages.sign_in(ke, "kezhang")
    ke.get_by_test_id("tab-mine").wait_for()
    ke.wait_for_load_state("networkidle")
    assert ke.get_by_test_id("task-row").filter(has_text=title).count() == 0


def test_bulk_approve_moves_each_picked_task_on_with_one_opinion(pages):
    tag = secrets.token_hex(3)
    titles = [f"批量-{tag}-{n}" for n in (1, 2)]
    staff = pages.open()
    pages.sign_in(staff, "staff1")
    ids = [start_request(pages, staff, title, 300) for title in titles]

    ke = pages.open()
    pages.sign_in(ke, "kezhang")
    for title in titles:
        ke.get_by_test_id("task-row").filter(has_text=title).get_by_test_id("task-pick").check()
    ke.get_by_test_id("bulk-approve").click()
    ke.locator(".ant-modal textarea").fill("批量同意")
    pages.shot(ke, "bulk-approve")
    ke.get_by_test_id("bulk-ok").click()
    for title in titles:
        expect(ke.get_by_test_id("task-row").filter(has_text=title)).to_have_count(0)
    for instance_id in ids:
        staff.goto(f"/instances/{instance_id}")
        expect(staff.locator(".ant-descriptions")).to_contain_text("孙八（分管领导审批）")
        expect(staff.get_by_test_id("history")).to_contain_text("批量同意")


def test_a_designer_changes_a_local_setting_and_the_next_request_follows_it(pages):
    """本单位参数: the setting shows as local practice with its default; a bad value is refused by
    the server and shown beside the field; a good one publishes a new version, which the next
    request follows (3000 元 goes on to 主要负责人 once the threshold is 2000); reset puts it back."""
    page = pages.open()
    pages.sign_in(page, "designer")
    page.goto("/designer/processes/approval_chain")
    page.get_by_test_id("process-settings").click()
    drawer = page.get_by_test_id("settings-drawer")
    expect(drawer).to_contain_text("须报主要负责人审批的金额")
    expect(drawer).to_contain_text("未经证实")  # §6.1 [U]: no national figure
    field = drawer.get_by_role("spinbutton")  # the amount_threshold input, the only number here
    expect(field).to_have_value("5000")
    pages.shot(page, "settings-drawer")
    field.fill("2000")
    page.get_by_test_id("settings-save").click()
    expect(page.locator(".ant-message")).to_contain_text("版本")
    expect(drawer).to_contain_text("恢复默认")
    pages.shot(page, "settings-saved")

    title = f"差旅-{secrets.token_hex(3)}"
    staff = pages.open()
    pages.sign_in(staff, "staff1")
    instance_id = start_request(pages, staff, title, 3000)
    approve(pages, "kezhang", title)
    approve(pages, "fenguan", title)
    staff.goto(f"/instances/{instance_id}")
    expect(staff.get_by_test_id("instance-status")).to_have_text("运行中")
    expect(staff.get_by_text("周九（主要负责人审批）")).to_be_visible()

    drawer.get_by_role("button", name="恢复默认").click()
    page.get_by_test_id("settings-save").click()
    expect(drawer).not_to_contain_text("恢复默认")
    expect(field).to_have_value("5000")


LIBRARY = sorted(p.name for p in (Path(__file__).parents[2] / "process_definitions").iterdir()
                 if (p / f"{p.name}.bpmn").is_file())


def test_every_shipped_process_opens_in_the_modeler_with_nothing_left_out(pages):
    """Each process of the library opens in the designer's bpmn-js modeler with every element
    drawn (its diagram is complete) and no warning that something could not be read."""
    page = pages.open()
    pages.sign_in(page, "designer")
    assert len(LIBRARY) >= 11
    for key in LIBRARY:
        page.goto(f"/designer/processes/{key}")
        page.locator(".dj-modeler .djs-element.djs-shape").first.wait_for()
        page.wait_for_load_state("networkidle")
        ignored = page.get_by_test_id("process-ignored")
        assert ignored.count() == 0, f"{key}: {ignored.text_content()}"
        shapes = page.locator(".dj-modeler .djs-element.djs-shape").count()
        bpmn = (Path(__file__).parents[2] / "process_definitions" / key / f"{key}.bpmn").read_text(encoding="utf-8")
        assert shapes >= bpmn.count("<bpmndi:BPMNShape") > 3, key  # every shape of the file is on the canvas
        # a diagram with a pool is a collaboration: the panel (and a save) still name the process
        expect(page.get_by_test_id("properties").locator("input").first).to_have_value(key)
        pages.shot(page, f"designer-{key}")
