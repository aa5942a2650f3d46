import { describe, expect, it } from "vitest";
import { check, localiseErrors, validator } from "./validation";
import request from "../../forms/approval_request/schema.json";

describe("the form validator (no eval, so the page's CSP holds)", () => {
  it("accepts a complete application of the shipped approval_request form", () => {
    const ok = { title: "差旅", category: "差旅", amount: 1200.5, reason: "开会", expected_date: "2026-12-01" };
    expect(check(request, ok)).toEqual([]);
  });

  it("names each missing required field and each bound, in Chinese", () => {
    const errors = localiseErrors(check(request, { title: "", amount: -1, category: "旅游" }), "zh-CN");
    const by = Object.fromEntries(errors.map((e) => [e.property, e.message]));
    expect(by[".title"]).toBe("至少 1 个字符");
    expect(by[".reason"]).toBe("必填");
    expect(by[".amount"]).toBe("不能小于 0");
    expect(by[".category"]).toBe("请从选项中选择");
  });

  it("keeps English messages when the user chose English", () => {
    const [e] = localiseErrors(check({ type: "string", maxLength: 3 }, "四个字符"), "en");
    expect(e.message).toBe("must have at most 3 characters");
  });

  it("counts characters, not UTF-16 units, for length limits", () => {
    expect(check({ type: "string", maxLength: 2 }, "😀😀")).toEqual([]);
  });

  it("checks rows of a table (array of objects) with their paths", () => {
    const schema = { type: "object", properties: { lines: { type: "array", minItems: 1,
      items: { type: "object", required: ["item"], properties: { item: { type: "string" }, cost: { type: "number", maximum: 100 } } } } } };
    const errors = check(schema, { lines: [{ item: "纸", cost: 5 }, { cost: 500 }] });
    expect(errors.map((e) => `${e.property} ${e.name}`).sort()).toEqual([".lines.1.cost maximum", ".lines.1.item required"]);
    expect(check(schema, { lines: [] }).map((e) => e.name)).toEqual(["minItems"]);
  });

  it("follows local $ref, formats and patterns", () => {
    const schema = { $defs: { day: { type: "string", format: "date" } }, type: "object",
      properties: { d: { $ref: "#/$defs/day" }, code: { type: "string", pattern: "^[0-9]{6}$" } } };
    expect(check(schema, { d: "2026-13-01", code: "12a456" }).map((e) => e.name).sort()).toEqual(["format", "pattern"]);
    expect(check(schema, { d: "2026-12-31", code: "123456" })).toEqual([]);
  });

  it("gives RJSF an error schema keyed by field", () => {
    const { errorSchema } = validator.validateFormData({ amount: "x" }, request as never);
    expect(Object.keys(errorSchema).sort()).toEqual(["amount", "category", "reason", "title"]);
  });

  it("words a file field's problems as uploads, and leaves other arrays as they were", () => {
    const schema = { type: "object", required: ["papers"], properties: {
      papers: { type: "array", items: { type: "integer" }, uniqueItems: true, maxItems: 2 },
      extra: { type: "array", items: { type: "integer" }, uniqueItems: true, minItems: 1 },
      tags: { type: "array", items: { type: "string" }, maxItems: 1 } } };
    const ui = { papers: { "ui:widget": "attachments" }, extra: { "ui:widget": "attachments" } };
    const by = (data: unknown) => Object.fromEntries(localiseErrors(check(schema, data), "zh-CN", ui).map((e) => [e.property, e.message]));
    expect(by({})).toEqual({ ".papers": "请上传附件" });
    expect(by({ papers: [1, 2, 3], extra: [], tags: ["a", "b"] })).toEqual(
      { ".papers": "最多上传 2 个文件", ".extra": "至少上传 1 个文件", ".tags": "最多 1 项" });
    expect(by({ papers: [4, 4] })).toEqual({ ".papers": "同一文件不能重复添加" });
    expect(localiseErrors(check(schema, {}), "en", ui)[0].message).toBe("is a required property");
  });
});
