import { useCallback, useEffect, useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { Alert, Button, Card, DatePicker, Descriptions, Input, List, Modal, Result, Select, Skeleton, Space, Table, Tag } from "antd";
import dayjs, { type Dayjs } from "dayjs";
import { ApiError, api, type InstanceView, type Me, type Page, type S, type TaskView } from "../api";
import { useInstanceAction, useProcesses, useUrlFilters } from "../hooks";
import { OUTCOMES, STATUS, useT } from "../i18n";
import { Trail, useTrail } from "../components/Trail";
import { ChainStatus, InstanceVariables } from "../components/InstanceData";
import { Attachments } from "../components/Attachments";
import { dayRange, when } from "../format";

type Comment = S["CommentView"];
const STATUSES = ["running", "completed", "rejected", "withdrawn", "cancelled", "error"];
const COLOR: Record<string, string> = { running: "processing", completed: "success", rejected: "error", error: "error", open: "gold" };

/** Every instance the user's instance.read scope reaches, filtered by status, process, text,
 * initiator and start date (all kept in the URL). */
export function MonitorList() {
  const t = useT();
  const nav = useNavigate();
  const { params, get, set, page } = useUrlFilters();
  const processes = useProcesses();
  const [rows, setRows] = useState<Page<InstanceView> | null>(null);
  const query = params.toString();
  useEffect(() => {
    const p = new URLSearchParams(query);
    const started = dayRange(p.get("from"), p.get("to"));
    setRows(null);
    api.get<Page<InstanceView>>("/process-instances", {
      status: p.get("status") || undefined, key: p.get("key") || undefined, q: p.get("q") || undefined,
      initiator: p.get("initiator") || undefined, page: Number(p.get("page") || 1), size: 20,
      started_from: started.from, started_to: started.to,
    }).then(setRows).catch(() => setRows({ items: [], total: 0, page: 1, size: 20 }));
  }, [query]);
  const names = Object.fromEntries(processes.map((p) => [p.key, p.name]));
  const range: [Dayjs, Dayjs] | null = get("from") && get("to") ? [dayjs(get("from")), dayjs(get("to"))] : null;
  return (
    <Card title={t("流程监控")}>
      <Space wrap style={{ marginBottom: 12 }}>
        <Select allowClear placeholder={t("状态")} style={{ width: 120 }} value={get("status")} data-testid="monitor-status"
                options={STATUSES.map((s) => ({ value: s, label: t(STATUS[s]) }))} onChange={(v) => set({ status: v })} />
        <Select allowClear placeholder={t("全部流程")} style={{ minWidth: 160 }} value={get("key")}
                options={processes.map((p) => ({ value: p.key, label: p.name }))} onChange={(v) => set({ key: v })} />
        <Input.Search allowClear placeholder={t("标题或业务编号")} defaultValue={get("q")} style={{ width: 200 }}
                      onSearch={(v) => set({ q: v || undefined })} data-testid="monitor-search" />
        <Input.Search allowClear placeholder={t("发起人用户名")} defaultValue={get("initiator")} style={{ width: 160 }}
                      onSearch={(v) => set({ initiator: v || undefined })} />
        <DatePicker.RangePicker value={range}
          onChange={(v) => set({ from: v?.[0]?.format("YYYY-MM-DD"), to: v?.[1]?.format("YYYY-MM-DD") })} />
      </Space>
      <Table<InstanceView> rowKey="id" size="small" loading={!rows} dataSource={rows?.items ?? []} scroll={{ x: 800 }}
        onRow={(r) => ({ onClick: () => nav(`/monitor/${r.id}`), style: { cursor: "pointer" }, "data-testid": "monitor-row" } as never)}
        pagination={{ current: page, pageSize: 20, total: rows?.total ?? 0, showSizeChanger: false,
                      showTotal: (n) => t("共 {n} 条", { n }), onChange: (p) => set({ page: String(p) }) }}
        columns={[
          { title: "#", dataIndex: "id", width: 70 },
          { title: t("标题"), dataIndex: "title" },
          { title: t("流程"), dataIndex: "definition_key", render: (k: string, r) => `${names[k] ?? k} v${r.definition_version}` },
          { title: t("发起人"), dataIndex: "initiator_name", width: 100 },
          { title: t("状态"), dataIndex: "status", width: 90, render: (s: string) => <Tag color={COLOR[s]}>{t(STATUS[s] ?? s)}</Tag> },
          { title: t("发起时间"), dataIndex: "started_at", width: 150, render: (v) => when(v) },
          { title: t("结束时间"), dataIndex: "ended_at", width: 150, render: (v) => when(v) },
        ]} />
    </Card>
  );
}

/** One instance for an administrator: status, every task with its state, history, the diagram
 * with per-node counts, comments and attachments; 撤销 (with a reason) and 重试 where allowed. */
export function MonitorInstance({ me }: { me: Me }) {
  const t = useT();
  const { id } = useParams();
  const [inst, setInst] = useState<InstanceView | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [comments, setComments] = useState<Comment[]>([]);
  const [cancelling, setCancelling] = useState(false);
  const [reason, setReason] = useState("");
  const [comment, setComment] = useState("");
  const trail = useTrail(id);
  const load = useCallback(() => {
    api.get<InstanceView>(`/process-instances/${id}`).then(setInst).catch((e) => setError(e));
    api.get<Comment[]>(`/process-instances/${id}/comments`).then(setComments).catch(() => setComments([]));
  }, [id]);
  useEffect(load, [load]);
  const act = useInstanceAction(id, () => {
    setCancelling(false);
    load();
    trail.reload();
  });
  if (error) return <Result status="404" title={error.detail || error.title} extra={<Link to="/monitor">{t("返回")}</Link>} />;
  if (!inst) return <Skeleton active />;
  const admin = me.permissions.includes("instance.admin");
  return (
    <Space orientation="vertical" size={12} style={{ width: "100%" }}>
      <Card title={`#${inst.id} ${inst.title}`}
            extra={<Tag data-testid="monitor-instance-status" color={COLOR[inst.status]}>{t(STATUS[inst.status] ?? inst.status)}</Tag>}>
        <Descriptions size="small" column={{ xs: 1, sm: 2, md: 3 }}>
          <Descriptions.Item label={t("流程")}>{inst.definition_key} v{inst.definition_version}</Descriptions.Item>
          <Descriptions.Item label={t("发起人")}>{inst.initiator_name}</Descriptions.Item>
          <Descriptions.Item label={t("发起时间")}>{when(inst.started_at)}</Descriptions.Item>
          {inst.business_key && <Descriptions.Item label={t("业务编号")}>{inst.business_key}</Descriptions.Item>}
          {inst.ended_at && <Descriptions.Item label={t("结束时间")}>{when(inst.ended_at)}</Descriptions.Item>}
        </Descriptions>
        {admin && (
          <Space>
            {inst.status === "running" && <Button danger onClick={() => setCancelling(true)} data-testid="monitor-cancel">{t("撤销")}</Button>}
            {inst.status === "error" && <Button onClick={() => act("retry", {})} data-testid="monitor-retry">{t("重试")}</Button>}
          </Space>
        )}
      </Card>
      <Card size="small" title={t("任务")}>
        <Table<TaskView> rowKey="id" size="small" pagination={false} dataSource={inst.tasks ?? []} scroll={{ x: 700 }}
          columns={[
            { title: t("节点"), dataIndex: "node_name" },
            { title: t("处理人"), render: (_, r) => `${r.assignee_name ?? r.assignee ?? ""}${r.on_behalf_of_name ? `（${r.on_behalf_of_name}）` : ""}` },
            { title: t("状态"), dataIndex: "status", render: (s: string) => <Tag color={COLOR[s]}>{t(STATUS[s] ?? s)}</Tag> },
            { title: t("结果"), dataIndex: "outcome", render: (o: string | null) => (o ? t(OUTCOMES[o] ?? o) : "") },
            { title: t("到期"), dataIndex: "due_at", render: (v) => when(v) },
            { title: t("时间"), render: (_, r) => when(r.completed_at ?? r.created_at) },
          ]} />
      </Card>
      <Trail history={trail.history} diagram={trail.diagram} counts />
      <InstanceVariables instanceId={inst.id} />
      <ChainStatus instanceId={inst.id} />
      <Card size="small" title={t("评论")}>
        <List size="small" dataSource={comments} locale={{ emptyText: t("暂无数据") }}
              renderItem={(c) => <List.Item><Space><b>{c.author_name}</b><span>{c.body}</span><span style={{ color: "#888" }}>{when(c.created_at)}</span></Space></List.Item>} />
        <Space.Compact style={{ width: "100%", marginTop: 8 }}>
          <Input value={comment} onChange={(e) => setComment(e.target.value)} maxLength={2000} placeholder={t("写评论")} />
          <Button disabled={!comment.trim()} onClick={async () => {
            await api.post(`/process-instances/${inst.id}/comments`, { body: comment.trim() });
            setComment("");
            load();
          }}>{t("发表")}</Button>
        </Space.Compact>
      </Card>
      <Attachments instanceId={inst.id} />
      <Modal open={cancelling} title={t("撤销流程")} okText={t("撤销")} cancelText={t("取消")} okButtonProps={{ danger: true, disabled: !reason.trim(), "data-testid": "monitor-cancel-ok" } as never}
             onCancel={() => setCancelling(false)} onOk={() => act("cancel", { reason: reason.trim() })}>
        <Alert type="warning" showIcon style={{ marginBottom: 8 }} title={t("撤销后流程结束，所有待办取消，记入审计日志")} />
        <Input.TextArea rows={3} maxLength={2000} value={reason} onChange={(e) => setReason(e.target.value)}
                        placeholder={t("撤销原因（必填）")} data-testid="monitor-cancel-reason" />
      </Modal>
    </Space>
  );
}
