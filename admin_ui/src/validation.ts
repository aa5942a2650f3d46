// The form renderer's validator. RJSF's ajv8 validator compiles each schema with `new Function`,
// which the app's Content-Security-Policy (script-src 'self', no 'unsafe-eval') forbids; this one
// interprets the JSON Schema keywords djflow's forms use instead. The server validates every
// submission again with the full `jsonschema` (Draft 2020-12) and its field problems are shown too,
// so this is the quick, friendly first check, not the authority.
import { toErrorSchema, type ErrorSchema, type RJSFValidationError, type ValidationData, type ValidatorType } from "@rjsf/utils";

type Json = Record<string, unknown>;
type Schema = Json | boolean;

function typeOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v;
}

function typeMatches(expected: string, v: unknown): boolean {
  const actual = typeOf(v);
  return expected === actual || (expected === "number" && actual === "integer");
}

function equal(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

const FORMATS: Record<string, RegExp> = {
  date: /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/,
  "date-time": /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/,
  time: /^\d{2}:\d{2}(:\d{2})?$/,
  email: /^[^\s@]+@[^\s@]+\.[^\s@]+$/,
  uri: /^[a-zA-Z][a-zA-Z\d+.-]*:\S+$/,
};

function resolve(schema: Schema, root: Json): Schema {
  let s = schema;
  for (let depth = 0; typeof s === "object" && typeof s.$ref === "string" && depth < 32; depth++) {
    const ref = s.$ref as string;
    if (!ref.startsWith("#")) return true; // an outside reference: the server checks it
    let target: unknown = root;
    for (const part of ref.slice(1).split("/").filter(Boolean)) {
      target = (target as Json | undefined)?.[decodeURIComponent(part).replace(/~1/g, "/").replace(/~0/g, "~")];
    }
    const { $ref: _r, ...rest } = s;
    void _r;
    s = { ...((target as Json) ?? {}), ...rest };
  }
  return s;
}

/** Every problem of `data` against `schema`, each with its property path (".items.0.amount"). */
export function check(schema: Schema, data: unknown, root: Json = typeof schema === "object" ? schema : {}, path = ""): RJSFValidationError[] {
  const s = resolve(schema, root);
  if (s === true) return [];
  if (s === false) return [problem(path, "false", {}, "is not allowed")];
  const out: RJSFValidationError[] = [];
  const add = (name: string, params: Json, message: string) => out.push(problem(path, name, params, message));
  if (data === undefined) return out;
  const types = s.type === undefined ? [] : Array.isArray(s.type) ? (s.type as string[]) : [s.type as string];
  if (types.length && !types.some((t) => typeMatches(t, data))) {
    add("type", { type: types.join(",") }, `must be ${types.join(" or ")}`);
    return out;
  }
  if (Array.isArray(s.enum) && !s.enum.some((e) => equal(e, data))) add("enum", { allowedValues: s.enum }, "must be one of the options");
  if ("const" in s && !equal(s.const, data)) add("const", { allowedValue: s.const }, "must be the fixed value");
  if (typeof data === "string") {
    const n = [...data].length;
    if (typeof s.minLength === "number" && n < s.minLength) add("minLength", { limit: s.minLength }, `must have at least ${s.minLength} characters`);
    if (typeof s.maxLength === "number" && n > s.maxLength) add("maxLength", { limit: s.maxLength }, `must have at most ${s.maxLength} characters`);
    if (typeof s.pattern === "string") {
      let re: RegExp | null = null;
      try {
        re = new RegExp(s.pattern, "u");
      } catch {
        re = null; // a pattern JavaScript cannot read is left to the server
      }
      if (re && !re.test(data)) add("pattern", { pattern: s.pattern }, "does not match the required pattern");
    }
    if (typeof s.format === "string" && FORMATS[s.format] && !FORMATS[s.format].test(data)) add("format", { format: s.format }, `must be a valid ${s.format}`);
  }
  if (typeof data === "number") {
    if (typeof s.minimum === "number" && data < s.minimum) add("minimum", { limit: s.minimum, comparison: ">=" }, `must be >= ${s.minimum}`);
    if (typeof s.maximum === "number" && data > s.maximum) add("maximum", { limit: s.maximum, comparison: "<=" }, `must be <= ${s.maximum}`);
    if (typeof s.exclusiveMinimum === "number" && data <= s.exclusiveMinimum) add("exclusiveMinimum", { limit: s.exclusiveMinimum, comparison: ">" }, `must be > ${s.exclusiveMinimum}`);
    if (typeof s.exclusiveMaximum === "number" && data >= s.exclusiveMaximum) add("exclusiveMaximum", { limit: s.exclusiveMaximum, comparison: "<" }, `must be < ${s.exclusiveMaximum}`);
    if (typeof s.multipleOf === "number" && s.multipleOf > 0) {
      const q = data / s.multipleOf;
      if (Math.abs(q - Math.round(q)) > 1e-9) add("multipleOf", { multipleOf: s.multipleOf }, `must be a multiple of ${s.multipleOf}`);
    }
  }
  if (Array.isArray(data)) {
    if (typeof s.minItems === "number" && data.length < s.minItems) add("minItems", { limit: s.minItems }, `must have at least ${s.minItems} items`);
    if (typeof s.maxItems === "number" && data.length > s.maxItems) add("maxItems", { limit: s.maxItems }, `must have at most ${s.maxItems} items`);
    if (s.uniqueItems === true && new Set(data.map((d) => JSON.stringify(d))).size !== data.length) add("uniqueItems", {}, "must not repeat items");
    const prefix = Array.isArray(s.prefixItems) ? (s.prefixItems as Schema[]) : [];
    data.forEach((item, i) => {
      const sub = i < prefix.length ? prefix[i] : (s.items as Schema | undefined);
      if (sub !== undefined && !Array.isArray(sub)) out.push(...check(sub, item, root, `${path}.${i}`));
    });
  }
  if (typeOf(data) === "object") {
    const obj = data as Json;
    for (const name of (s.required as string[] | undefined) ?? []) {
      if (obj[name] === undefined)
        out.push(problem(`${path}.${name}`, "required", { missingProperty: name }, "is a required property"));
    }
    const props = (s.properties as Record<string, Schema> | undefined) ?? {};
    for (const [name, sub] of Object.entries(props)) if (name in obj) out.push(...check(sub, obj[name], root, `${path}.${name}`));
    if (s.additionalProperties === false)
      for (const name of Object.keys(obj)) if (!(name in props)) add("additionalProperties", { additionalProperty: name }, `must not have ${name}`);
  }
  for (const sub of (s.allOf as Schema[] | undefined) ?? []) out.push(...check(sub, data, root, path));
  if (Array.isArray(s.anyOf) && !s.anyOf.some((sub) => check(sub as Schema, data, root, path).length === 0)) add("anyOf", {}, "must match one of the choices");
  if (Array.isArray(s.oneOf) && s.oneOf.filter((sub) => check(sub as Schema, data, root, path).length === 0).length !== 1) add("oneOf", {}, "must match exactly one of the choices");
  if (s.if !== undefined) {
    const branch = check(s.if as Schema, data, root, path).length === 0 ? s.then : s.else;
    if (branch !== undefined) out.push(...check(branch as Schema, data, root, path));
  }
  return out;
}

function problem(property: string, name: string, params: Json, message: string): RJSFValidationError {
  return { name, property, params, message, stack: `${property || "."} ${message}`.trim(), schemaPath: "" };
}

const ZH: Record<string, (p: Json) => string> = {
  required: () => "必填",
  minLength: (p) => `至少 ${p.limit} 个字符`,
  maxLength: (p) => `最多 ${p.limit} 个字符`,
  minimum: (p) => `不能小于 ${p.limit}`,
  maximum: (p) => `不能大于 ${p.limit}`,
  exclusiveMinimum: (p) => `须大于 ${p.limit}`,
  exclusiveMaximum: (p) => `须小于 ${p.limit}`,
  multipleOf: (p) => `须为 ${p.multipleOf} 的整数倍`,
  minItems: (p) => `至少 ${p.limit} 项`,
  maxItems: (p) => `最多 ${p.limit} 项`,
  uniqueItems: () => "不能有重复项",
  type: () => "格式不对",
  enum: () => "请从选项中选择",
  const: () => "取值不对",
  format: (p) => (p.format === "date" ? "请填写日期（年-月-日）" : p.format === "email" ? "请填写有效的电子邮箱" : "格式不对"),
  pattern: () => "格式不对",
  additionalProperties: (p) => `不应有字段 ${p.additionalProperty}`,
  anyOf: () => "不符合任何一种选项",
  oneOf: () => "须且只能符合一种选项",
};

// What a file field (uiSchema "ui:widget": "attachments") says when it is empty or holds too many.
const FILES_ZH: Record<string, (p: Json) => string> = {
  required: () => "请上传附件",
  minItems: (p) => `至少上传 ${p.limit} 个文件`,
  maxItems: (p) => `最多上传 ${p.limit} 个文件`,
  uniqueItems: () => "同一文件不能重复添加",
};

function isFileField(property: string | undefined, uiSchema: Json | undefined): boolean {
  let ui: unknown = uiSchema;
  for (const part of (property ?? "").split(".").filter(Boolean)) ui = (ui as Json | undefined)?.[/^\d+$/.test(part) ? "items" : part];
  return (ui as Json | undefined)?.["ui:widget"] === "attachments";
}

/** Validation messages in Chinese unless the user chose English (with the uiSchema, a file
 * field's own wording). */
export function localiseErrors(errors: RJSFValidationError[], lang: string, uiSchema?: Json): RJSFValidationError[] {
  if (lang === "en") return errors;
  return errors.map((e) => {
    const files = e.name && FILES_ZH[e.name] && isFileField(e.property, uiSchema) ? FILES_ZH[e.name] : null;
    const zh = files ? files((e.params ?? {}) as Json) : e.name && ZH[e.name] ? ZH[e.name]((e.params ?? {}) as Json) : e.message;
    return { ...e, message: zh, stack: `${e.property ?? ""} ${zh}`.trim() };
  });
}

export const validator: ValidatorType = {
  validateFormData(formData, schema, _customValidate, transformErrors, uiSchema): ValidationData<unknown> {
    let errors = check(schema as Json, formData ?? {});
    if (transformErrors) errors = transformErrors(errors, uiSchema);
    return { errors, errorSchema: toErrorSchema(errors) as ErrorSchema };
  },
  isValid(schema, formData, rootSchema) {
    return check(schema as Json, formData, rootSchema as Json).length === 0;
  },
  rawValidation(schema, formData) {
    return { errors: check(schema as Json, formData) as never[] };
  },
};
