import { useEffect, useState } from "react";
import { Select } from "antd";
import { api } from "../api";
import { useT } from "../i18n";

interface Person {
  username: string;
  display_name: string;
  department_name: string | null;
}

/** Search people by name, pinyin initials or username (GET /api/directory). */
export function PersonPicker({ multiple = false, value, onChange }: {
  multiple?: boolean;
  value?: string | string[];
  onChange?: (v: string | string[]) => void;
}) {
  const t = useT();
  const [q, setQ] = useState("");
  const [options, setOptions] = useState<Person[]>([]);
  useEffect(() => {
    let live = true;
    const timer = setTimeout(() => {
      api.get<Person[]>("/directory", { q, limit: 20 }).then((p) => live && setOptions(p)).catch(() => live && setOptions([]));
    }, 200);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [q]);
  return (
    <Select
      data-testid="person-picker"
      showSearch={{ filterOption: false, onSearch: setQ }}
      mode={multiple ? "multiple" : undefined}
      placeholder={t("选择人员")}
      value={value}
      onChange={onChange}
      style={{ width: "100%" }}
      options={options.map((p) => ({
        value: p.username,
        label: `${p.display_name}${p.department_name ? "（" + p.department_name + "）" : ""}`,
      }))}
    />
  );
}
