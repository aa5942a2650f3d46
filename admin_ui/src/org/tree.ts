// The org tree as the page uses it: nodes by id, searching, and which kinds of unit and which
// posts fit where. The structure mirrors engine/org/checks.py (PARENT_KINDS) and
// engine/org/positions.py (POSITION_KEYS); the server checks them again and has the last word,
// and tests/engine/test_org_rules_in_the_web_app.py fails when the two say different things.

export interface TreeNode {
  id: number;
  code: string;
  name: string;
  kind: string;
  kind_name: string;
  parent_id: number | null;
  status: string;
  limited: boolean;
  children?: TreeNode[];
}

export const KIND_NAMES: Record<string, string> = {
  party_committee: "党委", general_branch: "党总支", branch: "党支部", party_group: "党小组",
  unit: "单位", department: "科室",
};
export const PARTY_KINDS = ["party_committee", "general_branch", "branch", "party_group"];
export const ADMIN_KINDS = ["unit", "department"];

/** Kinds of unit each kind may sit under; null: it may be a root. */
const PARENT_KINDS: Record<string, (string | null)[]> = {
  party_group: ["branch"],
  branch: ["general_branch", "party_committee"],
  general_branch: ["party_committee"],
  party_committee: ["party_committee", null],
  department: ["unit", "department"],
  unit: ["unit", null],
};

/** The kinds a new unit may have under a parent of `parentKind` (null: a root). */
export function childKinds(parentKind: string | null): string[] {
  return Object.keys(PARENT_KINDS).filter((k) => PARENT_KINDS[k].includes(parentKind))
    .sort((a, b) => order(a) - order(b));
}

/** Whether a unit of `kind` may move under a parent of `parentKind` (null: become a root). */
export function fitsUnder(kind: string, parentKind: string | null): boolean {
  return (PARENT_KINDS[kind] ?? []).includes(parentKind);
}

const order = (kind: string) => Object.keys(KIND_NAMES).indexOf(kind);

const COMMITTEE_KINDS = ["party_committee", "general_branch", "branch"];
/** Posts by key, with the kinds of unit that have them and the usual title per kind. */
export const POSITION_KEYS: { key: string; name: string; kinds: string[]; titles?: Record<string, string> }[] = [
  { key: "secretary", name: "书记", kinds: COMMITTEE_KINDS },
  { key: "deputy_secretary", name: "副书记", kinds: COMMITTEE_KINDS },
  { key: "organization_member", name: "组织委员", kinds: COMMITTEE_KINDS },
  { key: "propaganda_member", name: "宣传委员", kinds: COMMITTEE_KINDS },
  { key: "discipline_member", name: "纪检委员", kinds: COMMITTEE_KINDS },
  { key: "committee_member", name: "委员", kinds: COMMITTEE_KINDS },
  { key: "group_leader", name: "组长", kinds: ["party_group"] },
  { key: "head", name: "负责人", kinds: ADMIN_KINDS, titles: { unit: "局长", department: "科长" } },
  { key: "deputy_head", name: "副职", kinds: ADMIN_KINDS, titles: { unit: "副局长", department: "副科长" } },
];

/** The posts a unit of `kind` has, each with its title there (科长 in a 科室). */
export function positionsFor(kind: string): { key: string; name: string }[] {
  return POSITION_KEYS.filter((p) => p.kinds.includes(kind)).map((p) => ({ key: p.key, name: p.titles?.[kind] ?? p.name }));
}

export interface Indexed<N extends TreeNode> {
  byId: Map<number, N>;
  byCode: Map<string, N>;
}

/** Every node by id and by code. */
export function indexTree<N extends TreeNode>(roots: N[]): Indexed<N> {
  const byId = new Map<number, N>();
  const byCode = new Map<string, N>();
  const walk = (nodes: N[]) => {
    for (const n of nodes) {
      byId.set(n.id, n);
      byCode.set(n.code, n);
      walk((n.children ?? []) as N[]);
    }
  };
  walk(roots);
  return { byId, byCode };
}

/** The nodes from the root down to `id` (empty when it is not in the tree). */
export function pathTo<N extends TreeNode>(index: Indexed<N>, id: number): N[] {
  const out: N[] = [];
  for (let n = index.byId.get(id); n; n = n.parent_id == null ? undefined : index.byId.get(n.parent_id)) {
    out.unshift(n);
    if (out.length > 64) break; // a cycle would be a server bug; never loop on it
  }
  return out;
}

/** The subtrees whose name or code contains `q` (case-insensitive), with the ancestors that lead to
 * them; the whole tree for an empty query. */
export function filterTree<N extends TreeNode>(roots: N[], q: string): N[] {
  const needle = q.trim().toLowerCase();
  if (!needle) return roots;
  const keep = (n: N): N | null => {
    if (n.name.toLowerCase().includes(needle) || n.code.toLowerCase().includes(needle)) return n;
    const children = ((n.children ?? []) as N[]).map(keep).filter((c): c is N => c !== null);
    return children.length ? { ...n, children } : null;
  };
  return roots.map(keep).filter((n): n is N => n !== null);
}

/** A sort order that puts a new unit after its siblings. */
export function nextOrder(siblings: { sort_order: number }[]): number {
  return siblings.reduce((m, n) => Math.max(m, n.sort_order + 1), 0);
}

/** The first unit the person may manage, for the initial selection: their own branch or
 * department when readable in full, else the first full node in tree order. */
export function firstSelectable<N extends TreeNode>(roots: N[], prefer: (number | null | undefined)[] = []): N | undefined {
  const index = indexTree(roots);
  for (const id of prefer) {
    const n = id == null ? undefined : index.byId.get(id);
    if (n && !n.limited) return n;
  }
  for (const n of index.byId.values()) if (!n.limited) return n;
  return undefined;
}
