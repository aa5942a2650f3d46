import { useEffect, useState } from "react";
import { Alert, Button, Card, DatePicker, Descriptions, Input, Space, Table, Typography } from "antd";
import dayjs from "dayjs";
import { api, download, errorText, type Page, type S } from "../api";
import { useUrlFilters } from "../hooks";
import { useT } from "../i18n";
import { dayRange, when } from "../format";

type Event = S["EventView"];
type Verify = S["VerifyRead"];

function who(e: Event, t: ReturnType<typeof useT>): string {
  const name = e.actor_name ? `${e.actor_name}（${e.actor}）` : e.actor_id != null ? `#${e.actor_id}` : "";
  return e.on_behalf_of_name ? t("{who} 代 {whom}", { who: name, whom: e.on_behalf_of_name }) : name;
}

/** The auditor's view: search the log by instance, person, action and time (the filters live in
 * the URL), read each event whole, verify the chain and export the offline bundle. */
export function AuditPage() {
  const t = useT();
  const { get, set, page } = useUrlFilters();
  const filters = { action: get("action"), actor: get("actor"), instance_id: get("instance"), from: get("from"), to: get("to") };
  const days = dayRange(filters.from, filters.to);
  const range = { since: days.from, until: days.to };
  const setPage = (p: number) => set({ page: p > 1 ? String(p) : undefined });
  const [rows, setRows] = useState<Page<Event> | null>(null);
  const [verify, setVerify] = useState<Verify | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const [exported, setExported] = useState<{ name: string; sha256: string | null } | null>(null);
  useEffect(() => {
    api
      .get<Page<Event>>("/audit/events", {
        action: filters.action, actor: filters.actor, instance_id: filters.instance_id, page, size: 50, ...range,
      })
      .then((r) => {
        setRows(r);
        setError("");
      })
      .catch((e) => setError(errorText(e, t)));
  }, [filters.action, filters.actor, filters.instance_id, filters.from, filters.to, page]); // eslint-disable-line react-hooks/exhaustive-deps
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
      setExported(await download("/audit/export", range));
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
          <Input.Search placeholder={t("动作，如 task. 或 task.approve")} allowClear defaultValue={filters.action} data-testid="audit-action"
                        onSearch={(v) => set({ action: v.trim() || undefined })} style={{ width: 220 }} />
          <Input.Search placeholder={t("人员：用户名或姓名")} allowClear defaultValue={filters.actor} data-testid="audit-actor"
                        onSearch={(v) => set({ actor: v.trim() || undefined })} style={{ width: 190 }} />
          <Input.Search placeholder={t("实例编号")} allowClear defaultValue={filters.instance_id} data-testid="audit-instance"
                        onSearch={(v) => set({ instance: /^\d+$/.test(v.trim()) ? v.trim() : undefined })} style={{ width: 140 }} />
          <DatePicker.RangePicker value={filters.from && filters.to ? [dayjs(filters.from), dayjs(filters.to)] : null}
            onChange={(v) => set({ from: v?.[0]?.format("YYYY-MM-DD"), to: v?.[1]?.format("YYYY-MM-DD") })} />
        </Space>
        <Table<Event>
          size="small"
          rowKey="seq"
          dataSource={rows?.items ?? []}
          scroll={{ x: 800 }}
          expandable={{
            expandedRowRender: (e) => (
              <Descriptions size="small" column={1} bordered>
                <Descriptions.Item label={t("内容")}><pre className="dj-variable" data-testid={`audit-payload-${e.seq}`}>{JSON.stringify(e.payload, null, 1)}</pre></Descriptions.Item>
                <Descriptions.Item label="hash"><Typography.Text code copyable>{e.hash}</Typography.Text></Descriptions.Item>
                <Descriptions.Item label="prev_hash"><Typography.Text code copyable>{e.prev_hash}</Typography.Text></Descriptions.Item>
                <Descriptions.Item label={t("算法")}>{e.hash_alg}</Descriptions.Item>
                {e.task_id != null && <Descriptions.Item label={t("任务")}>{e.task_id}</Descriptions.Item>}
              </Descriptions>
            ),
          }}
          pagination={{ current: page, pageSize: 50, total: rows?.total ?? 0, showSizeChanger: false, onChange: setPage,
                        showTotal: (n) => t("共 {n} 条", { n }) }}
          columns={[
            { title: "seq", dataIndex: "seq", width: 80 },
            { title: t("时间"), dataIndex: "ts", width: 150, render: (v: string) => when(v) },
            { title: t("动作"), dataIndex: "action", width: 180 },
            { title: t("操作人"), width: 160, render: (_, e) => <span data-testid="audit-who">{who(e, t)}</span> },
            { title: t("实例"), dataIndex: "instance_id", width: 80 },
            { title: "hash", dataIndex: "hash", render: (v: string) => <Typography.Text code copyable>{v?.slice(0, 16)}</Typography.Text> },
          ]}
        />
      </Card>
    </Space>
  );
}
