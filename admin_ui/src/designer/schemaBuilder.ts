// The form designer's model: a list of fields an administrator builds visually, turned into the
// JSON Schema (Draft 2020-12) + RJSF uiSchema that djflow stores, and read back from them so an
// existing form (shipped or edited as JSON) opens in the designer again.

export type FieldKind =
  | "text" | "textarea" | "number" | "money" | "date" | "daterange"
  | "select" | "radio" | "checkbox" | "person" | "org" | "file" | "table" | "section";

export interface FieldDef {
  name: string;
  title: string;
  kind: FieldKind;
  required?: boolean;
  help?: string;
  placeholder?: string;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  min?: number;
  max?: number;
  unit?: string; // money
  precision?: number; // money
  options?: string[]; // select, radio, checkbox
  fields?: FieldDef[]; // table columns, section contents
  integer?: boolean; // number: whole numbers only
  rows?: number; // textarea
  accept?: string; // file: the types offered, as a browser's accept (".pdf,.docx,image/*")
}

export interface FormDef {
  title: string;
  fields: FieldDef[];
}

type Json = Record<string, unknown>;

export const KIND_LABELS: Record<FieldKind, string> = {
  text: "单行文本", textarea: "多行文本", number: "数字", money: "金额", date: "日期", daterange: "日期范围",
  select: "下拉选择", radio: "单选", checkbox: "多选", person: "人员", org: "组织", file: "附件上传", table: "表格（明细）", section: "分组",
};

const WIDGET_KIND: Record<string, FieldKind> = {
  textarea: "textarea", money: "money", date: "date", daterange: "daterange", radio: "radio", checkboxes: "checkbox",
  person: "person", org: "org", attachments: "file",
};

/** A fresh field of `kind` whose name does not clash with `taken`. */
export function newField(kind: FieldKind, taken: string[]): FieldDef {
  let n = taken.length + 1;
  while (taken.includes(`field_${n}`)) n++;
  const f: FieldDef = { name: `field_${n}`, title: KIND_LABELS[kind], kind };
  if (kind === "select" || kind === "radio" || kind === "checkbox") f.options = ["选项一", "选项二"];
  if (kind === "money") Object.assign(f, { unit: "元", precision: 2, min: 0 });
  if (kind === "table") f.fields = [{ name: "item", title: "项目", kind: "text" }];
  if (kind === "section") f.fields = [];
  if (kind === "file") f.max = 5;
  return f;
}

function fieldSchema(f: FieldDef): { schema: Json; ui: Json } {
  const ui: Json = {};
  if (f.help) ui["ui:help"] = f.help;
  if (f.placeholder) ui["ui:placeholder"] = f.placeholder;
  const base: Json = { title: f.title };
  const str = (s: Json) => {
    if (f.minLength !== undefined) s.minLength = f.minLength;
    if (f.maxLength !== undefined) s.maxLength = f.maxLength;
    if (f.pattern) s.pattern = f.pattern;
    return s;
  };
  const num = (s: Json) => {
    if (f.min !== undefined) s.minimum = f.min;
    if (f.max !== undefined) s.maximum = f.max;
    return s;
  };
  switch (f.kind) {
    case "text":
      return { schema: str({ ...base, type: "string" }), ui };
    case "textarea":
      return { schema: str({ ...base, type: "string" }),
               ui: { ...ui, "ui:widget": "textarea", ...(f.rows ? { "ui:options": { rows: f.rows } } : {}) } };
    case "number":
      return { schema: num({ ...base, type: f.integer ? "integer" : "number" }), ui: { ...ui, "ui:widget": "updown" } };
    case "money":
      return {
        schema: num({ ...base, type: "number" }),
        ui: { ...ui, "ui:widget": "money", "ui:options": { unit: f.unit ?? "元", precision: f.precision ?? 2 } },
      };
    case "date":
      return { schema: { ...base, type: "string", format: "date" }, ui: { ...ui, "ui:widget": "date" } };
    case "daterange":
      return {
        schema: { ...base, type: "array", items: { type: "string", format: "date" }, minItems: 2, maxItems: 2 },
        ui: { ...ui, "ui:widget": "daterange" },
      };
    case "select":
      return { schema: { ...base, type: "string", enum: [...(f.options ?? [])] }, ui };
    case "radio":
      return { schema: { ...base, type: "string", enum: [...(f.options ?? [])] }, ui: { ...ui, "ui:widget": "radio" } };
    case "checkbox":
      return {
        schema: { ...base, type: "array", uniqueItems: true, items: { type: "string", enum: [...(f.options ?? [])] },
                  ...(f.required ? { minItems: 1 } : {}) },
        ui: { ...ui, "ui:widget": "checkboxes" },
      };
    case "person":
      return { schema: { ...base, type: "string", maxLength: 64 }, ui: { ...ui, "ui:widget": "person" } };
    case "org":
      return { schema: { ...base, type: "integer", minimum: 1 }, ui: { ...ui, "ui:widget": "org" } };
    case "file":
      // the ids of the instance's attachments (POST /api/process-instances/{id}/attachments, or
      // /api/attachments before a start); the server checks each id belongs to the request
      return {
        schema: { ...base, type: "array", items: { type: "integer" }, uniqueItems: true,
                  ...(f.required ? { minItems: 1 } : {}), ...(f.max !== undefined ? { maxItems: f.max } : {}) },
        ui: { ...ui, "ui:widget": "attachments", ...(f.accept ? { "ui:options": { accept: f.accept } } : {}) },
      };
    case "table": {
      const inner = objectSchema(f.fields ?? []);
      return {
        schema: { ...base, type: "array", items: inner.schema, ...(f.required ? { minItems: 1 } : {}),
                  ...(f.max !== undefined ? { maxItems: f.max } : {}) },
        ui: { ...ui, items: inner.ui },
      };
    }
    case "section": {
      const inner = objectSchema(f.fields ?? []);
      return { schema: { ...inner.schema, title: f.title }, ui: { ...ui, ...inner.ui } };
    }
  }
}

function objectSchema(fields: FieldDef[]): { schema: Json; ui: Json } {
  const properties: Json = {};
  const ui: Json = {};
  const required: string[] = [];
  for (const f of fields) {
    const { schema, ui: fieldUi } = fieldSchema(f);
    properties[f.name] = schema;
    if (Object.keys(fieldUi).length) ui[f.name] = fieldUi;
    if (f.required && f.kind !== "section") required.push(f.name);
  }
  if (fields.length) ui["ui:order"] = fields.map((f) => f.name);
  const schema: Json = { type: "object", properties };
  if (required.length) schema.required = required;
  return { schema, ui };
}

/** The JSON Schema and uiSchema djflow stores for this form. */
export function toSchema(def: FormDef): { schema: Json; uiSchema: Json } {
  const { schema, ui } = objectSchema(def.fields);
  return { schema: { $schema: "https://json-schema.org/draft/2020-12/schema", title: def.title, ...schema }, uiSchema: ui };
}

function kindOf(s: Json, ui: Json): FieldKind | null {
  const widget = typeof ui["ui:widget"] === "string" ? (ui["ui:widget"] as string) : "";
  if (WIDGET_KIND[widget]) return WIDGET_KIND[widget];
  if (s.type === "object") return "section";
  if (s.type === "array") return (s.items as Json | undefined)?.type === "object" ? "table" : null;
  if (s.type === "number" || s.type === "integer") return "number";
  if (s.type === "string") return Array.isArray(s.enum) ? "select" : s.format === "date" ? "date" : "text";
  return null;
}

// The keywords the designer models; a field (or the form) with any other is listed as unsupported,
// so saving from the designer can never drop it (the page then edits such a form as JSON only).
const SCHEMA_KEYS = new Set(["title", "type", "minLength", "maxLength", "pattern", "minimum", "maximum", "enum", "format",
                             "items", "minItems", "maxItems", "uniqueItems", "properties", "required"]);
const ROOT_KEYS = new Set(["$schema", "title", "type", "properties", "required"]);
const UI_KEYS = new Set(["ui:widget", "ui:help", "ui:placeholder", "ui:options", "ui:order", "items"]);
const UI_OPTIONS: Partial<Record<FieldKind, string[]>> = { money: ["unit", "precision"], textarea: ["rows"], file: ["accept"] };
const WIDGETS: Record<string, string[]> = { text: [], textarea: ["textarea"], number: ["updown"], money: ["money"], date: ["date"],
  daterange: ["daterange"], select: ["select"], radio: ["radio"], checkbox: ["checkboxes"], person: ["person"], org: ["org"],
  file: ["attachments"], table: [], section: [] };

function modelled(kind: FieldKind, s: Json, ui: Json): boolean {
  if (Object.keys(s).some((k) => !SCHEMA_KEYS.has(k))) return false;
  const children = kind === "section" ? ((s.properties as Json | undefined) ?? {}) : {};
  if (Object.keys(ui).some((k) => !UI_KEYS.has(k) && !(k in children))) return false;
  if (typeof ui["ui:widget"] === "string" && !WIDGETS[kind].includes(ui["ui:widget"] as string)) return false;
  const options = (ui["ui:options"] ?? {}) as Json;
  if (Object.keys(options).some((k) => !(UI_OPTIONS[kind] ?? []).includes(k))) return false;
  if (s.format !== undefined && !(kind === "date" || kind === "daterange")) return false;
  if (Array.isArray(s.enum) && s.enum.some((v) => typeof v !== "string")) return false;
  const items = s.items as Json | undefined;
  if (kind === "checkbox" && items && Object.keys(items).some((k) => k !== "type" && k !== "enum")) return false;
  if (kind === "daterange" && items && Object.keys(items).some((k) => k !== "type" && k !== "format")) return false;
  if (kind === "file") {
    const it = (s.items ?? {}) as Json;
    if (s.type !== "array" || it.type !== "integer" || Object.keys(it).length !== 1 || s.uniqueItems !== true) return false;
    if (s.minItems !== undefined && s.minItems !== 1) return false;
    if (options.accept !== undefined && typeof options.accept !== "string") return false;
  }
  if (kind === "org" && (s.minimum !== 1 || s.maximum !== undefined)) return false;
  if (kind === "person" && s.maxLength !== 64) return false;
  return true;
}

/** Read a stored form back into fields. What the designer cannot show exactly (a `oneOf`, a
 * `default`, a numeric enum, an unknown widget option …) is listed in `unsupported`; the page then
 * keeps the stored JSON as it is and edits it in JSON mode only. */
export function fromSchema(schema: Json, uiSchema: Json = {}): { def: FormDef; unsupported: string[] } {
  const unsupported: string[] = [];
  const extra = Object.keys(schema).filter((k) => !ROOT_KEYS.has(k));
  if (extra.length) unsupported.push(`（表单）${extra.join("、")}`);
  const fields = readObject(schema, uiSchema, "", unsupported);
  return { def: { title: String(schema.title ?? ""), fields }, unsupported };
}

function readObject(schema: Json, ui: Json, path: string, unsupported: string[]): FieldDef[] {
  const props = (schema.properties as Record<string, Json> | undefined) ?? {};
  const required = new Set((schema.required as string[] | undefined) ?? []);
  const order = Array.isArray(ui["ui:order"]) ? (ui["ui:order"] as string[]).filter((n) => n in props) : [];
  const names = [...order, ...Object.keys(props).filter((n) => !order.includes(n))];
  const out: FieldDef[] = [];
  for (const name of names) {
    const s = props[name];
    const fu = ((ui[name] as Json | undefined) ?? {}) as Json;
    const kind = kindOf(s, fu);
    if (!kind || !modelled(kind, s, fu)) {
      unsupported.push(path + name);
      continue;
    }
    const f: FieldDef = { name, title: String(s.title ?? name), kind };
    if (required.has(name)) f.required = true;
    if (fu["ui:help"]) f.help = String(fu["ui:help"]);
    if (fu["ui:placeholder"]) f.placeholder = String(fu["ui:placeholder"]);
    if (typeof s.minLength === "number" && kind !== "person") f.minLength = s.minLength;
    if (typeof s.maxLength === "number" && kind !== "person") f.maxLength = s.maxLength;
    if (typeof s.pattern === "string") f.pattern = s.pattern;
    if (typeof s.minimum === "number" && kind !== "org") f.min = s.minimum;
    if (typeof s.maximum === "number") f.max = s.maximum;
    if (s.type === "integer" && kind === "number") f.integer = true;
    if (kind === "textarea" && typeof (fu["ui:options"] as Json | undefined)?.rows === "number") f.rows = (fu["ui:options"] as Json).rows as number;
    if (kind === "money") {
      const o = (fu["ui:options"] as Json | undefined) ?? {};
      f.unit = String(o.unit ?? "元");
      f.precision = Number(o.precision ?? 2);
    }
    if (kind === "select" || kind === "radio") f.options = ((s.enum as unknown[]) ?? []).map(String);
    if (kind === "checkbox") {
      f.options = (((s.items as Json | undefined)?.enum as unknown[]) ?? []).map(String);
      if (s.minItems === 1) f.required = true;
    }
    if (kind === "file") {
      if (s.minItems === 1) f.required = true;
      if (typeof s.maxItems === "number") f.max = s.maxItems;
      const accept = ((fu["ui:options"] as Json | undefined) ?? {}).accept;
      if (typeof accept === "string" && accept) f.accept = accept;
    }
    if (kind === "table") {
      f.fields = readObject(s.items as Json, (fu.items as Json | undefined) ?? {}, `${path}${name}.`, unsupported);
      if (s.minItems === 1) f.required = true;
      if (typeof s.maxItems === "number") f.max = s.maxItems;
    }
    if (kind === "section") f.fields = readObject(s, fu, `${path}${name}.`, unsupported);
    out.push(f);
  }
  return out;
}

export interface DesignProblem {
  path: string;
  message: string;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** What would make a bad form, said before saving (the server checks the schema again). */
export function lintForm(def: FormDef): DesignProblem[] {
  const problems: DesignProblem[] = [];
  if (!def.title.trim()) problems.push({ path: "title", message: "请填写表单标题" });
  const walk = (fields: FieldDef[], prefix: string) => {
    const seen = new Set<string>();
    for (const f of fields) {
      const at = prefix + f.name;
      if (!NAME.test(f.name)) problems.push({ path: at, message: "字段名只能用字母、数字和下划线，且不能以数字开头" });
      if (seen.has(f.name)) problems.push({ path: at, message: `字段名 ${f.name} 重复` });
      seen.add(f.name);
      if (!f.title.trim()) problems.push({ path: at, message: "请填写字段标题" });
      if (f.options !== undefined) {
        if (!f.options.length) problems.push({ path: at, message: "至少要有一个选项" });
        if (new Set(f.options).size !== f.options.length) problems.push({ path: at, message: "选项不能重复" });
        if (f.options.some((o) => !o.trim())) problems.push({ path: at, message: "选项不能为空" });
      }
      if (f.kind === "file" && prefix) problems.push({ path: at, message: "附件上传只能放在表单的第一层，不能放进表格或分组" });
      if (f.kind === "file" && f.max !== undefined && (!Number.isInteger(f.max) || f.max < 1))
        problems.push({ path: at, message: "最多文件数应为正整数" });
      if (f.min !== undefined && f.max !== undefined && f.min > f.max) problems.push({ path: at, message: "最小值不能大于最大值" });
      if (f.minLength !== undefined && f.maxLength !== undefined && f.minLength > f.maxLength)
        problems.push({ path: at, message: "最少字数不能大于最多字数" });
      if (f.pattern) {
        try {
          new RegExp(f.pattern, "u");
        } catch {
          problems.push({ path: at, message: "格式（正则表达式）写法有误" });
        }
      }
      if (f.kind === "table" && !(f.fields ?? []).length) problems.push({ path: at, message: "表格至少要有一列" });
      if (f.kind === "table" && (f.fields ?? []).some((c) => c.kind === "table" || c.kind === "section"))
        problems.push({ path: at, message: "表格的列不能再是表格或分组" });
      if (f.fields) walk(f.fields, at + ".");
    }
  };
  walk(def.fields, "");
  return problems;
}
