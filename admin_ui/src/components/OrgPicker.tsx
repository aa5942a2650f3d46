import { useEffect, useState } from "react";
import { TreeSelect } from "antd";
import { api, type S } from "../api";
import { useT } from "../i18n";

type Node = S["OrgNode"];
interface Option {
  value: number;
  title: string;
  children: Option[];
}

const toOptions = (nodes: Node[]): Option[] =>
  nodes.map((n) => ({ value: n.id, title: n.name, children: toOptions((n.children ?? []) as Node[]) }));

/** Pick a unit, department or Party organisation from the org tree the user may read. */
export function OrgPicker({ id, value, onChange, disabled }: {
  id?: string;
  value?: number;
  onChange?: (v: number | undefined) => void;
  disabled?: boolean;
}) {
  const t = useT();
  const [tree, setTree] = useState<Option[]>([]);
  useEffect(() => {
    api.get<Node[]>("/org-units/tree").then((n) => setTree(toOptions(n))).catch(() => setTree([]));
  }, []);
  return (
    <TreeSelect id={id} data-testid="org-picker" style={{ width: "100%" }} value={value} disabled={disabled} treeData={tree}
                treeDefaultExpandAll allowClear showSearch treeNodeFilterProp="title" placeholder={t("选择组织")}
                onChange={(v) => onChange?.(v ?? undefined)} />
  );
}
