// 版本对比: what changed between two versions of a process, element by element (matched by id).
// A semantic change is one the engine would act on: an element's type, name, flows in and out,
// a flow's condition, djflow's node properties (DESIGN.md §4), scripts, timers, forms, lanes.
// Moving a shape or bending a flow is a layout change only; it is reported apart (`moved`).
import { BpmnModdle } from "bpmn-moddle";
import { fill } from "../format";
import { SPIFF_MODDLE } from "./bpmnSupport";

export type ChangeKind = "added" | "removed" | "changed";

/** One difference of a changed element: `field` is the Chinese label (a translation key). */
export interface Detail {
  field: string;
  before: string;
  after: string;
}

export interface Change {
  id: string;
  kind: ChangeKind;
  type: string; // bpmn:UserTask …, of the newer version unless removed
  name: string; // the element's name (newer unless removed), else its id
  details: Detail[];
}

export interface BpmnDiff {
  changes: Change[];
  /** ids present in both versions whose shape or waypoints moved (whatever else changed) */
  moved: string[];
  /** every element's name (else its id), newer over older */
  names: Record<string, string>;
}

interface Node {
  $type: string;
  id?: string;
  name?: string;
  [k: string]: unknown;
}

/** Labels of djflow's node properties, in the order they are listed. */
export const PROPERTY_LABELS: Record<string, string> = {
  assignee: "审批人规则", approveMethod: "审批方式", rejectPolicy: "驳回后", buttons: "按钮",
  formJsonSchemaFilename: "表单", formUiSchemaFilename: "表单界面", opinionRequired: "意见必填",
  signatureRequired: "手写签名", fieldPermissions: "字段权限", emptyAssignee: "找不到处理人时", dedupe: "审批人去重",
  initiatorIsApprover: "发起人是审批人时", dueIn: "办理时限", timeout: "超时处理", mergeData: "表单值记入流程数据",
  confidential: "保密", guards: "办理前校验",
};

export const TYPE_LABELS: Record<string, string> = {
  "bpmn:UserTask": "用户任务", "bpmn:Task": "任务", "bpmn:ServiceTask": "服务任务", "bpmn:ScriptTask": "脚本任务",
  "bpmn:ManualTask": "人工任务", "bpmn:SendTask": "发送任务", "bpmn:ReceiveTask": "接收任务",
  "bpmn:BusinessRuleTask": "业务规则任务", "bpmn:CallActivity": "调用活动", "bpmn:SubProcess": "子流程",
  "bpmn:Transaction": "事务子流程", "bpmn:ExclusiveGateway": "排他网关", "bpmn:ParallelGateway": "并行网关",
  "bpmn:InclusiveGateway": "包容网关", "bpmn:EventBasedGateway": "事件网关", "bpmn:ComplexGateway": "复杂网关",
  "bpmn:StartEvent": "开始事件", "bpmn:EndEvent": "结束事件", "bpmn:IntermediateCatchEvent": "中间捕获事件",
  "bpmn:IntermediateThrowEvent": "中间抛出事件", "bpmn:BoundaryEvent": "边界事件", "bpmn:SequenceFlow": "顺序流",
  "bpmn:Lane": "泳道", "bpmn:Participant": "泳池", "bpmn:Process": "流程",
};

const typeLabel = (type: string) => TYPE_LABELS[type] ?? type.replace(/^bpmn:/, "");

async function parse(xml: string): Promise<Node> {
  const { rootElement } = await BpmnModdle({ spiffworkflow: SPIFF_MODDLE }).fromXML(xml);
  return rootElement as Node;
}

const list = (v: unknown): Node[] => (Array.isArray(v) ? (v as Node[]) : []);
const text = (v: unknown): string => (typeof v === "string" ? v.trim() : v === undefined || v === null ? "" : String(v));
const body = (v: unknown): string => (v && typeof v === "object" ? text((v as Node).body) : "");
const ref = (v: unknown): string => (v && typeof v === "object" ? text((v as Node).id) : text(v));

/** Every element that takes part in the process: flow elements at any depth, lanes, pools. */
function elements(defs: Node): Map<string, Node> {
  const out = new Map<string, Node>();
  const walk = (container: Node) => {
    for (const el of list(container.flowElements)) {
      if (el.id) out.set(el.id, el);
      if (el.flowElements) walk(el);
    }
    for (const set of list(container.laneSets)) walkLanes(set);
  };
  const walkLanes = (set: Node) => {
    for (const lane of list(set.lanes)) {
      if (lane.id) out.set(lane.id, lane);
      if (lane.childLaneSet) walkLanes(lane.childLaneSet as Node);
    }
  };
  for (const root of list(defs.rootElements)) {
    if (root.$type === "bpmn:Process") {
      if (root.id) out.set(root.id, root);
      walk(root);
    } else if (root.$type === "bpmn:Collaboration") {
      for (const p of list(root.participants)) if (p.id) out.set(p.id, p);
    }
  }
  return out;
}

/** Where each element is drawn: shape bounds or edge waypoints. */
function layout(defs: Node): Map<string, string> {
  const out = new Map<string, string>();
  for (const diagram of list(defs.diagrams)) {
    for (const di of list((diagram.plane as Node | undefined)?.planeElement)) {
      const id = ref(di.bpmnElement);
      if (!id) continue;
      const b = di.bounds as Node | undefined;
      const where = b ? `${b.x},${b.y},${b.width},${b.height}`
                      : list(di.waypoint).map((w) => `${w.x},${w.y}`).join(" ");
      out.set(id, where);
    }
  }
  return out;
}

function extensionValues(el: Node): Node[] {
  return list((el.extensionElements as Node | undefined)?.values);
}

function eventDefinition(d: Node): string {
  const kind = d.$type.replace(/^bpmn:/, "").replace(/EventDefinition$/, "");
  const parts = [kind];
  for (const k of ["timeDuration", "timeDate", "timeCycle"]) if (d[k]) parts.push(`${k}=${body(d[k])}`);
  for (const k of ["messageRef", "signalRef", "errorRef", "escalationRef"]) {
    const r = d[k] as Node | undefined;
    if (r) parts.push(`${k.replace(/Ref$/, "")}=${text(r.name) || ref(r)}`);
  }
  if (d.condition) parts.push(`condition=${body(d.condition)}`);
  return parts.join(" ");
}

function loop(l: Node): string {
  if (l.$type === "bpmn:StandardLoopCharacteristics") return `loop ${body(l.loopCondition)}`.trim();
  const parts = [l.isSequential ? "sequential" : "parallel"];
  if (l.loopCardinality) parts.push(`cardinality=${body(l.loopCardinality)}`);
  if (l.loopDataInputRef) parts.push(`input=${ref(l.loopDataInputRef)}`);
  if (l.inputDataItem) parts.push(`item=${ref(l.inputDataItem)}`);
  if (l.completionCondition) parts.push(`completion=${body(l.completionCondition)}`);
  return parts.join(" ");
}

/** Field label → [value compared, value shown] of everything about an element the engine acts
 * on. References to other elements compare by id (renaming a node does not change its
 * neighbours) and show the name. */
function facts(el: Node, all: Map<string, Node>): Map<string, [string, string]> {
  const f = new Map<string, [string, string]>();
  const put = (label: string, value: string) => value && f.set(label, [value, value]);
  const refs = (label: string, ids: string[]) => ids.length && f.set(label, [ids.join(","), ids.map(name).join("、")]);
  const name = (id: string) => (all.get(id)?.name ? `${text(all.get(id)!.name)}` : id);
  put("类型", typeLabel(el.$type));
  put("名称", text(el.name));
  put("说明", list(el.documentation).map((d) => text(d.text)).filter(Boolean).join("\n"));
  if (el.$type === "bpmn:SequenceFlow") {
    refs("起点", [ref(el.sourceRef)]);
    refs("终点", [ref(el.targetRef)]);
    put("条件", body(el.conditionExpression));
  } else {
    refs("上一步", list(el.incoming).filter((x) => x.$type === "bpmn:SequenceFlow").map((x) => ref(x.sourceRef)).sort());
    refs("下一步", list(el.outgoing).filter((x) => x.$type === "bpmn:SequenceFlow").map((x) => ref(x.targetRef)).sort());
  }
  if (el.default) refs("默认流", [ref(el.default)]);
  put("脚本", text(el.script));
  put("调用流程", text(el.calledElement));
  if (el.attachedToRef) refs("附着于", [ref(el.attachedToRef)]);
  if (el.$type === "bpmn:BoundaryEvent") put("中断", el.cancelActivity === false ? "否" : "是");
  put("事件", list(el.eventDefinitions).map(eventDefinition).join("；"));
  if (el.loopCharacteristics) put("多实例", loop(el.loopCharacteristics as Node));
  if (el.$type === "bpmn:Lane") put("包含节点", list(el.flowNodeRef).map((n) => ref(n)).sort().join("、"));
  for (const ext of extensionValues(el)) {
    if (ext.$type === "spiffworkflow:Properties") {
      for (const p of list(ext.properties)) put(PROPERTY_LABELS[text(p.name)] ?? text(p.name), text(p.value));
    } else if (ext.$type === "spiffworkflow:PreScript") put("前置脚本", text(ext.value));
    else if (ext.$type === "spiffworkflow:PostScript") put("后置脚本", text(ext.value));
    else if (ext.$type === "spiffworkflow:ServiceTaskOperator") {
      const params = list((ext.parameterList as Node | undefined)?.parameters).map((p) => `${text(p.id)}=${text(p.value)}`);
      const retry = ext.retry as Node | undefined;
      put("服务操作", [text(ext.id), ...params, ext.resultVariable ? `→ ${text(ext.resultVariable)}` : "",
                      retry ? `retry=${text(retry.retries)}/${text(retry.backoff_base)}` : ""].filter(Boolean).join(" "));
    }
  }
  return f;
}

const display = (el: Node) => text(el.name) || text(el.id);

/** The changes from `olderXml` to `newerXml`: added, removed and changed elements (in the newer
 * file's order, removed ones last), and the elements whose layout alone differs. */
export async function diffBpmn(olderXml: string, newerXml: string): Promise<BpmnDiff> {
  const [a, b] = await Promise.all([parse(olderXml), parse(newerXml)]);
  const before = elements(a);
  const after = elements(b);
  const changes: Change[] = [];
  for (const [id, el] of after) {
    const old = before.get(id);
    if (!old) {
      changes.push({ id, kind: "added", type: el.$type, name: display(el), details: [] });
      continue;
    }
    const was = facts(old, before);
    const now = facts(el, after);
    const details: Detail[] = [];
    for (const field of new Set([...was.keys(), ...now.keys()])) {
      const [x, shownX] = was.get(field) ?? ["", ""];
      const [y, shownY] = now.get(field) ?? ["", ""];
      if (x !== y) details.push({ field, before: shownX, after: shownY });
    }
    if (details.length) changes.push({ id, kind: "changed", type: el.$type, name: display(el), details });
  }
  for (const [id, el] of before) {
    if (!after.has(id)) changes.push({ id, kind: "removed", type: el.$type, name: display(el), details: [] });
  }
  const la = layout(a);
  const lb = layout(b);
  const moved = [...lb].filter(([id, where]) => la.has(id) && la.get(id) !== where && before.has(id)).map(([id]) => id);
  const names: Record<string, string> = {};
  for (const [id, el] of [...before, ...after]) names[id] = display(el);
  return { changes, moved, names };
}

type Translate = (key: string, vars?: Record<string, string | number>) => string;

/** A change in words, one line per difference: 「科长审批」审批人规则：user:a → user:b. */
export function describeChange(c: Change, t: Translate = fill): string[] {
  const what = `「${c.name}」`;
  if (c.kind === "added") return [`${t("新增")}${t(typeLabel(c.type))}${what}`];
  if (c.kind === "removed") return [`${t("删除")}${t(typeLabel(c.type))}${what}`];
  const none = t("（无）");
  return c.details.map((d) => `${what}${t(d.field)}：${d.before || none} → ${d.after || none}`);
}
