// The assignment-rule builder's model: the DSL of DESIGN.md §4 (engine/org/rules.py parses the
// same text on the server at deploy time), as a structure the properties panel edits.
export type RuleKind = "initiator" | "user" | "position" | "in_charge_of" | "leaders" | "role" | "field";
export type OrgBase = "initiator" | "org" | "field";
export const INITIATOR_ORGS = ["department", "branch", "unit", "committee"] as const;
export const MAX_LEVELS = 10;

export interface OrgRef {
  base: OrgBase;
  name: string; // department/branch/unit/committee, an org code, or a form field
  parents: number;
}

export interface Rule {
  kind: RuleKind;
  name?: string; // username, position key, role key or form field
  org?: OrgRef;
  levels?: number;
}

export const RULE_LABELS: Record<RuleKind, string> = {
  initiator: "发起人本人", user: "指定人员", position: "职务（如科室负责人）", in_charge_of: "分管领导",
  leaders: "连续多级领导", role: "角色", field: "发起人自选（表单字段）",
};
export const ORG_LABELS: Record<string, string> = {
  department: "发起人所在科室", branch: "发起人所在支部", unit: "发起人所在单位", committee: "发起人所在党委",
};

const NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const CODE = /^[A-Za-z0-9_.-]+$/;
// As engine/org/names.py USERNAME: every username a person can be created with (zhang.san, 10023, li@sfj).
export const USERNAME = /^[A-Za-z0-9_.@-]{2,64}$/;

export class RuleError extends Error {}

export function formatOrg(o: OrgRef): string {
  const head = o.base === "initiator" ? `initiator.${o.name}` : `${o.base}:${o.name}`;
  return head + ".parent".repeat(o.parents);
}

/** The rule's text, e.g. position:head@initiator.department.parent. Throws RuleError naming
 * the missing or bad part, so the panel can say it before the server does. */
export function formatRule(r: Rule): string {
  const needName = (what: string) => {
    if (!r.name || !NAME.test(r.name)) throw new RuleError(`请填写${what}（字母、数字、下划线）`);
    return r.name;
  };
  const org = () => {
    if (!r.org) throw new RuleError("请选择组织");
    if (r.org.base === "initiator" && !(INITIATOR_ORGS as readonly string[]).includes(r.org.name)) throw new RuleError("请选择发起人的哪一级组织");
    if (r.org.base === "org" && !CODE.test(r.org.name)) throw new RuleError("请填写组织编码");
    if (r.org.base === "field" && !NAME.test(r.org.name)) throw new RuleError("请填写表单字段名");
    return formatOrg(r.org);
  };
  switch (r.kind) {
    case "initiator":
      return "initiator";
    case "user":
      if (!r.name || !USERNAME.test(r.name)) throw new RuleError("请填写用户名（2–64 位字母、数字或 _ . - @）");
      return `user:${r.name}`;
    case "field":
      return `field:${needName("表单字段名")}`;
    case "position":
      return `position:${needName("职务标识")}@${org()}`;
    case "role":
      return `role:${needName("角色标识")}@${org()}`;
    case "in_charge_of":
      return `in_charge_of:${org()}`;
    case "leaders": {
      const n = r.levels ?? 1;
      if (!Number.isInteger(n) || n < 1 || n > MAX_LEVELS) throw new RuleError(`层级应为 1 到 ${MAX_LEVELS}`);
      return `leaders:${org()}:levels=${n}`;
    }
  }
}

function parseOrg(text: string): OrgRef {
  const parents = (text.match(/(\.parent)+$/)?.[0].length ?? 0) / ".parent".length;
  const head = parents ? text.slice(0, -".parent".length * parents) : text;
  const m = /^initiator\.(department|branch|unit|committee)$/.exec(head);
  if (m) return { base: "initiator", name: m[1], parents };
  if (head.startsWith("org:") && CODE.test(head.slice(4))) return { base: "org", name: head.slice(4), parents };
  if (head.startsWith("field:") && NAME.test(head.slice(6))) return { base: "field", name: head.slice(6), parents };
  throw new RuleError(`组织引用 '${text}' 无法识别`);
}

/** Read a rule's text back into the builder; throws RuleError on what the server would refuse. */
export function parseRule(text: string): Rule {
  const rule = text.trim();
  if (!rule) throw new RuleError("处理人规则为空");
  if (rule === "initiator") return { kind: "initiator" };
  const i = rule.indexOf(":");
  if (i < 0) throw new RuleError(`未知的处理人规则 '${rule}'`);
  const kind = rule.slice(0, i);
  const rest = rule.slice(i + 1);
  if (kind === "user" || kind === "field") {
    if (!(kind === "user" ? USERNAME : NAME).test(rest)) throw new RuleError(`规则 '${rule}' 的名称不合法`);
    return { kind, name: rest };
  }
  if (kind === "position" || kind === "role") {
    const at = rest.indexOf("@");
    if (at < 0) throw new RuleError(`规则 '${rule}' 缺少 @<组织引用>`);
    const name = rest.slice(0, at);
    if (!NAME.test(name)) throw new RuleError(`规则 '${rule}' 的标识不合法`);
    return { kind, name, org: parseOrg(rest.slice(at + 1)) };
  }
  if (kind === "in_charge_of") return { kind, org: parseOrg(rest) };
  if (kind === "leaders") {
    const m = /^(.*):levels=(\d+)$/.exec(rest);
    const levels = m ? Number(m[2]) : 1;
    if (levels < 1 || levels > MAX_LEVELS) throw new RuleError(`层级应为 1 到 ${MAX_LEVELS}`);
    return { kind, org: parseOrg(m ? m[1] : rest), levels };
  }
  throw new RuleError(`未知的处理人规则类型 '${kind}'`);
}

/** How the panel says a rule in words: 发起人所在科室的上级 的 head. */
export function describeRule(r: Rule, positions: Record<string, string> = {}): string {
  const org = r.org
    ? (r.org.base === "initiator" ? ORG_LABELS[r.org.name] ?? r.org.name : r.org.base === "org" ? `组织 ${r.org.name}` : `表单字段「${r.org.name}」所选组织`) +
      "的上级".repeat(r.org.parents)
    : "";
  switch (r.kind) {
    case "initiator":
      return "发起人本人";
    case "user":
      return `指定人员 ${r.name ?? ""}`;
    case "field":
      return `表单字段「${r.name ?? ""}」所选的人`;
    case "position":
      return `${org}的${positions[r.name ?? ""] ?? r.name ?? ""}`;
    case "role":
      return `${org}的角色 ${r.name ?? ""}`;
    case "in_charge_of":
      return `${org}的分管领导`;
    case "leaders":
      return `${org}起连续 ${r.levels ?? 1} 级负责人`;
  }
}
