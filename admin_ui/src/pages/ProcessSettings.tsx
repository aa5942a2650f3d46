import { useEffect, useState } from "react";
import { Alert, App, Button, Drawer, Input, InputNumber, Select, Space, Switch, Table, Tag, Typography } from "antd";
import { ApiError, api, errorText, type S } from "../api";
import { useT } from "../i18n";

type Settings = S["ProcessSettings"];
type Setting = S["SettingView"];

const BASIS: Record<string, { color: string; label: string; help: string }> = {
  regulation: { color: "blue", label: "党内法规", help: "规定本身要求、由本单位制度确定的数值" },
  local_practice: { color: "gold", label: "地方惯例", help: "只见于地方细则或问答，国家文件未见原文；请按本单位执行的规定核对" },
  unconfirmed: { color: "red", label: "未经证实", help: "没有找到出处，只是常见做法；须由本单位确定，不得当作规定" },
};

/** 本单位参数: every setting of a process with its value, default, basis and source; changing one
 * publishes a new version (running instances keep the values they started with). */
export function SettingsDrawer({ processKey, open, onClose, onSaved }: {
  processKey: string; open: boolean; onClose: () => void; onSaved?: (version: number) => void;
}) {
  const t = useT();
  const { message } = App.useApp();
  const [data, setData] = useState<Settings | null>(null);
  const [edits, setEdits] = useState<Record<string, unknown>>({});
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (!open || !processKey) return;
    setEdits({});
    setErrors({});
    setError("");
    api.get<Settings>(`/process-definitions/${encodeURIComponent(processKey)}/settings`)
      .then(setData).catch((e) => { setData(null); setError(errorText(e, t)); });
  }, [open, processKey]);

  const save = async () => {
    setBusy(true);
    setErrors({});
    try {
      const saved = await api.put<Settings>(`/process-definitions/${encodeURIComponent(processKey)}/settings`, { values: edits });
      setData(saved);
      setEdits({});
      message.success(`${t("已保存")}：${t("版本")} ${saved.version}`);
      onSaved?.(saved.version);
    } catch (e) {
      if (e instanceof ApiError) {
        setErrors(Object.fromEntries(e.errors.map((p) => [p.field.replace(/^values\//, ""), p.message])));
      }
      message.error(errorText(e, t));
    } finally {
      setBusy(false);
    }
  };

  const editor = (s: Setting) => {
    const value = s.name in edits ? (edits[s.name] ?? s.default) : s.value;
    const set = (v: unknown) => setEdits({ ...edits, [s.name]: v });
    const schema = s.schema as { type?: string; enum?: unknown[]; minimum?: number; maximum?: number };
    const testid = `setting-${s.name}`;
    if (schema.enum) {
      return <Select data-testid={testid} style={{ minWidth: 160 }} value={value as string} onChange={set}
                     options={schema.enum.map((o) => ({ value: o as string, label: String(o) }))} />;
    }
    if (schema.type === "boolean") return <Switch data-testid={testid} checked={Boolean(value)} onChange={set} />;
    if (schema.type === "number" || schema.type === "integer") {
      return <InputNumber data-testid={testid} value={value as number} min={schema.minimum} max={schema.maximum}
                          precision={schema.type === "integer" ? 0 : undefined} onChange={(v) => set(v)} />;
    }
    if (schema.type === "string" || typeof value === "string") {
      return <Input data-testid={testid} value={value as string} onChange={(e) => set(e.target.value)} />;
    }
    return <Typography.Text code>{JSON.stringify(value)}</Typography.Text>;
  };

  return (
    <Drawer open={open} onClose={onClose} size="large" title={t("本单位参数")} data-testid="settings-drawer"
      extra={<Button type="primary" disabled={!Object.keys(edits).length} loading={busy} onClick={save}
                     data-testid="settings-save">{t("保存并发布新版本")}</Button>}>
      <Alert type="info" showIcon style={{ marginBottom: 12 }}
        title={t("这些数值不是全国统一的规定：请按本单位执行的制度核对后再修改。修改后发布新版本，正在办理的流程仍按原数值。")} />
      {error && <Alert type="error" title={error} style={{ marginBottom: 12 }} />}
      <Table<Setting> rowKey="name" size="small" pagination={false} loading={!data && !error} dataSource={data?.settings ?? []}
        columns={[
          { title: t("参数"), dataIndex: "label", render: (v, s) => (
            <Space orientation="vertical" size={0}>
              <span>{v}</span>
              <Typography.Text type="secondary" style={{ fontSize: 12 }}>{s.name}{s.rule ? ` · ${s.rule}` : ""}</Typography.Text>
              {s.note && <Typography.Text type="secondary" style={{ fontSize: 12 }}>{s.note}</Typography.Text>}
            </Space>) },
          { title: t("依据"), dataIndex: "basis", width: 110, render: (b: string) => {
            const info = BASIS[b] ?? { color: "default", label: b, help: "" };
            return <Tag color={info.color} title={t(info.help)}>{t(info.label)}</Tag>;
          } },
          { title: t("取值"), key: "value", width: 220, render: (_, s) => (
            <Space orientation="vertical" size={0}>
              {editor(s)}
              {errors[s.name] && <Typography.Text type="danger" data-testid={`setting-error-${s.name}`}>{errors[s.name]}</Typography.Text>}
            </Space>) },
          { title: t("默认值"), dataIndex: "default", width: 150, render: (v, s) => (
            <Space orientation="vertical" size={0}>
              <Typography.Text code>{JSON.stringify(v)}</Typography.Text>
              {s.changed && !(s.name in edits) && (
                <Button size="small" type="link" onClick={() => setEdits({ ...edits, [s.name]: null })}>{t("恢复默认")}</Button>)}
            </Space>) },
        ]} />
    </Drawer>
  );
}
