import { describe, expect, it } from "vitest";
import { fromSchema, lintForm, newField, toSchema, type FormDef } from "./schemaBuilder";
import { check } from "../validation";
import requestSchema from "../../../forms/approval_request/schema.json";
import requestUi from "../../../forms/approval_request/uischema.json";

const expense: FormDef = {
  title: "差旅报销",
  fields: [
    { name: "title", title: "事由", kind: "text", required: true, maxLength: 50, placeholder: "例如：赴省厅开会" },
    { name: "amount", title: "金额", kind: "money", required: true, min: 0, unit: "元", precision: 2 },
    { name: "kind", title: "类别", kind: "radio", options: ["交通", "住宿"], required: true },
    { name: "days", title: "日期", kind: "daterange" },
    { name: "tags", title: "标签", kind: "checkbox", options: ["紧急", "外地"] },
    { name: "with", title: "同行人", kind: "person" },
    { name: "lines", title: "明细", kind: "table", required: true, fields: [
      { name: "item", title: "项目", kind: "text", required: true },
      { name: "cost", title: "费用", kind: "money", min: 0, unit: "元", precision: 2 },
    ] },
    { name: "more", title: "补充", kind: "section", fields: [{ name: "note", title: "备注", kind: "textarea", maxLength: 200 }] },
  ],
};

describe("the schema builder", () => {
  it("builds a schema that accepts a good application and refuses a bad one", () => {
    const { schema } = toSchema(expense);
    const good = { title: "开会", amount: 320.5, kind: "交通", days: ["2026-12-01", "2026-12-03"], tags: ["紧急"],
                   with: "kezhang", lines: [{ item: "火车票", cost: 320.5 }], more: { note: "无" } };
    expect(check(schema, good)).toEqual([]);
    const bad = { title: "开会", amount: -1, kind: "餐饮", lines: [], more: { note: "长".repeat(201) } };
    expect(check(schema, bad).map((e) => `${e.property} ${e.name}`).sort()).toEqual(
      [".amount minimum", ".kind enum", ".lines minItems", ".more.note maxLength"]);
  });

  it("writes the order, widgets and options the renderer needs", () => {
    const { schema, uiSchema } = toSchema(expense);
    expect(schema.$schema).toBe("https://json-schema.org/draft/2020-12/schema");
    expect(schema.required).toEqual(["title", "amount", "kind", "lines"]);
    expect(uiSchema["ui:order"]).toEqual(expense.fields.map((f) => f.name));
    expect(uiSchema.amount).toEqual({ "ui:widget": "money", "ui:options": { unit: "元", precision: 2 } });
    expect(uiSchema.title).toEqual({ "ui:placeholder": "例如：赴省厅开会" });
    expect((uiSchema.lines as Record<string, unknown>).items).toMatchObject({ "ui:order": ["item", "cost"] });
  });

  it("reads its own output back unchanged", () => {
    const { schema, uiSchema } = toSchema(expense);
    const back = fromSchema(schema, uiSchema);
    expect(back.unsupported).toEqual([]);
    expect(back.def).toEqual(expense);
  });

  it("opens the shipped approval_request form and saves it back equivalent", () => {
    const { def, unsupported } = fromSchema(requestSchema, requestUi);
    expect(unsupported).toEqual([]);
    expect(def.fields.map((f) => `${f.name}:${f.kind}`)).toEqual(
      ["title:text", "category:select", "amount:money", "reason:textarea", "expected_date:date"]);
    const again = toSchema(def);
    expect(again.schema.required).toEqual(requestSchema.required);
    expect((again.schema.properties as Record<string, unknown>).amount).toEqual(requestSchema.properties.amount);
  });

  it("lists what it cannot show instead of dropping it silently", () => {
    const { unsupported } = fromSchema({ type: "object", properties: { a: { oneOf: [{ type: "string" }, { type: "number" }] } } });
    expect(unsupported).toEqual(["a"]);
  });

  it("refuses duplicate or invalid names, empty options and min above max", () => {
    const problems = lintForm({ title: "", fields: [
      { name: "a", title: "A", kind: "text" }, { name: "a", title: "A2", kind: "text" },
      { name: "1x", title: "B", kind: "number", min: 5, max: 1 }, { name: "c", title: "C", kind: "select", options: [] },
      { name: "t", title: "T", kind: "table", fields: [] },
    ] });
    expect(problems.map((p) => `${p.path}: ${p.message}`)).toEqual([
      "title: 请填写表单标题", "a: 字段名 a 重复", "1x: 字段名只能用字母、数字和下划线，且不能以数字开头",
      "1x: 最小值不能大于最大值", "c: 至少要有一个选项", "t: 表格至少要有一列",
    ]);
    expect(lintForm(expense)).toEqual([]);
  });

  it("gives each new field a name that is not taken", () => {
    expect(newField("text", ["field_2", "x"]).name).toBe("field_3");
    expect(newField("select", []).options).toEqual(["选项一", "选项二"]);
  });
});

describe("opening a form never loses what the designer cannot show", () => {
  it("lists fields with keywords it does not model, and the form's own extra keywords", () => {
    const schema = { type: "object", $defs: { x: {} }, properties: {
      a: { type: "string", title: "A", default: "x" },
      b: { type: "string", enum: ["1", "2"] },
      c: { type: "integer", enum: [1, 2] },
      d: { type: "string", format: "email" },
      e: { type: "integer", minimum: 0 },
      f: { type: "string" },
    } };
    const { def, unsupported } = fromSchema(schema, { f: { "ui:widget": "textarea", "ui:options": { rows: 6, autofocus: true } } });
    expect(unsupported).toEqual(["（表单）$defs", "a", "c", "d", "f"]);
    expect(def.fields.map((x) => x.name)).toEqual(["b", "e"]);
    expect(def.fields[1]).toMatchObject({ kind: "number", integer: true, min: 0 });
  });

  it("keeps integers integers and textarea rows through a round trip", () => {
    const { def } = fromSchema({ type: "object", properties: { n: { type: "integer", title: "人数", minimum: 1 }, t: { type: "string", title: "说明" } } },
                               { t: { "ui:widget": "textarea", "ui:options": { rows: 5 } } });
    const again = toSchema({ title: "x", fields: def.fields });
    expect((again.schema.properties as Record<string, unknown>).n).toEqual({ title: "人数", type: "integer", minimum: 1 });
    expect(again.uiSchema.t).toEqual({ "ui:widget": "textarea", "ui:options": { rows: 5 } });
  });
});

describe("the file-upload field", () => {
  const form: FormDef = {
    title: "用印申请",
    fields: [
      { name: "title", title: "事项", kind: "text", required: true },
      { name: "files", title: "申请材料", kind: "file", required: true, max: 3, accept: ".pdf,.docx" },
      { name: "extra", title: "补充材料", kind: "file" },
    ],
  };

  it("stores attachment ids as an array of integers with the upload widget and its options", () => {
    const { schema, uiSchema } = toSchema(form);
    const props = schema.properties as Record<string, unknown>;
    expect(props.files).toEqual({ title: "申请材料", type: "array", items: { type: "integer" }, uniqueItems: true,
                                  minItems: 1, maxItems: 3 });
    expect(props.extra).toEqual({ title: "补充材料", type: "array", items: { type: "integer" }, uniqueItems: true });
    expect(uiSchema.files).toEqual({ "ui:widget": "attachments", "ui:options": { accept: ".pdf,.docx" } });
    expect(uiSchema.extra).toEqual({ "ui:widget": "attachments" });
    expect(schema.required).toEqual(["title", "files"]);
  });

  it("validates what the renderer submits: ids, how many, no repeats, required", () => {
    const { schema } = toSchema(form);
    expect(check(schema, { title: "x", files: [12, 13] })).toEqual([]);
    const errs = (data: unknown) => check(schema, data).map((e) => `${e.property} ${e.name}`).sort();
    expect(errs({ title: "x", files: [] })).toEqual([".files minItems"]);
    expect(errs({ title: "x", files: [1, 2, 3, 4] })).toEqual([".files maxItems"]);
    expect(errs({ title: "x", files: [5, 5] })).toEqual([".files uniqueItems"]);
    expect(errs({ title: "x", files: ["报告.pdf"] })).toEqual([".files.0 type"]);
    expect(errs({ title: "x" })).toEqual([".files required"]);
  });

  it("reopens in the designer unchanged (build → schema → reopen)", () => {
    const { schema, uiSchema } = toSchema(form);
    const back = fromSchema(JSON.parse(JSON.stringify(schema)), JSON.parse(JSON.stringify(uiSchema)));
    expect(back.unsupported).toEqual([]);
    expect(back.def).toEqual(form);
    expect(toSchema(back.def)).toEqual(toSchema(form));
  });

  it("starts with a limit of five files and refuses one inside a table or a section", () => {
    expect(newField("file", [])).toMatchObject({ kind: "file", max: 5, title: "附件上传" });
    const nested: FormDef = { title: "x", fields: [
      { name: "s", title: "分组", kind: "section", fields: [{ name: "f", title: "附件", kind: "file" }] },
      { name: "g", title: "附件", kind: "file", max: 0 },
    ] };
    expect(lintForm(nested).map((p) => `${p.path} ${p.message}`)).toEqual([
      "s.f 附件上传只能放在表单的第一层，不能放进表格或分组", "g 最多文件数应为正整数"]);
  });

  it("leaves a hand-written variant it cannot show exactly to the JSON editor", () => {
    const { unsupported } = fromSchema({ type: "object", properties: {
      a: { type: "array", items: { type: "string" }, uniqueItems: true },
      b: { type: "array", items: { type: "integer" }, uniqueItems: true, minItems: 2 },
      c: { type: "array", items: { type: "integer" }, uniqueItems: true },
    } }, { a: { "ui:widget": "attachments" }, b: { "ui:widget": "attachments" },
           c: { "ui:widget": "attachments", "ui:options": { accept: ".pdf", multiple: false } } });
    expect(unsupported).toEqual(["a", "b", "c"]);
  });
});
