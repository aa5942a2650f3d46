// 职务 (posts held in a unit, with their terms) and 分管 (the leaders in charge of a unit).
import { useCallback, useEffect, useState } from "react";
import { Alert, App, Button, DatePicker, Form, Input, Modal, Popconfirm, Select, Space, Switch, Table, Tag } from "antd";
import { PlusOutlined } from "@ant-design/icons";
import dayjs, { type Dayjs } from "dayjs";
import { api, call, type S } from "../../api";
import { useT } from "../../i18n";
import type { OrgAccess } from "../../org/access";
import { positionsFor } from "../../org/tree";
import { PersonSelect } from "./PersonSelect";
import { day, problemText, useSubmit, type OrgNode } from "./shared";

type Position = S["PositionView"];
type Assigned = S["PositionAssigned"];
type Finding = S["Finding"];
type InCharge = S["InChargeView"];

export function PositionsTab({ unit, access }: { unit: OrgNode; access: OrgAccess }) {
  const t = useT();
  const { message } = App.useApp();
  const [all, setAll] = useState(false);
  const [rows, setRows] = useState<Position[] | null>(null);
  const [assigning, setAssigning] = useState(false);
  const [ending, setEnding] = useState<Position | null>(null);
  const [warnings, setWarnings] = useState<Finding[]>([]);
  const load = useCallback(() => {
    api.get<Position[]>("/positions", { org_id: unit.id, current: !all })
      .then(setRows).catch((e) => { setRows([]); message.error(problemText(e, t)); });
  }, [unit.id, all, message, t]);
  useEffect(load, [load]);
  const today = dayjs().format("YYYY-MM-DD");
  const posts = positionsFor(unit.kind);
  return (
    <Space orientation="vertical" size={8} style={{ width: "100%" }}>
      <Space wrap>
        {access.editOrg && posts.length > 0 && (
          <Button type="primary" icon={<PlusOutlined />} onClick={() => setAssigning(true)} data-testid="position-add">{t("任命")}</Button>
        )}
        <Space size={6}><Switch size="small" checked={all} onChange={setAll} />{t("包括已卸任的")}</Space>
      </Space>
      {warnings.length > 0 && (
        <Alert type="warning" showIcon closable={{ onClose: () => setWarnings([]) }} title={t("已任命；请注意：")}
               description={<ul style={{ margin: 0, paddingInlineStart: 18 }}>{warnings.map((w) => <li key={w.code}>{w.message}</li>)}</ul>} />
      )}
      <Table<Position> rowKey="id" size="small" loading={!rows} dataSource={rows ?? []} pagination={false} scroll={{ x: 640 }}
                       data-testid="positions-table" locale={{ emptyText: t("暂无数据") }} columns={[
        { title: t("职务"), dataIndex: "key_name", width: 110, render: (v: string) => t(v) },
        { title: t("姓名"), dataIndex: "display_name", width: 100, render: (v, p) => `${v}（${p.username}）` },
        { title: t("任期开始"), dataIndex: "starts_on", width: 110, render: (v) => v ?? "—" },
        { title: t("任期结束"), dataIndex: "ends_on", width: 110, render: (v) => v ?? t("在任") },
        { title: t("状态"), width: 80, render: (_, p) => p.current ? <Tag color="success">{t("在任")}</Tag>
          : p.starts_on && p.starts_on > today ? <Tag color="processing">{t("未到任")}</Tag> : <Tag>{t("已卸任")}</Tag> },
        ...(access.editOrg ? [{ title: t("操作"), width: 100, render: (_: unknown, p: Position) => (!p.ends_on || p.ends_on >= today) && (
          <Button type="link" size="small" danger onClick={() => setEnding(p)} data-testid="position-end">{t("结束任职")}</Button>
        ) }] : []),
      ]} />
      {assigning && <AssignForm unit={unit} onClose={() => setAssigning(false)} onSaved={(found) => {
        setAssigning(false);
        setWarnings(found);
        load();
      }} />}
      {ending && <EndForm position={ending} onClose={() => setEnding(null)} onSaved={() => { setEnding(null); load(); }} />}
    </Space>
  );
}

interface AssignValues {
  key: string;
  person: number;
  starts_on?: Dayjs | null;
  ends_on?: Dayjs | null;
  note?: string;
}

function AssignForm({ unit, onClose, onSaved }: { unit: OrgNode; onClose: () => void; onSaved: (warnings: Finding[]) => void }) {
  const t = useT();
  const submit = useSubmit();
  const [form] = Form.useForm<AssignValues>();
  const [busy, setBusy] = useState(false);
  const posts = positionsFor(unit.kind);
  const save = async (v: AssignValues) => {
    setBusy(true);
    const done = await submit(form, () => api.post<Assigned>("/positions", {
      org_unit_id: unit.id, key: v.key, user_id: v.person, starts_on: day(v.starts_on), ends_on: day(v.ends_on),
      note: v.note?.trim() ?? "",
    }), "已任命", { user_id: "person" });
    setBusy(false);
    if (done) onSaved(done.warnings);
  };
  return (
    <Modal open title={t("任命：{name}", { name: unit.name })} okText={t("任命")} cancelText={t("取消")} confirmLoading={busy}
           onCancel={onClose} onOk={() => form.submit()} destroyOnHidden okButtonProps={{ "data-testid": "position-form-ok" } as never}>
      <Form form={form} layout="vertical" onFinish={save} initialValues={{ key: posts.length === 1 ? posts[0].key : undefined, starts_on: dayjs() }}>
        <Form.Item name="key" label={t("职务")} rules={[{ required: true }]}>
          <Select data-testid="position-key" options={posts.map((p) => ({ value: p.key, label: t(p.name) }))} />
        </Form.Item>
        <Form.Item name="person" label={t("人员")} rules={[{ required: true }]}>
          <PersonSelect />
        </Form.Item>
        <Space wrap size={16}>
          <Form.Item name="starts_on" label={t("任期开始")}>
            <DatePicker />
          </Form.Item>
          <Form.Item name="ends_on" label={t("任期结束（含）")} dependencies={["starts_on"]} rules={[({ getFieldValue }) => ({
            validator: (_, v?: Dayjs | null) => !v || !getFieldValue("starts_on") || !v.isBefore(getFieldValue("starts_on"), "day")
              ? Promise.resolve() : Promise.reject(new Error(t("任期结束日期不能早于开始日期"))),
          })]}>
            <DatePicker placeholder={t("留空为在任")} />
          </Form.Item>
        </Space>
        <Form.Item name="note" label={t("备注")} rules={[{ max: 500 }]}>
          <Input placeholder={t("如：经支部委员会选举产生")} />
        </Form.Item>
      </Form>
    </Modal>
  );
}

function EndForm({ position, onClose, onSaved }: { position: Position; onClose: () => void; onSaved: () => void }) {
  const t = useT();
  const submit = useSubmit();
  const [form] = Form.useForm<{ ends_on?: Dayjs | null; note?: string }>();
  const [busy, setBusy] = useState(false);
  const save = async (v: { ends_on?: Dayjs | null; note?: string }) => {
    setBusy(true);
    const done = await submit(form, () => api.post(`/positions/${position.id}/end`, { ends_on: day(v.ends_on), note: v.note?.trim() ?? "" }),
                              "任职已结束");
    setBusy(false);
    if (done) onSaved();
  };
  return (
    <Modal open title={t("结束任职：{name} {post}", { name: position.display_name, post: t(position.key_name) })} okText={t("结束任职")}
           cancelText={t("取消")} okButtonProps={{ danger: true, "data-testid": "position-end-ok" } as never} confirmLoading={busy}
           onCancel={onClose} onOk={() => form.submit()} destroyOnHidden>
      <Form form={form} layout="vertical" onFinish={save}>
        <Form.Item name="ends_on" label={t("任期最后一天（含）")} extra={t("留空为昨天：今天起不再在任")}>
          <DatePicker />
        </Form.Item>
        <Form.Item name="note" label={t("备注")} rules={[{ max: 500 }]}>
          <Input placeholder={t("如：换届、调离")} />
        </Form.Item>
      </Form>
    </Modal>
  );
}

/** 分管: who leads the unit as 分管领导 (assignment rule in_charge_of:…). */
export function InChargeTab({ unit, access }: { unit: OrgNode; access: OrgAccess }) {
  const t = useT();
  const { message } = App.useApp();
  const submit = useSubmit();
  const [rows, setRows] = useState<InCharge[] | null>(null);
  const [leader, setLeader] = useState<number | undefined>();
  const [busy, setBusy] = useState(false);
  const load = useCallback(() => {
    api.get<InCharge[]>(`/org-units/${unit.id}/in-charge`).then(setRows).catch((e) => { setRows([]); message.error(problemText(e, t)); });
  }, [unit.id, message, t]);
  useEffect(load, [load]);
  const add = async () => {
    if (!leader) return;
    setBusy(true);
    const done = await submit(null, () => api.post(`/org-units/${unit.id}/in-charge`, { leader_user_id: leader }), "已添加分管领导");
    setBusy(false);
    if (done) {
      setLeader(undefined);
      load();
    }
  };
  const remove = async (r: InCharge) => {
    const done = await submit(null, () => call("DELETE", `/org-units/${unit.id}/in-charge`, { query: { leader_user_id: r.leader_user_id } })
      .then(() => true), "已解除分管");
    if (done) load();
  };
  return (
    <Space orientation="vertical" size={8} style={{ width: "100%" }}>
      {access.editOrg && (
        <Space.Compact style={{ width: "100%", maxWidth: 480 }}>
          <div style={{ flex: 1, minWidth: 0 }}><PersonSelect value={leader} onChange={setLeader} testid="in-charge-person" /></div>
          <Button type="primary" disabled={!leader} loading={busy} onClick={add} data-testid="in-charge-add">{t("添加分管领导")}</Button>
        </Space.Compact>
      )}
      <Table<InCharge> rowKey="leader_user_id" size="small" loading={!rows} dataSource={rows ?? []} pagination={false}
                       data-testid="in-charge-table" locale={{ emptyText: t("暂无分管领导") }} columns={[
        { title: t("分管领导"), dataIndex: "display_name", render: (v, r) => `${v}（${r.username}）` },
        { title: t("现任职务"), dataIndex: "posts", render: (p: string[]) => p.join("、") || "—" },
        ...(access.editOrg ? [{ title: t("操作"), width: 100, render: (_: unknown, r: InCharge) => (
          <Popconfirm title={t("解除 {name} 对{unit}的分管？", { name: r.display_name, unit: unit.name })} okText={t("解除")}
                      cancelText={t("取消")} onConfirm={() => remove(r)}>
            <Button type="link" size="small" danger data-testid="in-charge-remove">{t("解除")}</Button>
          </Popconfirm>
        ) }] : []),
      ]} />
    </Space>
  );
}
