import { useEffect, useState } from "react";
import { Select } from "antd";
import { api, type Page } from "../../api";
import { useT } from "../../i18n";
import type { Person } from "./shared";

/** Pick a person record by id among those the caller's user.read scope reaches (GET /api/users),
 * people without a login included. Posts, 分管 and grants take ids and need that reach; the shared
 * PersonPicker (the directory of everyone who can sign in) gives usernames. */
export function PersonSelect({ id, value, onChange, testid = "person-select" }: {
  id?: string;
  value?: number;
  onChange?: (v: number | undefined) => void;
  testid?: string;
}) {
  const t = useT();
  const [q, setQ] = useState("");
  const [options, setOptions] = useState<Person[]>([]);
  useEffect(() => {
    let live = true;
    const timer = setTimeout(() => {
      api.get<Page<Person>>("/users", { q, size: 20 })
        .then((p) => live && setOptions(p.items)).catch(() => live && setOptions([]));
    }, 200);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [q]);
  return (
    <Select id={id} data-testid={testid} allowClear value={value} onChange={(v) => onChange?.(v ?? undefined)} style={{ width: "100%" }}
            showSearch={{ filterOption: false, onSearch: setQ }} placeholder={t("姓名、拼音首字母、用户名或党员编号")}
            notFoundContent={t("暂无数据")}
            options={options.map((p) => ({
              value: p.id,
              label: `${p.display_name}（${[p.username, p.department_name ?? p.branch_name].filter(Boolean).join("，")}）`,
            }))} />
  );
}
