import { useEffect, useMemo, useState } from "react";
import { useNavigate } from "react-router-dom";
import { Alert, App, Badge, Button, Card, Checkbox, DatePicker, Input, List, Modal, Select, Space, Switch, Tabs, Tag, Typography } from "antd";
import dayjs, { type Dayjs } from "dayjs";
import { api, errorText, newKey, type InstanceView, type Page, type TaskView, type Me } from "../api";
import { useProcesses, useUrlFilters } from "../hooks";
import { OUTCOMES, STATUS, useT } from "../i18n";
import { PersonPicker } from "../components/PersonPicker";
import { dayRange, when } from "../format";

type Scope = "mine" | "done" | "cc" | "started";
const SCOPES: Scope[] = ["mine", "done", "cc", "started"];
const LABEL: Record<Scope, string> = { mine: "待办", done: "已办", cc: "抄送我", started: "我发起的" };
const STATUS_COLOR: Record<string, string> = {
  running: "processing", completed: "success", rejected: "error", withdrawn: "default", cancelled: "default", error: "error",
};

interface TaskFilters {
  key?: string;
  overdue?: boolean;
  initiator?: string;
  from?: string; // YYYY-MM-DD, the first day the task arrived (a day in the browser's time zone)
  to?: string; // the last day, inclusive
}

/** GET /api/tasks parameters of a tab and its filters; the days of the range are whole days. */
export function taskQuery(scope: Scope, f: TaskFilters = {}) {
  const days = dayRange(f.from, f.to);
  const common = { key: f.key, initiator: f.initiator || undefined, arrived_from: days.from, arrived_to: days.to };
  if (scope === "mine") return { scope: "mine", status: "open", overdue: f.overdue || undefined, ...common };
  if (scope === "done") return { scope: "done", ...common };
  return { scope: "cc", ...common };
}

/** 待办 / 已办 / 抄送我 / 我发起的, each with its count; filters live in the URL so a reload or a
 * shared link keeps them. */
export function Inbox({ me }: { me: Me }) {
  const t = useT();
  const nav = useNavigate();
  const { params, setParams, set, page } = useUrlFilters();
  const scope = (SCOPES.includes(params.get("tab") as Scope) ? params.get("tab") : "mine") as Scope;
  const key = params.get("key") || undefined;
  const overdue = params.get("overdue") === "1";
  const q = params.get("q") || "";
  const from = params.get("from") || "";
  const to = params.get("to") || "";
  const initiator = params.get("initiator") || undefined;
  const processes = useProcesses();
  const [counts, setCounts] = useState<Partial<Record<Scope, number>>>({});
  const [rows, setRows] = useState<(TaskView | InstanceView)[]>([]);
  const [total, setTotal] = useState(0);
  const [loading, setLoading] = useState(true);
  const [picked, setPicked] = useState<number[]>([]);
  const [reload, setReload] = useState(0);


  useEffect(() => {
    let live = true;
    Promise.all(
      SCOPES.map((s) =>
        s === "started"
          ? api.get<Page<InstanceView>>("/process-instances", { mine: true, size: 1 })
          : api.get<Page<TaskView>>("/tasks", { ...taskQuery(s), size: 1 }),
      ),
    ).then((pages) => live && setCounts(Object.fromEntries(pages.map((p, i) => [SCOPES[i], p.total]))));
    return () => {
      live = false;
    };
  }, [me.username, reload]);

  useEffect(() => {
    let live = true;
    setLoading(true);
    const started = dayRange(from, to);
    const load =
      scope === "started"
        ? api.get<Page<InstanceView>>("/process-instances", {
            mine: true, key, q, page, size: 20,
            started_from: started.from, started_to: started.to,
          })
        : api.get<Page<TaskView>>("/tasks", { ...taskQuery(scope, { key, overdue, initiator, from, to }), page, size: 20 });
    load
      .then((p) => {
        if (!live) return;
        setRows(p.items);
        setTotal(p.total);
      })
      .finally(() => live && setLoading(false));
    return () => {
      live = false;
    };
  }, [scope, key, overdue, q, from, to, initiator, page, reload]);
  useEffect(() => setPicked([]), [scope, key, overdue, initiator, from, to, page, reload]);

  const names = useMemo(() => Object.fromEntries(processes.map((p) => [p.key, p.name])), [processes]);
  const range: [Dayjs, Dayjs] | null = from && to ? [dayjs(from), dayjs(to)] : null;

  return (
    <Card styles={{ body: { padding: "0 12px 12px" } }}>
      <Tabs
        activeKey={scope}
        onChange={(k) => setParams(new URLSearchParams({ tab: k }), { replace: true })}
        items={SCOPES.map((s) => ({
          key: s,
          label: (
            <span data-testid={`tab-${s}`}>
              {t(LABEL[s])} <Badge count={counts[s] ?? 0} showZero={false} overflowCount={999}
                                   color={s === "mine" ? "#c0392b" : "#999"} size="small" />
            </span>
          ),
        }))}
      />
      <Space wrap style={{ marginBottom: 12 }}>
        <Select allowClear placeholder={t("全部流程")} style={{ minWidth: 160 }} value={key} onChange={(v) => set({ key: v })}
                options={processes.map((p) => ({ value: p.key, label: p.name }))} />
        {scope === "mine" && (
          <Space>
            <Switch size="small" checked={overdue} onChange={(v) => set({ overdue: v ? "1" : undefined })} data-testid="overdue" />
            {t("只看超期")}
          </Space>
        )}
        {scope === "started" && (
          <Input.Search allowClear placeholder={t("搜索")} defaultValue={q} onSearch={(v) => set({ q: v || undefined })} style={{ width: 180 }} />
        )}
        {scope !== "started" && (
          <Space size={4} data-testid="filter-initiator">
            <span style={{ width: 320, display: "inline-block" }}>
              <PersonPicker value={initiator} onChange={(v) => set({ initiator: (v as string) || undefined })} />
            </span>
            {initiator && <Button size="small" type="link" onClick={() => set({ initiator: undefined })} data-testid="filter-initiator-clear">{t("清除")}</Button>}
          </Space>
        )}
        <Space size={4} data-testid="filter-dates">
          {t(scope === "started" ? "发起时间" : "到达时间")}
          <DatePicker.RangePicker value={range}
            onChange={(v) => set({ from: v?.[0]?.format("YYYY-MM-DD"), to: v?.[1]?.format("YYYY-MM-DD") })} />
        </Space>
      </Space>
      {scope === "mine" && picked.length > 0 && (
        <BulkApprove ids={picked} titles={Object.fromEntries(rows.map((r) => [r.id, "instance_title" in r ? r.instance_title : r.title]))}
                     onDone={() => setReload((n) => n + 1)} />
      )}
      <List
        loading={loading}
        dataSource={rows}
        locale={{ emptyText: scope === "mine" ? t("暂无待办") : t("暂无数据") }}
        pagination={total > 20 ? { current: page, pageSize: 20, total, showSizeChanger: false, size: "small",
                                    showTotal: (n) => t("共 {n} 条", { n }), onChange: (p) => set({ page: String(p) }) } : false}
        renderItem={(row) =>
          "node_name" in row ? (
            <TaskItem task={row} processName={names[row.definition_key]} onOpen={() =>
              nav(scope === "mine" ? `/tasks/${row.id}` : `/instances/${row.instance_id}`)}
              picked={scope === "mine" && row.kind === "approve" ? picked.includes(row.id) : undefined}
              onPick={(on) => setPicked((p) => (on ? [...p, row.id] : p.filter((x) => x !== row.id)))} />
          ) : (
            <List.Item className="dj-task-item" data-testid="instance-row" onClick={() => nav(`/instances/${row.id}`)}>
              <List.Item.Meta
                title={row.title}
                description={<Space wrap size={4}>
                  <span>{names[row.definition_key] ?? row.definition_key}</span>
                  <span>{t("发起时间")} {when(row.started_at)}</span>
                </Space>}
              />
              <Tag color={STATUS_COLOR[row.status]}>{t(STATUS[row.status] ?? row.status)}</Tag>
            </List.Item>
          )
        }
      />
    </Card>
  );
}

/** 批量同意: each picked task is approved in turn with the same opinion; a node that does not
 * allow it (an opinion or a signature required, a form to fill, no 同意 button) refuses on the
 * server, and its reason is listed. Nothing is approved that the task page would not approve. */
function BulkApprove({ ids, titles, onDone }: { ids: number[]; titles: Record<number, string>; onDone: () => void }) {
  const t = useT();
  const { message } = App.useApp();
  const [open, setOpen] = useState(false);
  const [opinion, setOpinion] = useState("");
  const [busy, setBusy] = useState(false);
  const [failures, setFailures] = useState<string[]>([]);
  const run = async () => {
    setBusy(true);
    const failed: string[] = [];
    let ok = 0;
    for (const id of ids) {
      try {
        await api.post(`/tasks/${id}/actions/approve`, { comment: opinion.trim() || undefined }, newKey());
        ok++;
      } catch (e) {
        failed.push(`${titles[id] ?? id}：${errorText(e, t)}`);
      }
    }
    setBusy(false);
    setOpen(false);
    setFailures(failed);
    message.success(t("已同意 {ok} 件，未办理 {n} 件", { ok, n: failed.length }));
    onDone();
  };
  return (
    <>
      <Space style={{ marginBottom: 8 }}>
        <Button type="primary" onClick={() => setOpen(true)} data-testid="bulk-approve">{t("批量同意（{n}）", { n: ids.length })}</Button>
      </Space>
      {failures.length > 0 && (
        <Alert type="warning" showIcon closable data-testid="bulk-failures" style={{ marginBottom: 8 }}
               title={t("以下待办须逐件办理")} description={failures.join("；")} onClose={() => setFailures([])} />
      )}
      <Modal open={open} title={t("批量同意（{n}）", { n: ids.length })} onCancel={() => setOpen(false)} onOk={run} confirmLoading={busy}
             okText={t("同意")} cancelText={t("取消")} okButtonProps={{ "data-testid": "bulk-ok" } as never}>
        <Input.TextArea rows={3} maxLength={1000} value={opinion} onChange={(e) => setOpinion(e.target.value)} placeholder={t("审批意见")} />
      </Modal>
    </>
  );
}

function TaskItem({ task, processName, onOpen, picked, onPick }: {
  task: TaskView;
  processName?: string;
  onOpen: () => void;
  picked?: boolean;
  onPick?: (on: boolean) => void;
}) {
  const t = useT();
  const overdue = task.status === "open" && !!task.due_at && dayjs(task.due_at).isBefore(dayjs());
  return (
    <List.Item className="dj-task-item" data-testid="task-row" onClick={onOpen}>
      {picked !== undefined && (
        <Checkbox checked={picked} style={{ marginRight: 12 }} data-testid="task-pick"
                  onClick={(e) => e.stopPropagation()} onChange={(e) => onPick?.(e.target.checked)} />
      )}
      <List.Item.Meta
        title={<Space wrap size={4}>
          <Typography.Text strong>{task.instance_title}</Typography.Text>
          {task.kind === "cc" && <Tag>{t("抄送")}</Tag>}
        </Space>}
        description={<Space wrap size={4}>
          <span>{processName ?? task.definition_key}</span>·<span>{task.node_name}</span>
          <span>{when(task.completed_at ?? task.created_at)}</span>
          {task.on_behalf_of_name && <Tag color="purple">{task.on_behalf_of_name}</Tag>}
        </Space>}
      />
      {task.due_at && task.status === "open" && (
        <Tag data-testid="due" color={overdue ? "red" : "blue"}>{overdue ? t("已超期") : `${t("到期")} ${when(task.due_at)}`}</Tag>
      )}
      {task.status !== "open" && task.outcome && <Tag>{t(OUTCOMES[task.outcome] ?? task.outcome)}</Tag>}
    </List.Item>
  );
}
