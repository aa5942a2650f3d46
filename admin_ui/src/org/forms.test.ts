import { describe, expect, it } from "vitest";
import { changedFields, placeProblems } from "./forms";

describe("an edit sends what changed", () => {
  it("leaves out unchanged and still-blank fields and clears emptied ones with null", () => {
    const before = { display_name: "赵六", email: null, phone: "138****0004", member_code: "SFJ-0004" };
    expect(changedFields(before, { display_name: "赵六", email: "", member_code: "" })).toEqual({ member_code: null });
    expect(changedFields(before, { display_name: "赵六六", email: "z@example.cn" }))
      .toEqual({ display_name: "赵六六", email: "z@example.cn" });
    expect(changedFields({}, { party_status: undefined })).toEqual({});
  });
});

describe("the server's field problems", () => {
  it("go to the form field they name, the rest to the form's error line", () => {
    const { placed, rest } = placeProblems([
      { field: "code", message: "已存在" },
      { field: "body/name", message: "名称不能为空" },
      { field: "parent_id", message: "党小组只能设在党支部之下" },
      { field: "", message: "其他问题" },
    ], ["code", "name", "parent"], { parent_id: "parent" });
    expect(placed).toEqual([{ name: "code", errors: ["已存在"] }, { name: "name", errors: ["名称不能为空"] },
      { name: "parent", errors: ["党小组只能设在党支部之下"] }]);
    expect(rest).toEqual(["其他问题"]);
  });
});
