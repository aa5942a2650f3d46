import { useEffect, useState } from "react";
import { Select, Space, TreeSelect } from "antd";
import { api } from "../api";
import { useOrgOptions } from "./OrgPicker";
import { useT } from "../i18n";

interface Person {
  username: string;
  display_name: string;
  department_name: string | null;
}

/** Pick people over the org tree: narrow to a unit, department or Party organisation (its
 * people and those of the units under it), then search by name, pinyin initials or username
 * (GET /api/directory). The tree loads when it is first opened. */
export function PersonPicker({ multiple = false, value, onChange }: {
  multiple?: boolean;
  value?: string | string[];
  onChange?: (v: string | string[]) => void;
}) {
  const t = useT();
  const [q, setQ] = useState("");
  const [org, setOrg] = useState<number | undefined>(undefined);
  const [tree, loadTree] = useOrgOptions("directory", true);
  const [options, setOptions] = useState<Person[]>([]);
  // The people chosen keep their names whatever the list shows now (another unit, another
  // search, or a value restored from the URL that the first page of results does not hold).
  const [known, setKnown] = useState<Record<string, Person>>({});
  const chosen = value === undefined ? [] : Array.isArray(value) ? value : [value];
  const missing = chosen.filter((u) => !known[u] && !options.some((p) => p.username === u)).join(",");
  useEffect(() => {
    if (!missing) return;
    let live = true;
    for (const username of missing.split(","))
      api.get<Person[]>("/directory", { q: username, limit: 5 }).then((found) => {
        const hit = found.find((p) => p.username === username);
        if (live && hit) setKnown((k) => ({ ...k, [username]: hit }));
      }).catch(() => {});
    return () => {
      live = false;
    };
  }, [missing]);
  useEffect(() => {
    let live = true;
    const timer = setTimeout(() => {
      api.get<Person[]>("/directory", { q, org_id: org, limit: org ? 50 : 20 })
        .then((p) => live && setOptions(p)).catch(() => live && setOptions([]));
    }, 200);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [q, org]);
  return (
    <Space.Compact style={{ width: "100%" }}>
    <TreeSelect
      data-testid="person-picker-org"
      style={{ width: "38%", minWidth: 110 }}
      placeholder={t("全部组织")}
      value={org}
      treeData={tree ?? []}
      onOpenChange={loadTree}
      onChange={(v) => {
        setOptions([]);  // not the previous unit's people while this one's load
        setOrg(v ?? undefined);
      }}
      allowClear
      showSearch
      treeNodeFilterProp="title"
      treeDefaultExpandAll
      popupMatchSelectWidth={false}
    />
    <Select
      data-testid="person-picker"
      showSearch={{ filterOption: false, onSearch: setQ }}
      mode={multiple ? "multiple" : undefined}
      placeholder={t("选择人员")}
      value={value}
      onChange={onChange}
      style={{ width: "62%" }}
      onSelect={(u: string) => {
        const p = options.find((o) => o.username === u);
        if (p) setKnown((k) => ({ ...k, [u]: p }));
      }}
      options={[...options, ...chosen.filter((u) => known[u] && !options.some((p) => p.username === u)).map((u) => known[u])].map((p) => ({
        value: p.username,
        label: `${p.display_name}${p.department_name ? "（" + p.department_name + "）" : ""}`,
      }))}
    />
    </Space.Compact>
  );
}
