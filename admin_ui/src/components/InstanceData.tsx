import { useEffect, useState } from "react";
import { Alert, Button, Card, Space, Table, Tag, Typography } from "antd";
import { CheckCircleOutlined, CloseCircleOutlined, LockOutlined } from "@ant-design/icons";
import { api, errorText, type S } from "../api";
import { useT } from "../i18n";

type Variable = S["Variable"];
type Chain = S["ChainStatus"];

function show(v: unknown): string {
  if (v === null || v === undefined) return "";
  return typeof v === "string" ? v : JSON.stringify(v, null, 1);
}

/** The monitor's 流程数据: each variable with its form title; masked values say why. */
export function InstanceVariables({ instanceId }: { instanceId: number }) {
  const t = useT();
  const [rows, setRows] = useState<Variable[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    api.get<S["InstanceVariables"]>(`/process-instances/${instanceId}/variables`)
      .then((r) => live && setRows(r.variables ?? []))
      .catch((e) => live && setError(errorText(e, t)));
    return () => {
      live = false;
    };
  }, [instanceId, t]);
  return (
    <Card size="small" title={t("流程数据")} data-testid="monitor-variables">
      {error ? <Alert type="error" showIcon title={error} /> : (
        <Table<Variable> rowKey="name" size="small" loading={rows === null} dataSource={rows ?? []} pagination={false}
          scroll={{ x: 600 }} locale={{ emptyText: t("暂无数据") }}
          columns={[
            { title: t("字段"), width: 200, render: (_, r) => (
              <Space orientation="vertical" size={0}>
                <span>{r.title ?? r.name}</span>
                {r.title && <Typography.Text type="secondary" code>{r.name}</Typography.Text>}
              </Space>) },
            { title: t("值"), render: (_, r) => (
              <Space orientation="vertical" size={2}>
                {r.masked && (
                  <Space size={4} wrap>
                    <Tag icon={<LockOutlined />} color="gold" data-testid="variable-masked">{t("已脱敏")}</Tag>
                    {r.reason && <Typography.Text type="secondary" style={{ fontSize: 12 }}>{t(r.reason)}</Typography.Text>}
                  </Space>
                )}
                <pre className="dj-variable" data-testid={`variable-${r.name}`}>{show(r.value)}</pre>
              </Space>) },
            { title: t("填写节点"), dataIndex: "node", width: 140, render: (v: string | null) => v ?? "" },
          ]} />
      )}
    </Card>
  );
}

/** 审计链状态 of one instance: its events hashed again and linked, on request. */
export function ChainStatus({ instanceId }: { instanceId: number }) {
  const t = useT();
  const [status, setStatus] = useState<Chain | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const check = () => {
    setBusy(true);
    setError(null);
    api.get<Chain>(`/process-instances/${instanceId}/chain`)
      .then(setStatus)
      .catch((e) => setError(errorText(e, t)))
      .finally(() => setBusy(false));
  };
  useEffect(check, [instanceId]); // eslint-disable-line react-hooks/exhaustive-deps
  return (
    <Card size="small" title={t("审计链状态")} data-testid="monitor-chain"
          extra={<Button size="small" loading={busy} onClick={check}>{t("重新校验")}</Button>}>
      {error && <Alert type="error" showIcon title={error} />}
      {status && (status.ok ? (
        <Alert type="success" showIcon icon={<CheckCircleOutlined />} data-testid="monitor-chain-ok"
          title={t("本实例 {n} 条审计事件完整，前后衔接无误", { n: status.events })}
          description={[
            status.events ? t("事件序号 {a}–{b}，共重算 {c} 条", { a: status.first_seq ?? "", b: status.last_seq ?? "", c: status.checked }) : "",
            status.checkpoint_seq
              ? t("最新检查点 #{cp} 已覆盖其中 {k} 条", { cp: status.checkpoint_seq, k: status.covered })
              : t("尚无检查点"),
            status.whole_span ? "" : t("实例跨越的日志过长，只校验了本实例的事件及其相邻事件"),
          ].filter(Boolean).join("；")} />
      ) : (
        <Alert type="error" showIcon icon={<CloseCircleOutlined />} data-testid="monitor-chain-bad"
          title={t("审计链校验未通过：第 {seq} 条", { seq: status.first_bad_seq ?? "" })}
          description={status.reason ? t(status.reason) : undefined} />
      ))}
    </Card>
  );
}
