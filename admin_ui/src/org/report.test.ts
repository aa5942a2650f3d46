import { describe, expect, it } from "vitest";
import { fileName } from "../api";
import { countRows, distinct, searchProblems, sortProblems, written, type RowProblem } from "./report";

const p = (sheet: string, row: number, column: string, reason: string): RowProblem => ({ sheet, row, column, reason });

describe("the import report", () => {
  const problems = [
    p("人员", 3, "身份证号", "身份证号校验位不正确"),
    p("组织", 4, "上级编码", "没有编码为 x 的组织"),
    p("人员", 2, "党员状态", "「群众x」不是可用的状态"),
    p("职务", 2, "职务", "「主席」不是可用的职务"),
  ];

  it("lists problems in workbook order: sheet as in the workbook, then row", () => {
    expect(sortProblems(problems).map((x) => `${x.sheet}${x.row}`)).toEqual(["组织4", "人员2", "人员3", "职务2"]);
    expect(sortProblems([p("人员", 2, "姓名", "a"), p("", 0, "", "无法读取")])[0].reason).toBe("无法读取");
  });

  it("offers each sheet and column once as a filter", () => {
    expect(distinct(problems, "sheet")).toEqual(["人员", "组织", "职务"]);
    expect(distinct(problems, "column")).toEqual(["身份证号", "上级编码", "党员状态", "职务"]);
  });

  it("searches the reason, the column and the row number", () => {
    expect(searchProblems(problems, "校验位").map((x) => x.row)).toEqual([3]);
    expect(searchProblems(problems, "2").map((x) => x.sheet)).toEqual(["人员", "职务"]);
    expect(searchProblems(problems, "")).toBe(problems);
  });

  it("counts rows per sheet in workbook order, and what a real import wrote", () => {
    const counts = { 人员: { created: 2, updated: 1, unchanged: 0 }, 组织: { created: 1, updated: 0, unchanged: 5 },
      职务: { created: 0, updated: 0, unchanged: 0 } };
    expect(countRows(counts).map((c) => c.sheet)).toEqual(["组织", "人员", "职务"]);
    expect(written(counts)).toBe(4);
    expect(written({})).toBe(0);
  });

  it("reads the Chinese file name Starlette sends as filename*", () => {
    const header = "attachment; filename*=utf-8''%E4%BA%BA%E5%91%98%E4%B8%8E%E7%BB%84%E7%BB%87.xlsx";
    expect(fileName(header, "x")).toBe("人员与组织.xlsx");
    expect(fileName('attachment; filename="people.xlsx"', "x")).toBe("people.xlsx");
    expect(fileName(null, "人员与组织.xlsx")).toBe("人员与组织.xlsx");
  });
});
