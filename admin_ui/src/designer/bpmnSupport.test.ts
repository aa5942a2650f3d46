import { describe, expect, it } from "vitest";
import { BpmnModdle } from "bpmn-moddle";
import { SPIFF_MODDLE, importNote, importReport, pythonCondition, type ImportItem } from "./bpmnSupport";

// Every shipped process, as the modeler reads and writes it: nothing djflow needs may be dropped
// (an unknown element is left out of what the modeler saves).
const FILES = import.meta.glob("../../../process_definitions/*/*.bpmn", { query: "?raw", import: "default", eager: true }) as Record<string, string>;
const BY_KEY = Object.fromEntries(Object.entries(FILES)
  .map(([path, xml]) => [path.split("/").slice(-2), xml] as const)
  .filter(([[folder, file]]) => file === `${folder}.bpmn`)
  .map(([[folder], xml]) => [folder, xml]));
const shipped = Object.keys(BY_KEY).sort();
const TAGS = ["serviceTaskOperator", "parameter", "property", "preScript", "postScript", "retry"];

function count(xml: string, tag: string): number {
  return (xml.match(new RegExp(`<spiffworkflow:${tag}[\\s>/]`, "g")) ?? []).length;
}

type Node = { $type?: string; [k: string]: unknown };

/** Every djflow extension value in a parsed definitions tree (parameters, properties, scripts). */
function values(root: Node): string[] {
  const out: string[] = [];
  const seen = new Set<unknown>();
  const walk = (n: unknown) => {
    if (!n || typeof n !== "object" || seen.has(n)) return;
    seen.add(n);
    const node = n as Node;
    if (node.$type?.startsWith("spiffworkflow:")) {
      for (const k of ["id", "name", "value", "resultVariable", "retries", "backoff_base"]) {
        if (typeof node[k] === "string") out.push(`${node.$type}.${k}=${node[k]}`);
      }
    }
    for (const [k, v] of Object.entries(node)) {
      if (k.startsWith("$") && k !== "$children") continue;
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === "object" && !("$parent" === k)) walk(v);
    }
  };
  walk(root);
  return out.sort();
}

describe("the shipped processes round-trip through the modeler's moddle", () => {
  it("ships the whole library", () => {
    expect(shipped.length).toBeGreaterThanOrEqual(11);
  });
  for (const key of shipped) {
    it(`${key} keeps every djflow extension`, async () => {
      const xml = BY_KEY[key];
      const moddle = BpmnModdle({ spiffworkflow: SPIFF_MODDLE });
      const { rootElement, warnings } = await moddle.fromXML(xml);
      expect(warnings.map((w: { message: string }) => w.message)).toEqual([]);
      const { xml: saved } = await moddle.toXML(rootElement, { format: true });
      for (const tag of TAGS) expect([tag, count(saved, tag)]).toEqual([tag, count(xml, tag)]);
      const again = await BpmnModdle({ spiffworkflow: SPIFF_MODDLE }).fromXML(saved);
      const before = values(rootElement as unknown as Node);
      expect(before.length).toBeGreaterThan(key === "approval_chain" ? 10 : 50);
      expect(values(again.rootElement as unknown as Node)).toEqual(before);
    });
  }
});

// -- what an imported file loses ------------------------------------------------------------------

// Small files as Camunda Modeler 5 (Camunda 7 and Camunda 8 / Zeebe) and SpiffArena write them.
const CAMUNDA7 = `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
  xmlns:modeler="http://camunda.org/schema/modeler/1.0" id="Definitions_1" targetNamespace="http://bpmn.io/schema/bpmn"
  exporter="Camunda Modeler" exporterVersion="5.28.0" modeler:executionPlatform="Camunda Platform" modeler:executionPlatformVersion="7.21.0">
  <bpmn:process id="purchase" name="采购申请" isExecutable="true" camunda:historyTimeToLive="180">
    <bpmn:startEvent id="start" name="提出申请" camunda:initiator="applicant" />
    <bpmn:userTask id="dept_head" name="科长审批" camunda:assignee="kezhang" camunda:formKey="embedded:app:forms/approve.html">
      <bpmn:documentation>科室负责人审核采购必要性</bpmn:documentation>
    </bpmn:userTask>
    <bpmn:userTask id="finance" name="财务审核" camunda:assignee="\${financeManager}" camunda:candidateGroups="finance" camunda:asyncBefore="true">
      <bpmn:extensionElements>
        <camunda:inputOutput><camunda:inputParameter name="limit">5000</camunda:inputParameter></camunda:inputOutput>
        <camunda:taskListener class="cn.gov.Notify" event="create" />
      </bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:exclusiveGateway id="gw" name="金额？" />
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="dept_head" />
    <bpmn:sequenceFlow id="f2" sourceRef="dept_head" targetRef="finance" />
    <bpmn:sequenceFlow id="f3" sourceRef="finance" targetRef="gw" />
    <bpmn:sequenceFlow id="big" name="大额" sourceRef="gw" targetRef="notify"><bpmn:conditionExpression xsi:type="bpmn:tFormalExpression" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\${amount &gt; 5000 &amp;&amp; !urgent}</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="small" name="小额" sourceRef="gw" targetRef="end"><bpmn:conditionExpression xsi:type="bpmn:tFormalExpression" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\${execution.getVariable("amount") &lt;= 5000}</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:serviceTask id="notify" name="通知资产科" camunda:class="cn.gov.asset.NotifyDelegate">
      <bpmn:extensionElements><camunda:executionListener event="start" expression="\${logger.info('x')}" /></bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:complexGateway id="merge" name="汇总" />
    <bpmn:boundaryEvent id="late" name="超时" attachedToRef="finance"><bpmn:timerEventDefinition><bpmn:timeDuration xsi:type="bpmn:tFormalExpression" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">PT48H</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>
    <bpmn:endEvent id="end" name="结束" />
  </bpmn:process>
</bpmn:definitions>`;

const ZEEBE = `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0"
  xmlns:modeler="http://camunda.org/schema/modeler/1.0" id="Definitions_2" targetNamespace="http://bpmn.io/schema/bpmn"
  exporter="Camunda Modeler" exporterVersion="5.28.0" modeler:executionPlatform="Camunda Cloud" modeler:executionPlatformVersion="8.6.0">
  <bpmn:process id="leave" name="请假" isExecutable="true">
    <bpmn:startEvent id="start" />
    <bpmn:userTask id="approve" name="分管领导审批">
      <bpmn:extensionElements>
        <zeebe:userTask />
        <zeebe:assignmentDefinition assignee="fenguan" />
        <zeebe:formDefinition formId="leave-form" />
        <zeebe:ioMapping><zeebe:input source="=days" target="leaveDays" /></zeebe:ioMapping>
      </bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:userTask id="hr" name="人事备案">
      <bpmn:extensionElements><zeebe:assignmentDefinition assignee="=hrOfficer" candidateGroups="hr" /></bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:serviceTask id="sync" name="同步考勤">
      <bpmn:extensionElements><zeebe:taskDefinition type="attendance-sync" retries="3" /></bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:exclusiveGateway id="gw" />
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="approve" />
    <bpmn:sequenceFlow id="f2" sourceRef="approve" targetRef="gw" />
    <bpmn:sequenceFlow id="long" name="超过3天" sourceRef="gw" targetRef="hr"><bpmn:conditionExpression xsi:type="bpmn:tFormalExpression" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">= days &gt; 3 and kind = "annual"</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="short" sourceRef="gw" targetRef="sync"><bpmn:conditionExpression xsi:type="bpmn:tFormalExpression" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">= list contains(kinds, "sick")</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:intermediateCatchEvent id="wait_doc" name="等待病假证明"><bpmn:messageEventDefinition messageRef="msg_doc" /></bpmn:intermediateCatchEvent>
    <bpmn:intermediateThrowEvent id="undo" name="撤销考勤"><bpmn:compensateEventDefinition /></bpmn:intermediateThrowEvent>
    <bpmn:endEvent id="end" />
  </bpmn:process>
  <bpmn:message id="msg_doc" name="sick_note">
    <bpmn:extensionElements><zeebe:subscription correlationKey="=applicationId" /></bpmn:extensionElements>
  </bpmn:message>
</bpmn:definitions>`;

const SPIFF = `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
  id="Definitions_3" targetNamespace="http://bpmn.io/schema/bpmn" exporter="Camunda Modeler" exporterVersion="4.11.1">
  <bpmn:process id="meeting" name="支部会议" isExecutable="true">
    <bpmn:startEvent id="start" />
    <bpmn:userTask id="submit" name="提交议题">
      <bpmn:extensionElements>
        <spiffworkflow:properties>
          <spiffworkflow:property name="formJsonSchemaFilename" value="topic-schema.json" />
          <spiffworkflow:property name="formUiSchemaFilename" value="topic-uischema.json" />
        </spiffworkflow:properties>
        <spiffworkflow:instructionsForEndUser>请填写议题，{{ deadline }} 前提交</spiffworkflow:instructionsForEndUser>
        <spiffworkflow:preScript>deadline = "周五"</spiffworkflow:preScript>
        <spiffworkflow:postScript>topic_count = 1</spiffworkflow:postScript>
        <spiffworkflow:allowGuest>true</spiffworkflow:allowGuest>
      </bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:scriptTask id="count" name="统计" scriptFormat="python"><bpmn:script>total = topic_count + 1</bpmn:script></bpmn:scriptTask>
    <bpmn:serviceTask id="notify" name="通知党员">
      <bpmn:extensionElements>
        <spiffworkflow:serviceTaskOperator id="notify/members" resultVariable="sent">
          <spiffworkflow:parameters><spiffworkflow:parameter id="text" type="str" value="'开会'" /></spiffworkflow:parameters>
        </spiffworkflow:serviceTaskOperator>
      </bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:exclusiveGateway id="gw" default="done" />
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="submit" />
    <bpmn:sequenceFlow id="f2" sourceRef="submit" targetRef="count" />
    <bpmn:sequenceFlow id="f3" sourceRef="count" targetRef="gw" />
    <bpmn:sequenceFlow id="more" sourceRef="gw" targetRef="notify"><bpmn:conditionExpression>total &gt; 1</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="done" sourceRef="gw" targetRef="end" />
    <bpmn:endEvent id="end" />
  </bpmn:process>
</bpmn:definitions>`;

async function open(xml: string) {
  const moddle = BpmnModdle({ spiffworkflow: SPIFF_MODDLE });
  const { rootElement, warnings } = await moddle.fromXML(xml);
  const items = importReport(rootElement, warnings, xml, (t: string, a?: Record<string, unknown>) => moddle.create(t, a));
  const { xml: saved } = await moddle.toXML(rootElement, { format: true });
  return { items, saved: saved as string };
}

const find = (items: ImportItem[], element: string, content: string) =>
  items.filter((i) => i.element === element && i.content.includes(content));
const one = (items: ImportItem[], element: string, content: string) => {
  const got = find(items, element, content);
  expect(got, `${element} ${content}: ${JSON.stringify(items.filter((i) => i.element === element))}`).toHaveLength(1);
  return got[0];
};

describe("a Camunda 7 file", () => {
  it("lists each Camunda extension djflow does not use, with the element and why", async () => {
    const { items } = await open(CAMUNDA7);
    expect(one(items, "finance", 'camunda:assignee="${financeManager}"')).toMatchObject({
      elementName: "财务审核", handling: "ignore", note: "审批人表达式 djflow 不执行；请在属性面板设置审批人规则", saved: true });
    expect(one(items, "finance", 'camunda:candidateGroups="finance"').note).toContain("候选人/候选组");
    expect(one(items, "finance", "camunda:asyncBefore").note).toBe("作业执行设置 djflow 不使用");
    expect(one(items, "finance", "<camunda:inputOutput>").content).toContain("<camunda:inputParameter limit>");
    expect(one(items, "finance", "<camunda:taskListener>").note).toBe("监听器 djflow 不执行");
    expect(one(items, "dept_head", "camunda:formKey").note).toContain("外部表单");
    expect(one(items, "notify", "camunda:class").note).toContain("serviceTaskOperator");
    expect(one(items, "notify", "<camunda:executionListener>").handling).toBe("ignore");
    expect(one(items, "purchase", "camunda:historyTimeToLive").note).toBe("Camunda 的流程设置 djflow 不使用");
    expect(one(items, "start", "camunda:initiator").note).toContain("发起人");
    expect(one(items, "", "modeler:executionPlatform=").handling).toBe("ignore");
    expect(one(items, "merge", "<bpmn:complexGateway>")).toMatchObject({ handling: "ignore", elementName: "汇总" });
  });

  it("converts a literal assignee and a simple JUEL condition, and keeps timers and documentation", async () => {
    const { items, saved } = await open(CAMUNDA7);
    const converted = one(items, "dept_head", 'camunda:assignee="kezhang"');
    expect([converted.handling, importNote(converted)]).toEqual(["convert", "已转换为审批人规则 user:kezhang"]);
    expect(saved).toMatch(/<spiffworkflow:property name="assignee" value="user:kezhang" \/>/);
    expect(one(items, "big", "${amount > 5000 && !urgent}")).toMatchObject({ handling: "convert" });
    expect(saved).toContain(">amount &gt; 5000 and not urgent</bpmn:conditionExpression>");
    // a method call is not a plain comparison: kept as written, with a warning that lint will refuse it
    expect(one(items, "small", "execution.getVariable").note).toContain("不是 Python");
    expect(one(items, "late", "timeDuration: PT48H").handling).toBe("keep");
    expect(one(items, "dept_head", "科室负责人审核采购必要性").handling).toBe("keep");
    expect([items[0].handling, importNote(items[0])]).toEqual(["keep", "保留：11 个元素的名称"]);
    // what is ignored stays in the file, as the list says
    expect(saved).toContain('camunda:candidateGroups="finance"');
    expect(saved).toContain("<camunda:taskListener");
    expect(items.every((i) => i.saved)).toBe(true);
  });
});

describe("a Camunda 8 (Zeebe) file", () => {
  it("lists the zeebe extensions, converts what maps, and flags compensation", async () => {
    const { items, saved } = await open(ZEEBE);
    expect(one(items, "approve", 'zeebe:assignmentDefinition assignee="fenguan"').handling).toBe("convert");
    expect(saved).toContain('value="user:fenguan"');
    expect(one(items, "approve", "<zeebe:formDefinition>").note).toContain("外部表单");
    expect(one(items, "approve", "<zeebe:ioMapping>").content).toContain("<zeebe:input>");
    expect(one(items, "approve", "<zeebe:userTask>").note).toBe("Camunda 8（Zeebe）扩展，djflow 不使用");
    const hr = one(items, "hr", "<zeebe:assignmentDefinition>");
    expect(hr).toMatchObject({ handling: "ignore" });
    expect(hr.content).toContain('assignee="=hrOfficer"');
    expect(one(items, "sync", "<zeebe:taskDefinition>").note).toContain("Zeebe 作业类型");
    const feel = one(items, "long", "= days > 3");
    expect([feel.handling, importNote(feel)]).toEqual(["convert", '由 FEEL 表达式改写为 Python：days > 3 and kind == "annual"']);
    expect(importNote(feel, (k, v) => (k === "由 FEEL 表达式改写为 Python：{expr}" ? `FEEL → Python: ${v!.expr}` : k)))
      .toBe('FEEL → Python: days > 3 and kind == "annual"');
    expect(saved).toContain('>days &gt; 3 and kind == "annual"</bpmn:conditionExpression>');
    expect(one(items, "short", "list contains").handling).toBe("keep");
    expect(one(items, "undo", "<bpmn:compensateEventDefinition>").handling).toBe("ignore");
    expect(one(items, "wait_doc", "<bpmn:messageEventDefinition sick_note>").note).toContain("不接收外部");
    expect(one(items, "msg_doc", "<zeebe:subscription>").handling).toBe("ignore");
    expect(one(items, "", 'modeler:executionPlatform="Camunda Cloud"').note).toContain("平台标记");
  });
});

describe("a SpiffArena file", () => {
  it("keeps what djflow runs, keeps the instructions it does not show, and drops what no one can read", async () => {
    const { items, saved } = await open(SPIFF);
    expect(one(items, "submit", "spiffworkflow:properties").content).toContain("formJsonSchemaFilename、formUiSchemaFilename");
    expect(one(items, "submit", "spiffworkflow:preScript").handling).toBe("keep");
    expect(one(items, "submit", "spiffworkflow:postScript").handling).toBe("keep");
    expect(one(items, "submit", "instructionsForEndUser")).toMatchObject({ handling: "ignore", note: "给办理人的说明 djflow 不显示", saved: true });
    expect(saved).toContain("请填写议题，{{ deadline }} 前提交");
    const guest = one(items, "submit", "allowGuest");
    expect(guest).toMatchObject({ handling: "ignore", saved: false, note: "无法识别，保存时不会保留", elementName: "提交议题" });
    expect(saved).not.toContain("allowGuest");
    expect(one(items, "notify", "spiffworkflow:serviceTaskOperator notify/members").handling).toBe("keep");
    expect(one(items, "count", "script (python)").note).toBe("保留：脚本");
    expect(one(items, "more", "total > 1")).toMatchObject({ handling: "keep", note: "保留：条件" });
    expect(items.filter((i) => i.handling !== "keep")).toHaveLength(2);
  });
});

describe("djflow's own files", () => {
  for (const key of shipped) {
    const xml = BY_KEY[key];
    it(`${key} has nothing ignored or converted`, async () => {
      const { items } = await open(xml);
      expect(items.filter((i) => i.handling !== "keep")).toEqual([]);
    });
  }
});

describe("condition conversion", () => {
  it("rewrites only plain comparisons", () => {
    expect(pythonCondition("${a eq 'x' || b ge 2}")).toEqual({ python: "a == 'x' or b >= 2", from: "JUEL" });
    expect(pythonCondition("= approved = true")).toEqual({ python: "approved == True", from: "FEEL" });
    expect(pythonCondition("= a != 1")).toEqual({ python: "a != 1", from: "FEEL" });
    expect(pythonCondition("amount > 1")).toBeNull();
    expect(pythonCondition("${obj.method()}")).toBeNull();
    expect(pythonCondition("${(a > 1) && b}")).toEqual({ python: "(a > 1) and b", from: "JUEL" });
  });
});
