import { describe, expect, it } from "vitest";
import { childKinds, filterTree, firstSelectable, fitsUnder, indexTree, nextOrder, pathTo, positionsFor, type TreeNode } from "./tree";

const node = (id: number, code: string, name: string, kind: string, parent: number | null, children: TreeNode[] = [],
              limited = false): TreeNode => ({ id, code, name, kind, kind_name: "", parent_id: parent, status: "active", limited, children });

// The demo's party tree as 吴十 (org_admin of 第一党支部) sees it: 机关党委 by name only.
const demo = [
  node(4, "sfj-jgdw", "机关党委", "party_committee", null, [
    node(5, "sfj-jgdw-zb1", "第一党支部", "branch", 4, [node(7, "sfj-jgdw-zb1-xz1", "第一党支部第一党小组", "party_group", 5)]),
    node(6, "sfj-jgdw-zb2", "第二党支部", "branch", 4),
  ], true),
  node(1, "sfj", "示范局", "unit", null, [node(2, "sfj-bgs", "办公室", "department", 1)], true),
];

describe("the org tree", () => {
  it("offers the kinds of unit that fit under a parent, as the server's PARENT_KINDS", () => {
    expect(childKinds("branch")).toEqual(["party_group"]);
    expect(childKinds("party_committee")).toEqual(["party_committee", "general_branch", "branch"]);
    expect(childKinds("unit")).toEqual(["unit", "department"]);
    expect(childKinds("party_group")).toEqual([]);
    expect(childKinds(null)).toEqual(["party_committee", "unit"]);
    expect(fitsUnder("branch", "general_branch")).toBe(true);
    expect(fitsUnder("branch", "unit")).toBe(false);
    expect(fitsUnder("department", null)).toBe(false);
  });

  it("names the posts of each kind with their local title", () => {
    expect(positionsFor("department").map((p) => p.name)).toEqual(["科长", "副科长"]);
    expect(positionsFor("unit").map((p) => p.name)).toEqual(["局长", "副局长"]);
    expect(positionsFor("party_group")).toEqual([{ key: "group_leader", name: "组长" }]);
    expect(positionsFor("branch").map((p) => p.key)).toContain("secretary");
  });

  it("finds nodes by id and code and the path down to one", () => {
    const index = indexTree(demo);
    expect(index.byCode.get("sfj-jgdw-zb1-xz1")?.id).toBe(7);
    expect(pathTo(index, 7).map((n) => n.name)).toEqual(["机关党委", "第一党支部", "第一党支部第一党小组"]);
    expect(pathTo(index, 99)).toEqual([]);
  });

  it("keeps the matches of a search with the ancestors that lead to them", () => {
    const hit = filterTree(demo, "党小组");
    expect(hit.map((n) => n.name)).toEqual(["机关党委"]);
    expect(hit[0].children?.map((n) => n.name)).toEqual(["第一党支部"]);
    expect(hit[0].children?.[0].children?.map((n) => n.code)).toEqual(["sfj-jgdw-zb1-xz1"]);
    expect(filterTree(demo, "SFJ-BGS").map((n) => n.code)).toEqual(["sfj"]);
    expect(filterTree(demo, "  ")).toBe(demo);
    expect(filterTree(demo, "不存在")).toEqual([]);
  });

  it("puts a new unit after its siblings", () => {
    expect(nextOrder([{ sort_order: 4 }, { sort_order: 6 }, { sort_order: 5 }])).toBe(7);
    expect(nextOrder([])).toBe(0);
  });

  it("selects the person's own unit first, never one shown by name only", () => {
    expect(firstSelectable(demo, [5, 2])?.code).toBe("sfj-jgdw-zb1");
    expect(firstSelectable(demo, [4, null])?.code).toBe("sfj-jgdw-zb1");
    expect(firstSelectable([node(1, "x", "x", "unit", null, [], true)])).toBeUndefined();
  });
});
