// 委托: while someone is away, new tasks go to their delegate (for every process or some). Everyone
// manages their own; a holder of delegation.manage also those of the people in their scope.
import { useCallback, useEffect, useState } from "react";
import { App, Button, DatePicker, Form, Input, Modal, Popconfirm, Select, Space, Switch, Table, Tag } from "antd";
import { PlusOutlined } from "@ant-design/icons";
import dayjs, { type Dayjs } from "dayjs";
import { api, type Me, type S } from "../../api";
import { useProcesses } from "../../hooks";
import { useT } from "../../i18n";
import type { OrgAccess } from "../../org/access";
import { PersonPicker } from "../../components/PersonPicker";
import { PersonSelect } from "./PersonSelect";
import { when } from "../../format";
import { problemText, usePersonId, useSubmit } from "./shared";

type Delegation = S["DelegationView"];
const MAX_DAYS = 366; // engine/org/delegations.py

function state(d: Delegation): [string, string] {
  if (d.revoked_at) return ["已作废", "default"];
  if (d.active) return ["生效中", "success"];
  return dayjs(d.starts_at).isAfter(dayjs()) ? ["未开始", "processing"] : ["已结束", "default"];
}

export function DelegationsTab({ me, access }: { me: Me; access: OrgAccess }) {
  const t = useT();
  const { message } = App.useApp();
  const submit = useSubmit();
  const processes = useProcesses(access.processes);
  const [role, setRole] = useState<"mine" | "received" | "all">(access.delegationsOfOthers ? "all" : "mine");
  const [ended, setEnded] = useState(false);
  const [rows, setRows] = useState<Delegation[] | null>(null);
  const [creating, setCreating] = useState(false);
  const load = useCallback(() => {
    setRows(null);
    api.get<Delegation[]>("/delegations", { role, include_ended: ended })
      .then(setRows).catch((e) => { setRows([]); message.error(problemText(e, t)); });
  }, [role, ended, message, t]);
  useEffect(load, [load]);
  const names = Object.fromEntries(processes.map((p) => [p.key, p.name]));
  const revoke = async (d: Delegation) => {
    if (await submit(null, () => api.post(`/delegations/${d.id}/revoke`), "委托已撤销")) load();
  };
  const mayRevoke = (d: Delegation) => !d.revoked_at && dayjs(d.ends_at).isAfter(dayjs())
    && (d.user_id === me.id || access.delegationsOfOthers);
  return (
    <Space orientation="vertical" size={8} style={{ width: "100%" }}>
      <Space wrap>
        <Select value={role} onChange={setRole} style={{ width: 180 }} data-testid="delegation-role" options={[
          ...(access.delegationsOfOthers ? [{ value: "all", label: t("我管理范围内的") }] : []),
          { value: "mine", label: t("我委托给别人的") },
          { value: "received", label: t("别人委托给我的") },
        ]} />
        <Space size={6}><Switch size="small" checked={ended} onChange={setEnded} />{t("包括已结束和已撤销的")}</Space>
        <Button type="primary" icon={<PlusOutlined />} onClick={() => setCreating(true)} data-testid="delegation-add">{t("新建委托")}</Button>
      </Space>
      <Table<Delegation> rowKey="id" size="small" loading={!rows} dataSource={rows ?? []} scroll={{ x: 860 }} data-testid="delegations-table"
                         pagination={{ pageSize: 20, hideOnSinglePage: true }} locale={{ emptyText: t("暂无数据") }} columns={[
        { title: t("委托人"), dataIndex: "display_name", width: 100 },
        { title: t("受托人"), dataIndex: "delegate_name", width: 100 },
        { title: t("开始"), dataIndex: "starts_at", width: 140, render: (v) => when(v), sorter: (a, b) => a.starts_at.localeCompare(b.starts_at) },
        { title: t("结束"), dataIndex: "ends_at", width: 140, render: (v) => when(v) },
        { title: t("流程"), dataIndex: "process_keys", render: (ks: string[] | null) => ks?.length ? ks.map((k) => names[k] ?? k).join("、") : t("全部流程") },
        { title: t("原因"), dataIndex: "reason", render: (v) => v || "—" },
        { title: t("状态"), width: 80, render: (_, d) => { const [label, color] = state(d); return <Tag color={color}>{t(label)}</Tag>; } },
        { title: t("操作"), width: 90, render: (_, d) => mayRevoke(d) && (
          <Popconfirm title={t("撤销这项委托？")} description={t("已转给受托人的待办不会收回")} okText={t("撤销委托")} cancelText={t("取消")}
                      okButtonProps={{ danger: true }} onConfirm={() => revoke(d)}>
            <Button type="link" size="small" danger data-testid="delegation-revoke">{t("撤销委托")}</Button>
          </Popconfirm>
        ) },
      ]} />
      {creating && <DelegationForm access={access} processes={processes.map((p) => ({ value: p.key, label: p.name }))}
                                   onClose={() => setCreating(false)} onSaved={() => { setCreating(false); load(); }} />}
    </Space>
  );
}

interface Values {
  owner?: number;
  delegate: string;
  period: [Dayjs, Dayjs];
  process_keys?: string[];
  reason?: string;
}

function DelegationForm({ access, processes, onClose, onSaved }: {
  access: OrgAccess;
  processes: { value: string; label: string }[];
  onClose: () => void;
  onSaved: () => void;
}) {
  const t = useT();
  const submit = useSubmit();
  const personId = usePersonId();
  const [form] = Form.useForm<Values>();
  const [busy, setBusy] = useState(false);
  const save = async (v: Values) => {
    setBusy(true);
    const done = await submit(form, async () => api.post<Delegation>("/delegations", {
      user_id: v.owner ?? null, delegate_id: await personId(v.delegate),
      starts_at: v.period[0].toISOString(), ends_at: v.period[1].toISOString(),
      process_keys: v.process_keys?.length ? v.process_keys : null, reason: v.reason?.trim() ?? "",
    }), "委托已生效", { delegate_id: "delegate", user_id: "owner", starts_at: "period", ends_at: "period" });
    setBusy(false);
    if (done) onSaved();
  };
  return (
    <Modal open title={t("新建委托")} okText={t("保存")} cancelText={t("取消")} confirmLoading={busy} onCancel={onClose}
           onOk={() => form.submit()} destroyOnHidden okButtonProps={{ "data-testid": "delegation-form-ok" } as never}>
      <Form form={form} layout="vertical" onFinish={save} initialValues={{ period: [dayjs().startOf("minute"), dayjs().add(7, "day").endOf("day")] }}>
        {access.delegationsOfOthers && (
          <Form.Item name="owner" label={t("委托人")} extra={t("不选：本人")}>
            <PersonSelect testid="delegation-owner" />
          </Form.Item>
        )}
        <Form.Item name="delegate" label={t("受托人")} rules={[{ required: true }]}>
          <PersonPicker />
        </Form.Item>
        <Form.Item name="period" label={t("委托期间")} rules={[{ required: true }, {
          validator: (_, v?: [Dayjs, Dayjs]) => {
            if (!v?.[0] || !v?.[1]) return Promise.resolve();
            if (!v[1].isAfter(v[0])) return Promise.reject(new Error(t("结束时间应晚于开始时间")));
            if (!v[1].isAfter(dayjs())) return Promise.reject(new Error(t("结束时间已过")));
            if (v[1].diff(v[0], "day", true) > MAX_DAYS) return Promise.reject(new Error(t("委托期限最长 {n} 天", { n: MAX_DAYS })));
            return Promise.resolve();
          },
        }]}>
          <DatePicker.RangePicker showTime={{ format: "HH:mm" }} format="YYYY-MM-DD HH:mm" style={{ width: "100%" }} />
        </Form.Item>
        <Form.Item name="process_keys" label={t("委托的流程")} extra={t("不选：全部流程")}>
          <Select mode="multiple" allowClear options={processes} showSearch={{ optionFilterProp: "label" }} placeholder={t("全部流程")} />
        </Form.Item>
        <Form.Item name="reason" label={t("原因")} rules={[{ max: 500 }]}>
          <Input placeholder={t("如：外出学习")} />
        </Form.Item>
      </Form>
    </Modal>
  );
}
