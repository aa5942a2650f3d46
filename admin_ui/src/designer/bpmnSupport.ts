// What the process designer adds to bpmn-js: the spiffworkflow:properties extension djflow's node
// settings live in (DESIGN.md §4, compatible with SpiffArena), Chinese labels for the palette and
// context pad, and finding the element a lint problem's line points at.
import { fill } from "../format";
import { USERNAME } from "./ruleBuilder";

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
    // SpiffArena's note to whoever does a task: djflow does not show it, but keeps it in the file
    { name: "InstructionsForEndUser", superClass: ["Element"], properties: [{ name: "value", isBody: true, type: "String" }] },
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

// -- what an imported file loses ------------------------------------------------------------------
// A file from Camunda Modeler (Camunda 7 `camunda:`, Camunda 8 `zeebe:`) or SpiffArena opens with
// everything djflow runs kept (names, documentation, conditions, timers, scripts, djflow's
// spiffworkflow properties). What djflow does not use is listed: it stays in the saved file unless
// the modeler could not read it at all (then it is left out, and the list says so). A few things
// are converted: a literal Camunda/Zeebe assignee becomes the rule user:<name>, and a simple
// JUEL ${…} or FEEL =… condition becomes the Python expression the engine runs.

export type Handling = "keep" | "ignore" | "convert";

export interface ImportItem {
  element: string;     // element id ("" for the whole file)
  elementName: string; // its name, else its id
  content: string;     // what it is, as written in the file (attribute="value", <tag>)
  handling: Handling;
  note: string;        // why / what djflow does with it (a translation key, with `vars`)
  saved: boolean;      // still in the file the modeler saves
  vars?: Record<string, string | number>;
}

type Translate = (key: string, vars?: Record<string, string | number>) => string;

/** An item's note in words (translated by `t`, the app's useT()). */
export function importNote(item: ImportItem, t: Translate = fill): string {
  return t(item.note, item.vars);
}

interface Mod {
  $type: string;
  $attrs?: Record<string, string>;
  $parent?: Mod;
  id?: string;
  name?: string;
  [k: string]: unknown;
}
type Create = (type: string, attrs?: Record<string, unknown>) => Mod;

const VENDORS: Record<string, string> = {
  "http://camunda.org/schema/1.0/bpmn": "camunda",
  "http://activiti.org/bpmn": "camunda", // Camunda 7 reads Activiti's extensions under their own name
  "http://camunda.org/schema/zeebe/1.0": "zeebe",
  "http://camunda.org/schema/modeler/1.0": "modeler",
  "http://spiffworkflow.org/bpmn/schema/1.0/core": "spiffworkflow",
};

// Specific reasons, by canonical vendor:name (attributes and extension elements alike).
const NOTES: Record<string, string> = {
  "camunda:assignee": "审批人表达式 djflow 不执行；请在属性面板设置审批人规则",
  "camunda:candidateUsers": "候选人/候选组 djflow 不使用；请设置审批人规则",
  "camunda:candidateGroups": "候选人/候选组 djflow 不使用；请设置审批人规则",
  "zeebe:assignmentDefinition": "审批人表达式 djflow 不执行；请在属性面板设置审批人规则",
  "camunda:formKey": "外部表单 djflow 不使用；请在属性面板选择 djflow 表单",
  "camunda:formRef": "外部表单 djflow 不使用；请在属性面板选择 djflow 表单",
  "camunda:formData": "外部表单 djflow 不使用；请在属性面板选择 djflow 表单",
  "zeebe:formDefinition": "外部表单 djflow 不使用；请在属性面板选择 djflow 表单",
  "zeebe:userTaskForm": "外部表单 djflow 不使用；请在属性面板选择 djflow 表单",
  "camunda:inputOutput": "输入/输出映射 djflow 不执行；流程数据按字段名直接使用",
  "zeebe:ioMapping": "输入/输出映射 djflow 不执行；流程数据按字段名直接使用",
  "camunda:in": "调用活动的变量传递 djflow 不使用；请用 preScript/postScript",
  "camunda:out": "调用活动的变量传递 djflow 不使用；请用 preScript/postScript",
  "camunda:executionListener": "监听器 djflow 不执行",
  "camunda:taskListener": "监听器 djflow 不执行",
  "zeebe:executionListeners": "监听器 djflow 不执行",
  "zeebe:taskListeners": "监听器 djflow 不执行",
  "camunda:asyncBefore": "作业执行设置 djflow 不使用",
  "camunda:asyncAfter": "作业执行设置 djflow 不使用",
  "camunda:exclusive": "作业执行设置 djflow 不使用",
  "camunda:jobPriority": "作业执行设置 djflow 不使用",
  "camunda:failedJobRetryTimeCycle": "作业执行设置 djflow 不使用",
  "camunda:class": "Java 委托或外部任务 djflow 不执行；服务任务需 spiffworkflow:serviceTaskOperator",
  "camunda:delegateExpression": "Java 委托或外部任务 djflow 不执行；服务任务需 spiffworkflow:serviceTaskOperator",
  "camunda:expression": "Java 委托或外部任务 djflow 不执行；服务任务需 spiffworkflow:serviceTaskOperator",
  "camunda:type": "Java 委托或外部任务 djflow 不执行；服务任务需 spiffworkflow:serviceTaskOperator",
  "camunda:topic": "Java 委托或外部任务 djflow 不执行；服务任务需 spiffworkflow:serviceTaskOperator",
  "zeebe:taskDefinition": "Zeebe 作业类型 djflow 不执行；服务任务需 spiffworkflow:serviceTaskOperator",
  "camunda:historyTimeToLive": "Camunda 的流程设置 djflow 不使用",
  "camunda:isStartableInTasklist": "Camunda 的流程设置 djflow 不使用",
  "camunda:versionTag": "Camunda 的流程设置 djflow 不使用",
  "camunda:candidateStarterGroups": "Camunda 的流程设置 djflow 不使用",
  "camunda:candidateStarterUsers": "Camunda 的流程设置 djflow 不使用",
  "camunda:initiator": "发起人变量 djflow 不使用（发起人即 initiator）",
  "camunda:dueDate": "到期时间表达式 djflow 不执行；请设置办理时限 dueIn",
  "zeebe:taskSchedule": "到期时间表达式 djflow 不执行；请设置办理时限 dueIn",
  "modeler:executionPlatform": "建模工具的平台标记，djflow 不使用",
  "modeler:executionPlatformVersion": "建模工具的平台标记，djflow 不使用",
  "spiffworkflow:instructionsForEndUser": "给办理人的说明 djflow 不显示",
};
const VENDOR_NOTE: Record<string, string> = {
  camunda: "Camunda 7 扩展，djflow 不使用", zeebe: "Camunda 8（Zeebe）扩展，djflow 不使用",
  modeler: "建模工具的平台标记，djflow 不使用",
};
const OTHER_NOTE = "其他工具的扩展，djflow 不使用";

/** JUEL ${…} (Camunda 7) or FEEL =… (Camunda 8) condition as the Python expression djflow runs,
 * when it is a plain comparison of variables, numbers and strings; else null. */
export function pythonCondition(expr: string): { python: string; from: "JUEL" | "FEEL" } | null {
  const text = expr.trim();
  const juel = /^[$#]\{([\s\S]*)\}$/.exec(text);
  const feel = /^=\s*([\s\S]+)$/.exec(text);
  if (!juel && !feel) return null;
  let inner = (juel ?? feel)![1].trim();
  if (!/^(?:[\w.]+|\d+(?:\.\d+)?|'[^'\\]*'|"[^"\\]*"|[\s()<>=!&|+\-*/%])+$/.test(inner)) return null;
  if (/[\w.]\s*\(/.test(inner.replace(/'[^']*'|"[^"]*"/g, "''"))) return null; // a call: not a plain comparison
  if (juel) {
    inner = inner.replace(/&&/g, " and ").replace(/\|\|/g, " or ").replace(/!(?!=)/g, " not ")
      .replace(/\b(eq)\b/g, "==").replace(/\b(ne)\b/g, "!=").replace(/\b(gt)\b/g, ">").replace(/\b(lt)\b/g, "<")
      .replace(/\b(ge)\b/g, ">=").replace(/\b(le)\b/g, "<=");
  } else {
    if (/[&|!]/.test(inner.replace(/!=/g, ""))) return null;
    inner = inner.replace(/([^<>=!])=(?!=)/g, "$1==");
  }
  inner = inner.replace(/\btrue\b/g, "True").replace(/\bfalse\b/g, "False").replace(/\bnull\b/g, "None")
    .replace(/\s+/g, " ").trim();
  return { python: inner, from: juel ? "JUEL" : "FEEL" };
}

function propsHolder(el: Mod, create: Create): Mod {
  let ext = el.extensionElements as Mod | undefined;
  if (!ext) {
    ext = create("bpmn:ExtensionElements", { values: [] });
    ext.$parent = el;
    el.extensionElements = ext;
  }
  const values = (ext.values ?? (ext.values = [])) as Mod[];
  let holder = values.find((v) => v.$type === "spiffworkflow:Properties");
  if (!holder) {
    holder = create("spiffworkflow:Properties", { properties: [] });
    holder.$parent = ext;
    values.push(holder);
  }
  return holder;
}

/** What djflow keeps, converts and ignores of a file just opened (`defs`, the moddle tree; `warnings`,
 * what the reader could not parse; `xml`, the file's text, to place those warnings). Converts in
 * place with `create` (the moddle's factory), so the saved file has djflow's form. */
export function importReport(defs: Mod, warnings: { message?: string; element?: Mod }[], xml: string, create: Create): ImportItem[] {
  const items: ImportItem[] = [];
  const ids: string[] = [];
  const names = new Map<string, string>();
  const prefixes: Record<string, string> = {};
  for (const [k, v] of Object.entries(defs.$attrs ?? {})) {
    if (k.startsWith("xmlns:")) prefixes[k.slice(6)] = VENDORS[v] ?? k.slice(6);
  }
  const canonical = (qname: string) => {
    const [prefix, local] = qname.includes(":") ? qname.split(":", 2) : ["", qname];
    const vendor = prefixes[prefix] ?? prefix;
    return { vendor, key: `${vendor}:${local.charAt(0).toLowerCase()}${local.slice(1)}` };
  };
  const add = (owner: Mod | undefined, content: string, handling: Handling, note: string, vars?: Record<string, string>) => {
    const element = owner?.id ?? "";
    items.push({ element, elementName: owner ? (owner.name?.trim() || element) : "", content, handling, note, saved: true,
                 ...(vars ? { vars } : {}) });
  };
  const foreignNote = (qname: string) => {
    const { vendor, key } = canonical(qname);
    return NOTES[key] ?? VENDOR_NOTE[vendor] ?? OTHER_NOTE;
  };
  let named = 0;
  const seen = new Set<Mod>();

  const visit = (node: Mod, owner: Mod | undefined) => {
    if (seen.has(node)) return;
    seen.add(node);
    // items belong to the element a person sees (an event, not its event definition)
    const self = node.id && node.$type !== "bpmn:Definitions" && !node.$type.startsWith("bpmndi:")
      && !node.$type.endsWith("EventDefinition") && !node.$type.endsWith("Expression") ? node : owner;
    if (self === node && node.id) {
      ids.push(node.id);
      names.set(node.id, node.name ?? "");
      if (node.name?.trim()) named++;
    }
    const type = node.$type;
    // foreign attributes
    for (const [k, v] of Object.entries(node.$attrs ?? {})) {
      if (k.startsWith("xmlns") || k.startsWith("xsi:") || !k.includes(":")) continue;
      const { key } = canonical(k);
      if ((key === "camunda:assignee") && USERNAME.test(v) && self) {
        if (convertAssignee(self, v, create)) {
          add(self, `${k}="${v}"`, "convert", "已转换为审批人规则 user:{name}", { name: v });
          continue;
        }
      }
      add(self, `${k}="${v}"`, "ignore", foreignNote(k));
    }
    if (type === "bpmn:ComplexGateway") add(self, "<bpmn:complexGateway>", "ignore", "djflow 不支持复杂网关；请改为排他或包容网关后再发布");
    if (type === "bpmn:CompensateEventDefinition") add(self, "<bpmn:compensateEventDefinition>", "ignore", "djflow 不支持补偿事件，此事件按无定义事件处理");
    if (node.isForCompensation === true) add(self, "isForCompensation", "ignore", "djflow 不支持补偿事件，此事件按无定义事件处理");
    if (type === "bpmn:MessageEventDefinition" || type === "bpmn:SignalEventDefinition") {
      const r = (node.messageRef ?? node.signalRef) as Mod | undefined;
      const tag = type === "bpmn:MessageEventDefinition" ? "bpmn:messageEventDefinition" : "bpmn:signalEventDefinition";
      add(self, `<${tag}${r ? ` ${r.name ?? r.id}` : ""}>`,
          "keep", "保留；流程内抛出与接收有效，djflow 不接收外部发来的消息或信号");
    }
    if (type === "bpmn:TimerEventDefinition") {
      const what = (["timeDuration", "timeDate", "timeCycle"] as const).find((k) => node[k]);
      const body = what ? String((node[what] as Mod).body ?? "").trim() : "";
      add(self, what ? `${what}: ${body}` : "<bpmn:timerEventDefinition>", "keep", "保留：定时器");
    }
    if (type === "bpmn:ScriptTask") {
      const fmt = String(node.scriptFormat ?? "python").toLowerCase();
      add(self, `script (${fmt})`, "keep", fmt === "python" ? "保留：脚本" : "保留，但 djflow 按 Python 执行脚本，请改写");
    }
    if (type === "bpmn:SequenceFlow" && node.conditionExpression) {
      const c = node.conditionExpression as Mod;
      const body = String(c.body ?? "").trim();
      const py = pythonCondition(body);
      if (py) {
        c.body = py.python;
        add(self, body, "convert", py.from === "JUEL" ? "由 JUEL 表达式改写为 Python：{expr}" : "由 FEEL 表达式改写为 Python：{expr}",
            { expr: py.python });
      } else if (/^[$#]\{|^=/.test(body)) {
        add(self, body, "keep", "保留，但这不是 Python 表达式，校验会报错，请改写");
      } else {
        add(self, body, "keep", "保留：条件");
      }
    }
    for (const d of (Array.isArray(node.documentation) ? node.documentation : []) as Mod[]) {
      const text = String(d.text ?? "").trim();
      if (text) add(self, text.length > 40 ? `${text.slice(0, 40)}…` : text, "keep", "保留：说明");
    }
    if (node.loopCharacteristics) add(self, "multiInstanceLoopCharacteristics", "keep", "保留：多实例");
    // extension elements
    const ext = node.extensionElements as Mod | undefined;
    for (const v of ((ext?.values ?? []) as Mod[])) {
      const { key, vendor } = canonical(v.$type);
      if (vendor === "spiffworkflow") {
        if (v.$type === "spiffworkflow:Properties") {
          const list = ((v.properties ?? []) as Mod[]).map((p) => String(p.name ?? ""));
          add(self, `spiffworkflow:properties（${list.join("、")}）`, "keep", "保留：djflow 节点属性");
        } else if (v.$type === "spiffworkflow:InstructionsForEndUser") {
          add(self, "spiffworkflow:instructionsForEndUser", "ignore", NOTES["spiffworkflow:instructionsForEndUser"]);
        } else if (v.$type === "spiffworkflow:ServiceTaskOperator") {
          add(self, `spiffworkflow:serviceTaskOperator ${String(v.id ?? "")}`, "keep", "保留：服务操作");
        } else {
          add(self, key, "keep", "保留：前置/后置脚本");
        }
        continue;
      }
      if (key === "zeebe:assignmentDefinition") {
        const a = String(v.assignee ?? "").trim();
        const rest = Object.keys(v).filter((k) => !k.startsWith("$") && k !== "assignee");
        if (a && USERNAME.test(a) && self && convertAssignee(self, a, create)) {
          add(self, `zeebe:assignmentDefinition assignee="${a}"`, "convert", "已转换为审批人规则 user:{name}", { name: a });
          for (const k of rest) add(self, `zeebe:assignmentDefinition ${k}="${String(v[k])}"`, "ignore", NOTES["camunda:candidateGroups"]);
          continue;
        }
      }
      const attrs = Object.entries(v).filter(([k, x]) => !k.startsWith("$") && typeof x === "string").map(([k, x]) => `${k}="${x}"`);
      const kids = ((v.$children ?? []) as Mod[]).map((c) => `<${c.$type}${c.name ? ` ${c.name}` : ""}>`);
      add(self, [`<${v.$type}>`, ...attrs, ...kids].join(" ").slice(0, 160), "ignore", foreignNote(v.$type));
    }
    for (const [k, v] of Object.entries(node)) {
      if (k.startsWith("$") || k === "extensionElements" || k === "di") continue;
      if (Array.isArray(v)) for (const x of v) { if (x && typeof x === "object" && (x as Mod).$type && (x as Mod).$parent === node) visit(x as Mod, self); }
      else if (v && typeof v === "object" && (v as Mod).$type && (v as Mod).$parent === node) visit(v as Mod, self);
    }
  };
  visit(defs, undefined);
  if (named) items.unshift({ element: "", elementName: "", content: "name", handling: "keep", note: "保留：{n} 个元素的名称", saved: true,
                             vars: { n: named } });
  for (const w of warnings) {
    const message = String(w.message ?? w);
    const line = Number(/line: (\d+)/.exec(message)?.[1] ?? 0);
    const first = message.split("\n")[0];
    const id = (w.element?.id && ids.includes(w.element.id)) ? w.element.id : elementForProblem(xml, line, first, ids);
    items.push({ element: id ?? "", elementName: id ? (names.get(id)?.trim() || id) : "", content: first,
                 handling: "ignore", note: "无法识别，保存时不会保留", saved: false });
  }
  return items;
}

/** Sets djflow's assignee rule from a literal Camunda/Zeebe assignee, unless the node has one. */
function convertAssignee(el: Mod, username: string, create: Create): boolean {
  if (el.$type !== "bpmn:UserTask") return false;
  const holder = propsHolder(el, create);
  const props = (holder.properties ?? (holder.properties = [])) as Mod[];
  if (props.some((p) => p.name === "assignee")) return false;
  const prop = create("spiffworkflow:Property", { name: "assignee", value: `user:${username}` });
  prop.$parent = holder;
  props.push(prop);
  return true;
}
