"""The designer's 版本对比 and import report, and the monitor's per-node counts (issue 8, items 5
and 7), through the built web app in Chromium."""
from __future__ import annotations

import re
import secrets

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

_CALL = """async ([method, path, body]) => {
  const csrf = decodeURIComponent((document.cookie.split('; ').find((c) => c.startsWith('djflow_csrf=')) ?? '=').split('=')[1]);
  const headers = { 'X-CSRF-Token': csrf, Accept: 'application/json' };
  let payload;
  if (body && body.__file__) {
    payload = new FormData();
    payload.append('file', new Blob([body.__file__], { type: 'application/xml' }), body.name);
  } else if (body !== null) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const r = await fetch('/api' + path, { method, headers, body: payload, credentials: 'same-origin' });
  return { status: r.status, body: await r.json().catch(() => null) };
}"""


def call(page, method: str, path: str, body=None, expect_status: int | tuple = (200, 201)) -> dict:
    """The REST API as the page's signed-in user (its session cookie and CSRF token)."""
    r = page.evaluate(_CALL, [method, path, body])
    wanted = expect_status if isinstance(expect_status, tuple) else (expect_status,)
    assert r["status"] in wanted, (method, path, r)
    return r["body"]


def _task(tid: str, name: str, rule: str, incoming: str, outgoing: str, form: str) -> str:
    return (f'<bpmn:userTask id="{tid}" name="{name}"><bpmn:extensionElements><spiffworkflow:properties>'
            f'<spiffworkflow:property name="formJsonSchemaFilename" value="{form}" />'
            f'<spiffworkflow:property name="assignee" value="{rule}" />'
            '</spiffworkflow:properties></bpmn:extensionElements>'
            f'<bpmn:incoming>{incoming}</bpmn:incoming><bpmn:outgoing>{outgoing}</bpmn:outgoing></bpmn:userTask>')


def process_xml(key: str, review_name: str, with_fenguan: bool) -> str:
    """start → 发起申请 → {review_name} (钱七) [→ 分管领导审批 (孙八)] → end, with its diagram."""
    nodes = [("submit_request", "发起申请", "initiator", "approval_request"),
             ("review", review_name, "user:kezhang", "approval_opinion")]
    if with_fenguan:
        nodes.append(("fenguan", "分管领导审批", "user:fenguan", "approval_opinion"))
    ids = ["start", *[n[0] for n in nodes], "end"]
    flows = [(f"f_{a}_{b}", a, b) for a, b in zip(ids, ids[1:])]
    xs = {nid: 160 + 170 * i for i, nid in enumerate(ids)}
    parts = [f'<bpmn:startEvent id="start" name="开始"><bpmn:outgoing>{flows[0][0]}</bpmn:outgoing></bpmn:startEvent>']
    for i, (nid, name, rule, form) in enumerate(nodes):
        parts.append(_task(nid, name, rule, flows[i][0], flows[i + 1][0], form))
    parts.append(f'<bpmn:endEvent id="end" name="结束"><bpmn:incoming>{flows[-1][0]}</bpmn:incoming></bpmn:endEvent>')
    parts += [f'<bpmn:sequenceFlow id="{f}" sourceRef="{a}" targetRef="{b}" />' for f, a, b in flows]
    shapes = []
    for nid in ids:
        w, h, y = (36, 36, 182) if nid in ("start", "end") else (100, 80, 160)
        shapes.append(f'<bpmndi:BPMNShape id="{nid}_di" bpmnElement="{nid}">'
                      f'<dc:Bounds x="{xs[nid]}" y="{y}" width="{w}" height="{h}" /></bpmndi:BPMNShape>')
    for f, a, b in flows:
        x1 = xs[a] + (36 if a == "start" else 100)
        shapes.append(f'<bpmndi:BPMNEdge id="{f}_di" bpmnElement="{f}"><di:waypoint x="{x1}" y="200" />'
                      f'<di:waypoint x="{xs[b]}" y="200" /></bpmndi:BPMNEdge>')
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
            'xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" '
            'xmlns:di="http://www.omg.org/spec/DD/20100524/DI" '
            'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="defs" '
            'targetNamespace="https://djflow.cn/bpmn">'
            f'<bpmn:process id="{key}" name="经费报销 {key}" isExecutable="true">{"".join(parts)}</bpmn:process>'
            f'<bpmndi:BPMNDiagram id="d"><bpmndi:BPMNPlane id="pl" bpmnElement="{key}">{"".join(shapes)}'
            '</bpmndi:BPMNPlane></bpmndi:BPMNDiagram></bpmn:definitions>')


def publish(page, key: str, xml: str) -> int:
    v = call(page, "POST", "/process-definitions", {"__file__": xml, "name": f"{key}.bpmn"})
    call(page, "POST", f"/process-definitions/{key}/publish", {"version": v["version"]})
    return v["version"]


def test_the_designer_compares_two_published_versions(pages):
    key = f"diff_{secrets.token_hex(3)}"
    page = pages.open()
    pages.sign_in(page, "designer")
    assert publish(page, key, process_xml(key, "科长审批", with_fenguan=False)) == 1
    # the second version renames 科长审批 and adds 分管领导审批 after it
    assert publish(page, key, process_xml(key, "科室负责人审批", with_fenguan=True)) == 2

    page.goto(f"/designer/processes/{key}")
    page.locator(".dj-modeler .djs-element.djs-shape").first.wait_for()
    page.get_by_test_id("process-compare").click()
    newer = page.get_by_test_id("compare-newer")
    older = page.get_by_test_id("compare-older")
    newer.and_(page.locator("[data-ready='1']")).wait_for()
    older.and_(page.locator("[data-ready='1']")).wait_for()

    def shape(viewer, element_id: str):
        return viewer.locator(f".djs-element[data-element-id='{element_id}']")

    expect(shape(newer, "fenguan")).to_have_class(re.compile(r"\bdj-diff-added\b"))
    assert shape(older, "fenguan").count() == 0  # only in the newer version
    expect(shape(newer, "review")).to_have_class(re.compile(r"\bdj-diff-changed\b"))
    expect(shape(older, "review")).to_have_class(re.compile(r"\bdj-diff-changed\b"))
    expect(shape(newer, "submit_request")).not_to_have_class(re.compile(r"dj-diff-"))
    # the flow into the end event was replaced: the old one is removed, drawn red on the left
    expect(shape(older, "f_review_end")).to_have_class(re.compile(r"\bdj-diff-removed\b"))

    changes = page.get_by_test_id("compare-change")
    added = changes.filter(has_text="新增用户任务「分管领导审批」")
    expect(added).to_have_count(1)
    assert added.get_attribute("data-kind") == "added"
    renamed = changes.filter(has_text="「科室负责人审批」名称：科长审批 → 科室负责人审批")
    expect(renamed).to_have_count(1)
    assert renamed.get_attribute("data-element") == "review"
    expect(changes.filter(has_text="「科室负责人审批」下一步：结束 → 分管领导审批")).to_have_count(1)
    pages.shot(page, "version-compare")

    # an entry selects its element in the diagram
    added.click()
    expect(shape(newer, "fenguan")).to_have_class(re.compile(r"\bselected\b"))
    pages.shot(page, "version-compare-focus")

    # comparing a version with itself finds nothing
    page.get_by_test_id("compare-older-version").click()
    page.locator(".ant-select-dropdown:visible .ant-select-item-option").filter(has_text="v2").click()
    page.get_by_test_id("compare-none").filter(has_text="两个版本的流转没有差别").wait_for()


CAMUNDA_FILE = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI"
  xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" xmlns:di="http://www.omg.org/spec/DD/20100524/DI"
  xmlns:camunda="http://camunda.org/schema/1.0/bpmn" xmlns:modeler="http://camunda.org/schema/modeler/1.0"
  id="Definitions_1" targetNamespace="http://bpmn.io/schema/bpmn" exporter="Camunda Modeler" exporterVersion="5.28.0"
  modeler:executionPlatform="Camunda Platform" modeler:executionPlatformVersion="7.21.0">
  <bpmn:process id="camunda_leave" name="请假（Camunda）" isExecutable="true" camunda:historyTimeToLive="180">
    <bpmn:startEvent id="start" name="提出申请"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="head" name="科长审批" camunda:assignee="kezhang" camunda:formKey="embedded:app:forms/leave.html">
      <bpmn:extensionElements>
        <camunda:taskListener class="cn.gov.leave.Notify" event="create" />
      </bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:exclusiveGateway id="gw" name="天数"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>long</bpmn:outgoing><bpmn:outgoing>short</bpmn:outgoing></bpmn:exclusiveGateway>
    <bpmn:userTask id="hr" name="人事审核" camunda:candidateGroups="hr" camunda:asyncBefore="true">
      <bpmn:incoming>long</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="end" name="结束"><bpmn:incoming>short</bpmn:incoming><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="head" />
    <bpmn:sequenceFlow id="f2" sourceRef="head" targetRef="gw" />
    <bpmn:sequenceFlow id="long" name="超过3天" sourceRef="gw" targetRef="hr"><bpmn:conditionExpression xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="bpmn:tFormalExpression">${days &gt; 3}</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="short" name="3天以内" sourceRef="gw" targetRef="end"><bpmn:conditionExpression xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="bpmn:tFormalExpression">${days &lt;= 3}</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f3" sourceRef="hr" targetRef="end" />
  </bpmn:process>
  <bpmndi:BPMNDiagram id="BPMNDiagram_1">
    <bpmndi:BPMNPlane id="BPMNPlane_1" bpmnElement="camunda_leave">
      <bpmndi:BPMNShape id="start_di" bpmnElement="start"><dc:Bounds x="152" y="182" width="36" height="36" /></bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="head_di" bpmnElement="head"><dc:Bounds x="240" y="160" width="100" height="80" /></bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="gw_di" bpmnElement="gw" isMarkerVisible="true"><dc:Bounds x="395" y="175" width="50" height="50" /></bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="hr_di" bpmnElement="hr"><dc:Bounds x="500" y="60" width="100" height="80" /></bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="end_di" bpmnElement="end"><dc:Bounds x="662" y="182" width="36" height="36" /></bpmndi:BPMNShape>
      <bpmndi:BPMNEdge id="f1_di" bpmnElement="f1"><di:waypoint x="188" y="200" /><di:waypoint x="240" y="200" /></bpmndi:BPMNEdge>
      <bpmndi:BPMNEdge id="f2_di" bpmnElement="f2"><di:waypoint x="340" y="200" /><di:waypoint x="395" y="200" /></bpmndi:BPMNEdge>
      <bpmndi:BPMNEdge id="long_di" bpmnElement="long"><di:waypoint x="420" y="175" /><di:waypoint x="420" y="100" /><di:waypoint x="500" y="100" /></bpmndi:BPMNEdge>
      <bpmndi:BPMNEdge id="short_di" bpmnElement="short"><di:waypoint x="445" y="200" /><di:waypoint x="662" y="200" /></bpmndi:BPMNEdge>
      <bpmndi:BPMNEdge id="f3_di" bpmnElement="f3"><di:waypoint x="600" y="100" /><di:waypoint x="680" y="100" /><di:waypoint x="680" y="182" /></bpmndi:BPMNEdge>
    </bpmndi:BPMNPlane>
  </bpmndi:BPMNDiagram>
</bpmn:definitions>
"""


def test_a_camunda_modeler_file_imports_with_what_djflow_ignores_listed(pages, tmp_path):
    path = tmp_path / "camunda_leave.bpmn"
    path.write_text(CAMUNDA_FILE, encoding="utf-8")
    page = pages.open()
    pages.sign_in(page, "designer")
    page.goto("/designer/processes/new")
    page.get_by_test_id("new-process-key").wait_for()
    page.keyboard.press("Escape")
    page.get_by_test_id("process-import").set_input_files(str(path))
    page.locator(".dj-modeler .djs-element[data-element-id='hr']").wait_for()

    report = page.get_by_test_id("process-ignored")
    expect(report).to_contain_text("导入报告：7 项 djflow 不使用，3 项已转换")
    rows = page.get_by_test_id("import-row")

    def row(*texts: str):
        r = rows
        for t in texts:
            r = r.filter(has_text=t)
        expect(r).to_have_count(1)
        return r

    row("人事审核", 'camunda:candidateGroups="hr"', "忽略", "候选人/候选组 djflow 不使用")
    row("人事审核", "camunda:asyncBefore", "忽略", "作业执行设置 djflow 不使用")
    row("科长审批", "camunda:formKey", "忽略", "外部表单 djflow 不使用")
    row("科长审批", "<camunda:taskListener>", "忽略", "监听器 djflow 不执行")
    row("camunda_leave", "camunda:historyTimeToLive", "忽略")
    row("整个文件", "modeler:executionPlatform=", "忽略")
    row("科长审批", 'camunda:assignee="kezhang"', "转换", "已转换为审批人规则 user:kezhang")
    row("超过3天", "${days > 3}", "转换", "由 JUEL 表达式改写为 Python：days > 3")
    assert rows.filter(has_text="保留").count() == 0  # the kept ones are listed on request
    page.get_by_test_id("import-show-kept").click()
    row("整个文件", "名称", "保留", "保留：8 个元素的名称")
    pages.shot(page, "import-report")

    # the conversion is in the file the modeler saves, and the properties panel shows it
    page.locator(".dj-modeler .djs-element[data-element-id='head']").click()
    expect(page.get_by_test_id("properties")).to_contain_text("指定人员")
    with page.expect_download() as download:
        page.get_by_role("button", name="导出 .bpmn").click()
    saved = download.value.path().read_text(encoding="utf-8")
    assert 'value="user:kezhang"' in saved and ">days &gt; 3</bpmn:conditionExpression>" in saved
    assert 'camunda:candidateGroups="hr"' in saved  # ignored, and (as the list says) kept in the file


def test_the_monitor_counts_a_node_run_twice_after_a_return(pages):
    key = f"cnt_{secrets.token_hex(3)}"
    designer = pages.open()
    pages.sign_in(designer, "designer")
    publish(designer, key, process_xml(key, "科长审批", with_fenguan=True))

    staff = pages.open()
    pages.sign_in(staff, "staff1")
    title = f"报销-{key}"
    started = call(staff, "POST", "/process-instances", {"key": key, "data": {
        "title": title, "category": "会议", "amount": 600, "reason": "支部会议茶歇"}})
    iid = started["instance_id"]

    kezhang = pages.open()
    pages.sign_in(kezhang, "kezhang")
    mine = [t for t in call(kezhang, "GET", "/tasks?scope=mine&status=open")["items"] if t["instance_id"] == iid]
    assert [t["node_id"] for t in mine] == ["review"]
    call(kezhang, "POST", f"/tasks/{mine[0]['id']}/actions/return", {"target": "submit_request", "comment": "请补充发票"})

    again = [t for t in call(staff, "GET", "/tasks?scope=mine&status=open")["items"] if t["instance_id"] == iid]
    assert [t["node_id"] for t in again] == ["submit_request"]
    call(staff, "POST", f"/tasks/{again[0]['id']}/actions/submit", {"data": {
        "title": title, "category": "会议", "amount": 580, "reason": "支部会议茶歇（附发票）"}})

    monitor = pages.open()
    pages.sign_in(monitor, "shuji")  # org_admin of 第一党支部, staff1's branch
    monitor.goto(f"/monitor/{iid}")
    monitor.locator("[data-testid=diagram][data-ready='1']").wait_for()
    badge = monitor.locator("[data-testid=node-count][data-node='submit_request']")
    expect(badge).to_have_text("×2")
    assert "运行 2 次" in badge.get_attribute("title")
    expect(monitor.locator("[data-testid=node-count][data-node='review']")).to_have_text("×2")
    assert monitor.locator("[data-testid=node-count][data-node='fenguan']").count() == 0  # not reached
    expect(monitor.locator(".djs-element[data-element-id='review']")).to_have_class(re.compile(r"\bdj-node-active\b"))
    legend = monitor.get_by_test_id("diagram-legend")
    for label in ("已完成", "进行中", "出错", "未到达"):
        expect(legend).to_contain_text(label)
    pages.shot(monitor, "monitor-node-counts")
