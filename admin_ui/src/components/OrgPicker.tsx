import { useCallback, useEffect, useState } from "react";
import { TreeSelect } from "antd";
import { api, type S } from "../api";
import { useT } from "../i18n";

interface TreeNode {
  id: number;
  name: string;
  children?: TreeNode[] | null;
}
export interface OrgOption {
  value: number;
  title: string;
  children: OrgOption[];
}

const toOptions = (nodes: TreeNode[]): OrgOption[] =>
  nodes.map((n) => ({ value: n.id, title: n.name, children: toOptions(n.children ?? []) }));

/** The org tree as TreeSelect options: "scoped" is what the user may read (GET /api/org-units/tree),
 * "directory" every active unit by name (GET /api/directory/orgs, the person picker's and the role
 * grant's). `lazy` loads it on the first `load(true)` (a dropdown opening) instead of at once. */
export function useOrgOptions(source: "scoped" | "directory", lazy = false): [OrgOption[] | null, (open: boolean) => void] {
  const [tree, setTree] = useState<OrgOption[] | null>(null);
  const [asked, setAsked] = useState(!lazy);
  useEffect(() => {
    if (!asked) return;
    let live = true;
    api.get<(S["OrgNode"] | S["DirectoryOrg"])[]>(source === "scoped" ? "/org-units/tree" : "/directory/orgs")
      .then((n) => live && setTree(toOptions(n))).catch(() => live && setTree([]));
    return () => {
      live = false;
    };
  }, [asked, source]);
  return [tree, useCallback((open: boolean) => open && setAsked(true), [])];
}

/** Pick a unit, department or Party organisation from the org tree the user may read (or, with
 * source="directory", from every unit by name). */
export function OrgPicker({ id, value, onChange, disabled, source = "scoped" }: {
  id?: string;
  value?: number;
  onChange?: (v: number | undefined) => void;
  disabled?: boolean;
  source?: "scoped" | "directory";
}) {
  const t = useT();
  const [tree] = useOrgOptions(source);
  return (
    <TreeSelect id={id} data-testid="org-picker" style={{ width: "100%" }} value={value} disabled={disabled} treeData={tree ?? []}
                treeDefaultExpandAll allowClear showSearch treeNodeFilterProp="title" placeholder={t("选择组织")}
                onChange={(v) => onChange?.(v ?? undefined)} />
  );
}
