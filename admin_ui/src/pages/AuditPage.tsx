import { useEffect, useState } from "react";
import { Alert, Button, Card, DatePicker, Input, Space, Table, Typography } from "antd";
import type { Dayjs } from "dayjs";
import { api, download, errorText, type Page, type S } from "../api";
import { useT } from "../i18n";
import { when } from "./Inbox";

type Event = S["EventView"];
type Verify = S["VerifyRead"];

/** The auditor's view: search the log by instance, action and time, and verify the chain. */
export function AuditPage() {
  const t = useT();
  const [filters, setFilters] = useState<{ action?: string; instance_id?: string; range?: [Dayjs, Dayjs] | null }>({});
  const [page, setPage] = useState(1);
  const [rows, setRows] = useState<Page<Event> | null>(null);
  const [verify, setVerify] = useState<Verify | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const [exported, setExported] = useState<{ name: string; sha256: string | null } | null>(null);
  useEffect(() => {
    api
      .get<Page<Event>>("/audit/events", {
        action: filters.action, instance_id: filters.instance_id, page, size: 50,
        since: filters.range?.[0]?.startOf("day").toISOString(), until: filters.range?.[1]?.endOf("day").toISOString(),
      })
      .then(setRows)
      .catch((e) => setError(errorText(e, t)));
  }, [filters, page]);
  const check = async () => {
    setBusy(true);
    try {
      setVerify(await api.get<Verify>("/audit/verify"));
    } catch (e) {
      setError(errorText(e, t));
    } finally {
      setBusy(false);
    }
  };
  const exportBundle = async () => {
    try {
      setExported(await download("/audit/export", {
        since: filters.range?.[0]?.startOf("day").toISOString(), until: filters.range?.[1]?.endOf("day").toISOString(),
      }));
    } catch (e) {
      setError(errorText(e, t));
    }
  };
  return (
    <Space orientation="vertical" size={12} style={{ width: "100%" }}>
      <Card title={t("审计日志")} extra={<Space>
        <Button onClick={exportBundle} data-testid="export">{t("导出离线校验包")}</Button>
        <Button type="primary" onClick={check} loading={busy} data-testid="verify">{t("校验哈希链")}</Button>
      </Space>}>
        {exported && <Alert type="info" showIcon style={{ marginBottom: 8 }} data-testid="export-result"
                            title={`${exported.name}`} description={exported.sha256 ? `SHA-256 ${exported.sha256}` : undefined} />}
        {error && <Alert type="error" title={error} />}
        {verify && (
          <Alert data-testid="verify-result" showIcon type={verify.ok ? "success" : "error"}
                 title={verify.ok ? t("链完整") : t("链被篡改")}
                 description={`${t("事件数")} ${verify.checked} · head ${verify.head_seq} · checkpoints ${verify.checkpoints}` +
                              (verify.ok ? "" : ` · ${t("第一条被篡改的事件")} ${verify.first_bad_seq}：${verify.reason ?? ""}`)} />
        )}
        <Space wrap style={{ margin: "12px 0" }}>
          <Input.Search placeholder={t("动作")} allowClear onSearch={(v) => { setPage(1); setFilters({ ...filters, action: v || undefined }); }} style={{ width: 180 }} />
          <Input.Search placeholder={t("实例")} allowClear onSearch={(v) => { setPage(1); setFilters({ ...filters, instance_id: v || undefined }); }} style={{ width: 140 }} />
          <DatePicker.RangePicker onChange={(v) => { setPage(1); setFilters({ ...filters, range: v as [Dayjs, Dayjs] | null }); }} />
        </Space>
        <Table<Event>
          size="small"
          rowKey="seq"
          dataSource={rows?.items ?? []}
          scroll={{ x: 800 }}
          pagination={{ current: page, pageSize: 50, total: rows?.total ?? 0, showSizeChanger: false, onChange: setPage,
                        showTotal: (n) => t("共 {n} 条", { n }) }}
          columns={[
            { title: "seq", dataIndex: "seq", width: 80 },
            { title: t("时间"), dataIndex: "ts", width: 150, render: (v: string) => when(v) },
            { title: t("动作"), dataIndex: "action", width: 180 },
            { title: t("操作人"), dataIndex: "actor_id", width: 80 },
            { title: t("实例"), dataIndex: "instance_id", width: 80 },
            { title: "hash", dataIndex: "hash", render: (v: string) => <Typography.Text code copyable>{v?.slice(0, 16)}</Typography.Text> },
          ]}
        />
      </Card>
    </Space>
  );
}
