// What the process designer adds to bpmn-js: the spiffworkflow:properties extension djflow's node
// settings live in (DESIGN.md §4, compatible with SpiffArena), Chinese labels for the palette and
// context pad, and finding the element a lint problem's line points at.

export const SPIFF_MODDLE = {
  name: "SpiffWorkflow",
  uri: "http://spiffworkflow.org/bpmn/schema/1.0/core",
  prefix: "spiffworkflow",
  xml: { tagAlias: "lowerCase" },
  associations: [],
  types: [
    { name: "Properties", superClass: ["Element"], properties: [{ name: "properties", type: "Property", isMany: true }] },
    { name: "Property", superClass: ["Element"], properties: [
      { name: "name", isAttr: true, type: "String" }, { name: "value", isAttr: true, type: "String" }] },
    // service tasks: <spiffworkflow:serviceTaskOperator id="member/status" resultVariable="…">
    //   <spiffworkflow:parameters><spiffworkflow:parameter id="…" type="any" value="expr"/>…
    //   <spiffworkflow:retry retries="3" backoff_base="2"/>
    { name: "ServiceTaskOperator", superClass: ["Element"], properties: [
      { name: "id", isAttr: true, type: "String" }, { name: "resultVariable", isAttr: true, type: "String" },
      { name: "parameterList", type: "Parameters" }, { name: "retry", type: "Retry" }] },
    { name: "Parameters", superClass: ["Element"], properties: [{ name: "parameters", type: "Parameter", isMany: true }] },
    { name: "Parameter", superClass: ["Element"], properties: [
      { name: "id", isAttr: true, type: "String" }, { name: "type", isAttr: true, type: "String" },
      { name: "value", isAttr: true, type: "String" }] },
    { name: "Retry", superClass: ["Element"], properties: [
      { name: "retries", isAttr: true, type: "String" }, { name: "backoff_base", isAttr: true, type: "String" }] },
    // scripts run before / after a task (call activities map their data with them)
    { name: "PreScript", superClass: ["Element"], properties: [{ name: "value", isBody: true, type: "String" }] },
    { name: "PostScript", superClass: ["Element"], properties: [{ name: "value", isBody: true, type: "String" }] },
  ],
};

const ZH: Record<string, string> = {
  "Activate hand tool": "抓手工具",
  "Activate lasso tool": "框选工具",
  "Activate create/remove space tool": "插入/删除空间",
  "Activate global connect tool": "连线工具",
  "Create start event": "开始事件",
  "Create intermediate/boundary event": "中间/边界事件",
  "Create end event": "结束事件",
  "Create gateway": "网关",
  "Create task": "任务",
  "Create user task": "审批节点（用户任务）",
  "Create expanded sub-process": "子流程",
  "Create data object reference": "数据对象",
  "Create data store reference": "数据存储",
  "Create group": "分组",
  "Create pool/participant": "泳池/参与者",
  "Append end event": "追加结束事件",
  "Append gateway": "追加网关",
  "Append task": "追加任务",
  "Append user task": "追加审批节点",
  "Append intermediate/boundary event": "追加中间事件",
  "Append text annotation": "追加注释",
  "Add text annotation": "添加注释",
  "Change element": "更改类型",
  "Change type": "更改类型",
  "Delete": "删除",
  "Connect using sequence/message flow or association": "连线",
  "Connect to other element": "连接到其他元素",
  "Connect using association": "关联连线",
  "Connect using data input association": "数据输入连线",
  "User task": "用户任务（审批节点）",
  "Task": "任务",
  "Service task": "服务任务",
  "Script task": "脚本任务",
  "Send task": "发送任务",
  "Receive task": "接收任务",
  "Manual task": "人工任务",
  "Business rule task": "业务规则任务",
  "Call activity": "调用活动",
  "Exclusive gateway": "排他网关",
  "Parallel gateway": "并行网关",
  "Inclusive gateway": "包容网关",
  "Event-based gateway": "事件网关",
  "Start event": "开始事件",
  "End event": "结束事件",
  "Timer start event": "定时开始事件",
  "Timer boundary event": "定时边界事件",
  "Sub-process (collapsed)": "子流程（折叠）",
  "Sub-process (expanded)": "子流程（展开）",
  "Sequence flow": "顺序流",
  "Default flow": "默认流",
  "Conditional flow": "条件流",
  "Search in diagram": "在图中搜索",
};

/** bpmn-js's translate service: Chinese unless the app is in English. */
export function translateModule(lang: string) {
  const translate = (template: string, replacements?: Record<string, string>) => {
    const text = lang === "en" ? template : ZH[template] ?? template;
    return text.replace(/{([^}]+)}/g, (_, key) => replacements?.[key] ?? `{${key}}`);
  };
  return { translate: ["value", translate] };
}

/** The element a problem is about: one whose id the message names, else the element whose start
 * tag is the last one at or before the problem's line. */
export function elementForProblem(xml: string, line: number, message: string, ids: string[]): string | null {
  const named = ids.filter((id) => message.includes(id)).sort((a, b) => b.length - a.length)[0];
  if (named) return named;
  const lines = xml.split("\n");
  for (let i = Math.min(line, lines.length) - 1; i >= 0; i--) {
    const m = /<[\w:]+\s[^>]*\bid="([^"]+)"/.exec(lines[i]);
    if (m && ids.includes(m[1])) return m[1];
  }
  return null;
}

export const NEW_DIAGRAM = (key: string, name: string) => `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI"
  xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" xmlns:di="http://www.omg.org/spec/DD/20100524/DI"
  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="${key}_definitions" targetNamespace="https://djflow.cn/bpmn">
  <bpmn:process id="${key}" name="${name.replace(/[<&"]/g, "")}" isExecutable="true">
    <bpmn:startEvent id="start" name="开始" />
  </bpmn:process>
  <bpmndi:BPMNDiagram id="${key}_diagram">
    <bpmndi:BPMNPlane id="${key}_plane" bpmnElement="${key}">
      <bpmndi:BPMNShape id="start_di" bpmnElement="start"><dc:Bounds x="160" y="160" width="36" height="36" /></bpmndi:BPMNShape>
    </bpmndi:BPMNPlane>
  </bpmndi:BPMNDiagram>
</bpmn:definitions>
`;

export const NODE_PROPERTIES = [
  "formJsonSchemaFilename", "formUiSchemaFilename", "assignee", "approveMethod", "rejectPolicy", "buttons", "opinionRequired",
  "signatureRequired", "fieldPermissions", "emptyAssignee", "dedupe", "initiatorIsApprover", "dueIn", "timeout",
] as const;
