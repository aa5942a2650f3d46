import { describe, expect, it } from "vitest";
import dayjs from "dayjs";
import { dayRange, when } from "./format";
import { taskQuery } from "./pages/Inbox";

describe("dayRange", () => {
  it("covers whole days up to the midnight after the last one, which an exclusive bound leaves out", () => {
    const r = dayRange("2026-03-10", "2026-03-10");
    expect(r.from).toBe(dayjs("2026-03-10T00:00:00").toISOString());
    expect(r.to).toBe(dayjs("2026-03-11T00:00:00").toISOString());
    // a task at 23:59:59.5 on the last day is inside [from, to)
    const late = dayjs("2026-03-10T23:59:59.500").toISOString();
    expect(late >= r.from! && late < r.to!).toBe(true);
  });

  it("leaves an open end open", () => {
    expect(dayRange(undefined, "2026-03-10").from).toBeUndefined();
    expect(dayRange("2026-03-10", null).to).toBeUndefined();
  });

  it("is what the inbox sends for arrival days", () => {
    const q = taskQuery("mine", { from: "2026-03-10", to: "2026-03-12" });
    expect([q.arrived_from, q.arrived_to]).toEqual([dayRange("2026-03-10", "2026-03-12").from, dayRange("2026-03-10", "2026-03-12").to]);
  });
});

describe("when", () => {
  it("shows a time to the minute in the browser's zone, and nothing for none", () => {
    expect(when(dayjs("2026-03-10T23:30:00").toISOString())).toBe("2026-03-10 23:30");
    expect(when(null)).toBe("");
  });
});
