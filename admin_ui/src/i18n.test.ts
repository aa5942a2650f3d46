import { describe, expect, it } from "vitest";
import { DICTIONARIES, translate } from "./i18n";

describe("the English dictionaries", () => {
  it("give one English text for each Chinese key, whichever area's file holds it", () => {
    const seen = new Map<string, [string, string]>();
    const clashes: string[] = [];
    for (const [area, dict] of Object.entries(DICTIONARIES))
      for (const [zh, en] of Object.entries(dict)) {
        const before = seen.get(zh);
        if (before && before[1] !== en) clashes.push(`${zh}: ${before[0]} "${before[1]}" ≠ ${area} "${en}"`);
        seen.set(zh, [area, en]);
      }
    expect(clashes).toEqual([]);
  });

  it("keep each {placeholder} of the Chinese text in the English", () => {
    const lost: string[] = [];
    for (const dict of Object.values(DICTIONARIES))
      for (const [zh, en] of Object.entries(dict)) {
        const names = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort().join(",");
        if (names(zh) !== names(en)) lost.push(`${zh} → ${en}`);
      }
    expect(lost).toEqual([]);
  });

  it("translate fills the placeholders and falls back to the Chinese text", () => {
    expect(translate("en", "{who} 代 {whom}", { who: "钱七", whom: "孙八" })).toBe("钱七 for 孙八");
    expect(translate("zh-CN", "{who} 代 {whom}", { who: "钱七", whom: "孙八" })).toBe("钱七 代 孙八");
    expect(translate("en", "没有这个词条")).toBe("没有这个词条");
  });
});
