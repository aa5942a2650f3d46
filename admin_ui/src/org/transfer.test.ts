import { describe, expect, it } from "vitest";
import { ApiError } from "../api";
import { readAnswer } from "./transfer";

describe("the import's answer", () => {
  const report = { ok: false, dry_run: true, counts: {}, problems: [{ sheet: "人员", row: 2, column: "姓名", reason: "不能为空" }] };

  it("is the report when the server checked the rows (200, or 422 with the problems)", () => {
    expect(readAnswer(422, JSON.stringify({ title: "Invalid input", status: 422, detail: "工作簿有 1 处问题", ...report })))
      .toEqual(expect.objectContaining({ ok: false, problems: report.problems }));
    expect(readAnswer(200, JSON.stringify({ ...report, ok: true, problems: [] }))).toEqual(expect.objectContaining({ ok: true }));
  });

  it("is the refusal otherwise, in the server's words", () => {
    const big = readAnswer(413, JSON.stringify({ title: "Payload too large", detail: "文件超过 50 MB，请拆分后分批导入" }));
    expect(big).toBeInstanceOf(ApiError);
    expect((big as ApiError).detail).toBe("文件超过 50 MB，请拆分后分批导入");
    const denied = readAnswer(403, JSON.stringify({ detail: "没有权限：批量导入人员与组织（user.import）" }));
    expect((denied as ApiError).status).toBe(403);
    expect((readAnswer(502, "<html>bad gateway</html>") as ApiError).status).toBe(502);
  });
});
