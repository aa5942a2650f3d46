"""Attachments on the task and instance pages, the inbox's initiator and date filters, and a form's
file field, through the built web app in Chromium (issue 8 items 2, 3 and 6)."""
from __future__ import annotations

import json
import re
import secrets
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.test_web_app import add_field, open_task, start_request
from tests.support.processes import node, write_process

pytestmark = pytest.mark.e2e


def call(page, method: str, path: str, body=None):
    """A JSON request from the signed-in page (its session cookie and CSRF token)."""
    return page.evaluate("""async ([method, path, body]) => {
        const csrf = document.cookie.split('; ').find((c) => c.startsWith('djflow_csrf='))?.split('=')[1] ?? '';
        const r = await fetch('/api' + path, {method, headers: {'Content-Type': 'application/json',
            'X-CSRF-Token': decodeURIComponent(csrf)}, body: body === null ? undefined : JSON.stringify(body)});
        return {status: r.status, body: await r.json().catch(() => null)};
    }""", [method, path, body])


def test_an_approver_adds_a_file_on_the_task_page_and_the_initiator_downloads_the_same_bytes(pages, tmp_path):
    title = f"附件-{secrets.token_hex(3)}"
    staff = pages.open()
    pages.sign_in(staff, "staff1")
    instance_id = start_request(pages, staff, title, 900)

    ke = pages.open()
    pages.sign_in(ke, "kezhang")
    open_task(ke, title)
    content = ("会议纪要\n" + secrets.token_hex(16) + "\n").encode()
    ke.get_by_test_id("attachment-upload-input").set_input_files(
        files=[{"name": "会议纪要.txt", "mimeType": "text/plain", "buffer": content}])
    row = ke.get_by_test_id("attachment-row").filter(has_text="会议纪要.txt")
    expect(row).to_contain_text("钱七")  # who added it
    expect(row).to_contain_text("B")
    # a type the server does not take is refused with its reason, in Chinese
    pages.expect_console(r"status of 422")
    ke.get_by_test_id("attachment-upload-input").set_input_files(
        files=[{"name": "tool.exe", "mimeType": "application/x-msdownload", "buffer": b"MZ\x90\x00"}])
    expect(ke.locator(".ant-message")).to_contain_text("不接受的附件类型")
    expect(ke.get_by_test_id("attachment-row")).to_have_count(1)
    pages.shot(ke, "task-attachment")

    staff.goto(f"/instances/{instance_id}")
    link = staff.get_by_test_id("attachment-link").filter(has_text="会议纪要.txt")
    with staff.expect_download() as got:
        link.click()
    saved = tmp_path / "download.txt"
    got.value.save_as(saved)
    assert saved.read_bytes() == content
    assert got.value.suggested_filename == "会议纪要.txt"
    pages.shot(staff, "instance-attachment")


def install_file_process(pages, tmp_path: Path, tag: str) -> tuple[str, str]:
    """The designer builds a form with a file field in the form designer and publishes a process
    whose start form it is, reviewed by 钱七. Returns (process key, form key)."""
    form_key, key = f"files_{tag}", f"file_req_{tag}"
    page = pages.open()
    pages.sign_in(page, "designer")
    page.get_by_role("link", name="表单设计").click()
    page.get_by_test_id("form-new").click()
    page.get_by_test_id("form-key").fill(form_key)
    page.get_by_test_id("form-title").fill("用印申请")
    add_field(page, "text", "subject", "用印事由", required=True)
    add_field(page, "file", "papers", "用印材料", required=True)
    limit = page.get_by_test_id("field-max")
    (limit if limit.evaluate("e => e.tagName") == "INPUT" else limit.locator("input")).fill("2")
    page.get_by_test_id("field-accept").fill(".txt,.pdf")
    expect(page.get_by_test_id("form-preview")).to_contain_text("预览中不上传文件")
    pages.shot(page, "form-designer-file-field")
    page.get_by_test_id("form-save").click()
    page.wait_for_url(re.compile(rf"/designer/forms/{form_key}$"))
    stored = call(page, "GET", f"/forms/{form_key}")["body"]
    assert stored["schema"]["properties"]["papers"] == {
        "title": "用印材料", "type": "array", "items": {"type": "integer"}, "uniqueItems": True,
        "minItems": 1, "maxItems": 2}
    assert stored["ui_schema"]["papers"] == {"ui:widget": "attachments", "ui:options": {"accept": ".txt,.pdf"}}
    # reopened, the designer shows the file field again (not the JSON-only mode)
    page.reload()
    expect(page.get_by_test_id("designer-field")).to_have_count(2)
    expect(page.get_by_test_id("designer-field").nth(1)).to_contain_text("附件上传")

    folder = write_process(tmp_path, key, [node("review", "办公室审核", "user:kezhang")])
    xml = (folder / f"{key}.bpmn").read_text(encoding="utf-8").replace('value="multi_request"', f'value="{form_key}"')
    published = page.evaluate("""async ([key, xml]) => {
        const csrf = decodeURIComponent(document.cookie.split('; ').find((c) => c.startsWith('djflow_csrf=')).split('=')[1]);
        const body = new FormData();
        body.append('file', new Blob([xml], {type: 'application/xml'}), key + '.bpmn');
        const up = await fetch('/api/process-definitions', {method: 'POST', headers: {'X-CSRF-Token': csrf}, body});
        const pub = await fetch('/api/process-definitions/' + key + '/publish', {method: 'POST',
            headers: {'X-CSRF-Token': csrf, 'Content-Type': 'application/json'}, body: '{}'});
        return [up.status, await up.text(), pub.status, await pub.text()];
    }""", [key, xml])
    assert published[0] == 201 and published[2] == 200, published
    return key, form_key


def test_a_start_form_file_field_takes_an_upload_and_the_approver_sees_it(pages, tmp_path):
    tag = secrets.token_hex(3)
    key, _ = install_file_process(pages, tmp_path, tag)

    staff = pages.open()
    pages.sign_in(staff, "staff1")
    staff.goto(f"/start/{key}")
    staff.locator("#root_subject").fill("合同用印")
    upload = staff.get_by_test_id("files-papers-upload-input")
    assert upload.get_attribute("accept") == ".txt,.pdf"
    # a file of another type is refused in the browser, before anything is sent
    upload.set_input_files(files=[{"name": "photo.png", "mimeType": "image/png", "buffer": b"\x89PNG\r\n\x1a\n"}])
    expect(staff.locator(".ant-message")).to_contain_text("不是允许的文件类型")
    # a staged file removed from the field is deleted on the server, not left behind
    upload.set_input_files(files=[{"name": "草稿.txt", "mimeType": "text/plain", "buffer": f"草稿 {tag}\n".encode()}])
    item = staff.get_by_test_id("files-papers").get_by_test_id("file-field-item")
    expect(item).to_have_count(1)
    draft_href = item.locator("a").first.get_attribute("href")
    with staff.expect_response(lambda r: r.request.method == "DELETE" and "/api/attachments/" in r.url) as gone:
        item.get_by_test_id("file-field-remove").click()
    assert gone.value.status == 204
    expect(item).to_have_count(0)
    assert staff.request.get(staff.url.split("/start/")[0] + draft_href).status == 404  # not through the page: no console error
    content = f"合同正文 {tag}\n".encode()
    upload.set_input_files(files=[{"name": "合同.txt", "mimeType": "text/plain", "buffer": content}])
    expect(staff.get_by_test_id("files-papers").get_by_test_id("file-field-item")).to_have_count(1)
    expect(staff.get_by_test_id("files-papers")).to_contain_text("合同.txt")
    staff.get_by_test_id("start-title").fill(f"用印-{tag}")
    pages.shot(staff, "start-form-file")
    staff.get_by_test_id("start-submit").click()
    staff.wait_for_url(re.compile(r"/instances/\d+$"))
    instance_id = int(staff.url.rsplit("/", 1)[1])
    expect(staff.get_by_test_id("attachment-row")).to_contain_text("合同.txt")  # bound to the instance

    ke = pages.open()
    pages.sign_in(ke, "kezhang")
    open_task(ke, f"用印-{tag}")
    field = ke.get_by_test_id("files-papers")
    expect(field).to_contain_text("合同.txt")  # the application shows it as a download link, read-only
    assert ke.get_by_test_id("files-papers-upload").count() == 0
    href = field.locator("a").first.get_attribute("href")
    body = ke.evaluate("(href) => fetch(href).then((r) => r.text())", href)
    assert body.encode() == content
    pages.shot(ke, "task-file-field")
    detail = call(ke, "GET", f"/process-instances/{instance_id}/attachments")["body"]
    assert [a["filename"] for a in detail] == ["合同.txt"]


def test_the_inbox_initiator_and_date_filters_narrow_the_list_and_survive_a_reload(pages, tmp_path):
    tag = secrets.token_hex(3)
    key, _ = install_file_process(pages, tmp_path, tag)
    # 孙八 starts one (through the API, file staged first), staff1 another: both wait for 钱七
    fen = pages.open()
    pages.sign_in(fen, "fenguan")
    staged = fen.evaluate("""async () => {
        const csrf = decodeURIComponent(document.cookie.split('; ').find((c) => c.startsWith('djflow_csrf=')).split('=')[1]);
        const body = new FormData();
        body.append('file', new Blob(['x'], {type: 'text/plain'}), 'a.txt');
        return (await (await fetch('/api/attachments', {method: 'POST', headers: {'X-CSRF-Token': csrf}, body})).json()).id;
    }""")
    theirs = f"孙八的申请-{tag}"
    r = call(fen, "POST", "/process-instances", {"key": key, "title": theirs,
                                                  "data": {"subject": "用印", "papers": [staged]}})
    assert r["status"] == 201, r
    staff = pages.open()
    pages.sign_in(staff, "staff1")
    mine = f"赵六的申请-{tag}"
    start_request(pages, staff, mine, 100)

    ke = pages.open()
    pages.sign_in(ke, "kezhang")
    rows = ke.get_by_test_id("task-row")
    expect(rows.filter(has_text=theirs)).to_have_count(1)
    expect(rows.filter(has_text=mine)).to_have_count(1)
    picker = ke.get_by_test_id("filter-initiator").get_by_test_id("person-picker")
    (picker if picker.evaluate("e => e.tagName") == "INPUT" else picker.locator("input")).fill("孙八")
    ke.locator(".ant-select-item-option").filter(has_text="孙八").click()
    expect(rows.filter(has_text=mine)).to_have_count(0)
    expect(rows.filter(has_text=theirs)).to_have_count(1)
    assert "initiator=fenguan" in ke.url
    pages.shot(ke, "inbox-initiator-filter")
    ke.reload()
    expect(rows.filter(has_text=theirs)).to_have_count(1)
    expect(rows.filter(has_text=mine)).to_have_count(0)
    expect(ke.get_by_test_id("filter-initiator")).to_contain_text("孙八")

    # a date range before today empties the list; it is in the URL too
    ke.get_by_test_id("filter-initiator-clear").click()
    expect(rows.filter(has_text=mine)).to_have_count(1)
    dates = ke.get_by_test_id("filter-dates").locator("input")
    dates.nth(0).click()
    dates.nth(0).fill("2020-01-01")
    dates.nth(0).press("Enter")
    dates.nth(1).fill("2020-01-31")
    dates.nth(1).press("Enter")
    expect(rows).to_have_count(0)
    assert "from=2020-01-01" in ke.url and "to=2020-01-31" in ke.url
    ke.reload()
    expect(ke.get_by_test_id("filter-dates").locator("input").nth(0)).to_have_value("2020-01-01")
    expect(rows).to_have_count(0)
    pages.shot(ke, "inbox-date-filter")
    # today's range brings both back; the 已办 tab keeps the same filters
    today = ke.evaluate("new Date(Date.now() + 8 * 3600e3).toISOString().slice(0, 10)")
    ke.goto(f"/inbox?from={today}&to={today}&initiator=staff1")
    expect(rows.filter(has_text=mine)).to_have_count(1)
    expect(rows.filter(has_text=theirs)).to_have_count(0)
    got = call(ke, "GET", f"/tasks?initiator=fenguan&arrived_from={today}T00:00:00")
    assert [t["instance_title"] for t in got["body"]["items"]].count(theirs) == 1
    assert json.dumps(got["body"]).count(mine) == 0
