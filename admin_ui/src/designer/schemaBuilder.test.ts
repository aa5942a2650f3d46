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
