import { describe, expect, it } from "vitest";
import { RuleError, describeRule, formatRule, parseRule } from "./ruleBuilder";
import bpmn from "../../../process_definitions/approval_chain/approval_chain.bpmn?raw";

describe("the assignment-rule builder", () => {
  it("reads every rule of the shipped approval chain and writes it back as it was", () => {
    const rules = [...bpmn.matchAll(/name="assignee" value="([^"]+)"/g)].map((m) => m[1]);
    const lanes = [...bpmn.matchAll(/<spiffworkflow:property name="(?:assignee|rule)" value="([^"]+)"/g)].map((m) => m[1]);
    const all = [...new Set([...rules, ...lanes])];
    expect(all.length).toBeGreaterThan(0);
    for (const text of all) expect(formatRule(parseRule(text))).toBe(text);
  });

  it("builds each kind of rule the DSL has", () => {
    expect(formatRule({ kind: "initiator" })).toBe("initiator");
    expect(formatRule({ kind: "user", name: "kezhang" })).toBe("user:kezhang");
    expect(formatRule({ kind: "position", name: "head", org: { base: "initiator", name: "department", parents: 0 } }))
      .toBe("position:head@initiator.department");
    expect(formatRule({ kind: "position", name: "secretary", org: { base: "initiator", name: "branch", parents: 1 } }))
      .toBe("position:secretary@initiator.branch.parent");
    expect(formatRule({ kind: "in_charge_of", org: { base: "initiator", name: "department", parents: 0 } }))
      .toBe("in_charge_of:initiator.department");
    expect(formatRule({ kind: "leaders", org: { base: "org", name: "sfj-cwk", parents: 0 }, levels: 3 }))
      .toBe("leaders:org:sfj-cwk:levels=3");
    expect(formatRule({ kind: "role", name: "org_admin", org: { base: "field", name: "branch", parents: 0 } }))
      .toBe("role:org_admin@field:branch");
    expect(formatRule({ kind: "field", name: "reviewer" })).toBe("field:reviewer");
  });

  it("round-trips through the text", () => {
    for (const text of ["leaders:initiator.unit:levels=2", "position:head@org:sfj.parent.parent", "in_charge_of:field:dept"])
      expect(formatRule(parseRule(text))).toBe(text);
  });

  it("names any username a person can have, as the server does", () => {
    for (const name of ["zhang.san", "10023", "li@sfj", "wang-wu_2"]) {
      expect(formatRule({ kind: "user", name })).toBe(`user:${name}`);
      expect(parseRule(`user:${name}`)).toEqual({ kind: "user", name });
    }
    expect(() => formatRule({ kind: "user", name: "zhang san" })).toThrow("请填写用户名");
    expect(() => formatRule({ kind: "user", name: "x" })).toThrow(RuleError);
    expect(() => parseRule("user:a b")).toThrow("名称不合法");
    expect(() => parseRule("field:a.b")).toThrow("名称不合法");
  });

  it("says what is missing instead of writing a rule the server refuses", () => {
    expect(() => formatRule({ kind: "position", org: { base: "initiator", name: "department", parents: 0 } })).toThrow("请填写职务标识");
    expect(() => formatRule({ kind: "position", name: "head" })).toThrow("请选择组织");
    expect(() => formatRule({ kind: "leaders", org: { base: "initiator", name: "unit", parents: 0 }, levels: 11 })).toThrow(RuleError);
    expect(() => parseRule("position:head")).toThrow("缺少 @<组织引用>");
    expect(() => parseRule("boss:me")).toThrow("未知的处理人规则类型");
    expect(() => parseRule("position:head@initiator.office")).toThrow("无法识别");
  });

  it("describes a rule in words for the panel", () => {
    expect(describeRule(parseRule("position:head@initiator.department"), { head: "负责人" })).toBe("发起人所在科室的负责人");
    expect(describeRule(parseRule("in_charge_of:initiator.department.parent"))).toBe("发起人所在科室的上级的分管领导");
    expect(describeRule(parseRule("leaders:initiator.department:levels=3"))).toBe("发起人所在科室起连续 3 级负责人");
  });
});
