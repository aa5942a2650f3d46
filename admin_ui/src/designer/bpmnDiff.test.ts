import { describe, expect, it } from "vitest";
import { describeChange, diffBpmn } from "./bpmnDiff";

// A small 请假 process: 发起申请 → 科长审批 → 金额网关 → (大额) 局长审批 / (其余) 结束.
interface Opts {
  kezhangName?: string;
  kezhangRule?: string;
  condition?: string;
  kezhangX?: number;
  extraNode?: boolean;
  dropJuzhang?: boolean;
}

function xml(o: Opts = {}): string {
  const { kezhangName = "科长审批", kezhangRule = "position:head@initiator.department", condition = "amount > 5000",
          kezhangX = 250, extraNode = false, dropJuzhang = false } = o;
  const toEnd = extraNode ? "f_gw_fen" : "f_gw_end";
  return `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI"
  xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" xmlns:di="http://www.omg.org/spec/DD/20100524/DI"
  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="leave_defs" targetNamespace="https://djflow.cn/bpmn">
  <bpmn:process id="leave" name="请假" isExecutable="true">
    <bpmn:startEvent id="start" name="开始"><bpmn:outgoing>f_start</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="submit_request" name="发起申请">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="formJsonSchemaFilename" value="leave" />
        <spiffworkflow:property name="assignee" value="initiator" />
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>f_start</bpmn:incoming><bpmn:outgoing>f_submit</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:userTask id="kezhang" name="${kezhangName}">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="formJsonSchemaFilename" value="approval_opinion" />
        <spiffworkflow:property name="assignee" value="${kezhangRule}" />
        <spiffworkflow:property name="dueIn" value="P3WD" />
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>f_submit</bpmn:incoming><bpmn:outgoing>f_kz</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:exclusiveGateway id="gw" name="金额" default="${toEnd}">
      <bpmn:incoming>f_kz</bpmn:incoming>${dropJuzhang ? "" : "<bpmn:outgoing>f_big</bpmn:outgoing>"}<bpmn:outgoing>${toEnd}</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    ${dropJuzhang ? "" : `<bpmn:userTask id="juzhang" name="局长审批">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="formJsonSchemaFilename" value="approval_opinion" />
        <spiffworkflow:property name="assignee" value="position:head@initiator.unit" />
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>f_big</bpmn:incoming><bpmn:outgoing>f_ju</bpmn:outgoing>
    </bpmn:userTask>`}
    ${extraNode ? `<bpmn:userTask id="fenguan" name="分管领导审批">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="assignee" value="in_charge_of:initiator.department" />
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>f_gw_fen</bpmn:incoming><bpmn:outgoing>f_fen_end</bpmn:outgoing>
    </bpmn:userTask>` : ""}
    <bpmn:endEvent id="end" name="结束">
      ${dropJuzhang ? "" : "<bpmn:incoming>f_ju</bpmn:incoming>"}<bpmn:incoming>${extraNode ? "f_fen_end" : "f_gw_end"}</bpmn:incoming>
    </bpmn:endEvent>
    <bpmn:sequenceFlow id="f_start" sourceRef="start" targetRef="submit_request" />
    <bpmn:sequenceFlow id="f_submit" sourceRef="submit_request" targetRef="kezhang" />
    <bpmn:sequenceFlow id="f_kz" sourceRef="kezhang" targetRef="gw" />
    ${dropJuzhang ? "" : `<bpmn:sequenceFlow id="f_big" name="大额" sourceRef="gw" targetRef="juzhang">
      <bpmn:conditionExpression>${condition}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_ju" sourceRef="juzhang" targetRef="end" />`}
    ${extraNode ? `<bpmn:sequenceFlow id="f_gw_fen" sourceRef="gw" targetRef="fenguan" />
    <bpmn:sequenceFlow id="f_fen_end" sourceRef="fenguan" targetRef="end" />`
    : `<bpmn:sequenceFlow id="f_gw_end" sourceRef="gw" targetRef="end" />`}
  </bpmn:process>
  <bpmndi:BPMNDiagram id="leave_diagram">
    <bpmndi:BPMNPlane id="leave_plane" bpmnElement="leave">
      <bpmndi:BPMNShape id="start_di" bpmnElement="start"><dc:Bounds x="100" y="100" width="36" height="36" /></bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="submit_di" bpmnElement="submit_request"><dc:Bounds x="170" y="80" width="100" height="80" /></bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="kezhang_di" bpmnElement="kezhang"><dc:Bounds x="${kezhangX + 70}" y="80" width="100" height="80" /></bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="gw_di" bpmnElement="gw"><dc:Bounds x="480" y="95" width="50" height="50" /></bpmndi:BPMNShape>
      ${dropJuzhang ? "" : `<bpmndi:BPMNShape id="juzhang_di" bpmnElement="juzhang"><dc:Bounds x="580" y="80" width="100" height="80" /></bpmndi:BPMNShape>`}
      ${extraNode ? `<bpmndi:BPMNShape id="fenguan_di" bpmnElement="fenguan"><dc:Bounds x="580" y="200" width="100" height="80" /></bpmndi:BPMNShape>` : ""}
      <bpmndi:BPMNShape id="end_di" bpmnElement="end"><dc:Bounds x="740" y="102" width="36" height="36" /></bpmndi:BPMNShape>
      <bpmndi:BPMNEdge id="f_submit_di" bpmnElement="f_submit"><di:waypoint x="270" y="120" /><di:waypoint x="${kezhangX + 70}" y="120" /></bpmndi:BPMNEdge>
      <bpmndi:BPMNEdge id="f_kz_di" bpmnElement="f_kz"><di:waypoint x="${kezhangX + 170}" y="120" /><di:waypoint x="480" y="120" /></bpmndi:BPMNEdge>
    </bpmndi:BPMNPlane>
  </bpmndi:BPMNDiagram>
</bpmn:definitions>
`;
}

const kinds = (d: Awaited<ReturnType<typeof diffBpmn>>) =>
  Object.fromEntries(d.changes.map((c) => [c.id, c.kind]));

describe("版本对比", () => {
  it("finds no change between identical versions", async () => {
    const d = await diffBpmn(xml(), xml());
    expect(d.changes).toEqual([]);
    expect(d.moved).toEqual([]);
  });

  it("marks an added node and its flows added, and the nodes around it changed", async () => {
    const d = await diffBpmn(xml(), xml({ extraNode: true }));
    const k = kinds(d);
    expect(k.fenguan).toBe("added");
    expect(k.f_gw_fen).toBe("added");
    expect(k.f_fen_end).toBe("added");
    expect(k.f_gw_end).toBe("removed");
    // the gateway now leads to the new node, by its default flow; the end is entered from it
    const gw = d.changes.find((c) => c.id === "gw")!;
    expect(gw.kind).toBe("changed");
    expect(describeChange(gw)).toContain("「金额」下一步：结束、局长审批 → 分管领导审批、局长审批");
    expect(describeChange(d.changes.find((c) => c.id === "fenguan")!)).toEqual(["新增用户任务「分管领导审批」"]);
    expect(describeChange(gw)).toContain("「金额」默认流：f_gw_end → f_gw_fen");
    expect(k.kezhang).toBeUndefined(); // untouched
  });

  it("marks a removed node removed with the name it had", async () => {
    const d = await diffBpmn(xml(), xml({ dropJuzhang: true }));
    const removed = d.changes.filter((c) => c.kind === "removed").map((c) => c.id).sort();
    expect(removed).toEqual(["f_big", "f_ju", "juzhang"]);
    expect(describeChange(d.changes.find((c) => c.id === "juzhang")!)).toEqual(["删除用户任务「局长审批」"]);
    expect(d.moved).toEqual([]);
  });

  it("reports a rename as a change of that node only", async () => {
    const d = await diffBpmn(xml(), xml({ kezhangName: "科室负责人审批" }));
    expect(d.changes.map((c) => [c.id, c.kind])).toEqual([["kezhang", "changed"]]);
    expect(describeChange(d.changes[0])).toEqual(["「科室负责人审批」名称：科长审批 → 科室负责人审批"]);
  });

  it("does not count moving a node as a semantic change, but lists it as moved", async () => {
    const d = await diffBpmn(xml(), xml({ kezhangX: 300 }));
    expect(d.changes).toEqual([]);
    expect(d.moved.sort()).toEqual(["f_kz", "f_submit", "kezhang"]);
    expect(d.names.kezhang).toBe("科长审批");
  });

  it("reports a changed assignment rule in words", async () => {
    const d = await diffBpmn(xml(), xml({ kezhangRule: "user:kezhang" }));
    expect(d.changes).toHaveLength(1);
    expect(d.changes[0].details).toEqual([
      { field: "审批人规则", before: "position:head@initiator.department", after: "user:kezhang" }]);
    expect(describeChange(d.changes[0])).toEqual(["「科长审批」审批人规则：position:head@initiator.department → user:kezhang"]);
  });

  it("reports a changed gateway condition on the flow", async () => {
    const d = await diffBpmn(xml(), xml({ condition: "amount >= 10000" }));
    expect(d.changes.map((c) => c.id)).toEqual(["f_big"]);
    expect(describeChange(d.changes[0])).toEqual(["「大额」条件：amount > 5000 → amount >= 10000"]);
  });

  it("translates the words it is given a translator for", async () => {
    const d = await diffBpmn(xml(), xml({ kezhangRule: "user:kezhang" }));
    const en: Record<string, string> = { 审批人规则: "Assignment rule" };
    expect(describeChange(d.changes[0], (k) => en[k] ?? k)[0]).toBe(
      "「科长审批」Assignment rule：position:head@initiator.department → user:kezhang");
  });

  it("rejects a file that is not BPMN", async () => {
    await expect(diffBpmn("<nope", xml())).rejects.toThrow();
  });
});
