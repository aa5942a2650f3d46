// One unit: its details with 编辑, 新建下级, 移动, 撤销/恢复; its change history; the rules.md §5 checks.
import { useEffect, useState } from "react";
import { Alert, Button, Card, Checkbox, DatePicker, Descriptions, Form, Input, InputNumber, List, Modal, Popconfirm, Select, Space,
  Switch, Table, Tag } from "antd";
import dayjs, { type Dayjs } from "dayjs";
import { api, call, type S } from "../../api";
import { useT } from "../../i18n";
import type { OrgAccess } from "../../org/access";
import { changedFields } from "../../org/forms";
import { KIND_NAMES, childKinds, fitsUnder, nextOrder, pathTo, type Indexed } from "../../org/tree";
import { OrgPicker } from "../../components/OrgPicker";
import { when } from "../../format";
import { day, problemText, useSubmit, type OrgNode } from "./shared";

type Unit = S["OrgUnitView"];
type History = S["HistoryView"];
type Finding = S["Finding"];

export function UnitDetails({ unit, index, access, onChanged, onCreated }: {
  unit: OrgNode;
  index: Indexed<OrgNode>;
  access: OrgAccess;
  onChanged: () => void;
  onCreated: (id: number) => void;
}) {
  const t = useT();
  const submit = useSubmit();
  const [editing, setEditing] = useState(false);
  const [adding, setAdding] = useState(false);
  const [moving, setMoving] = useState(false);
  const parent = unit.parent_id != null ? index.byId.get(unit.parent_id) : undefined;
  const active = unit.status === "active";
  const setStatus = async (status: "active" | "dissolved") => {
    if (await submit(null, () => call("PATCH", `/org-units/${unit.id}`, { body: { status } }), status === "dissolved" ? "组织已撤销" : "组织已恢复"))
      onChanged();
  };
  return (
    <Card size="small" title={<span data-testid="unit-title">{unit.name}</span>}
          extra={access.editOrg && (
            <Space wrap size={6}>
              <Button size="small" onClick={() => setEditing(true)} data-testid="unit-edit">{t("编辑")}</Button>
              {active && childKinds(unit.kind).length > 0 && (
                <Button size="small" type="primary" onClick={() => setAdding(true)} data-testid="unit-add-child">{t("新建下级组织")}</Button>
              )}
              {active && <Button size="small" onClick={() => setMoving(true)} data-testid="unit-move">{t("移动")}</Button>}
              {active ? (
                <Popconfirm title={t("撤销组织 {name}？", { name: unit.name })} description={t("须先转出人员、撤销下级组织；在任职务随之结束")}
                            okText={t("撤销组织")} cancelText={t("取消")} okButtonProps={{ danger: true }} onConfirm={() => setStatus("dissolved")}>
                  <Button size="small" danger data-testid="unit-dissolve">{t("撤销组织")}</Button>
                </Popconfirm>
              ) : (
                <Button size="small" onClick={() => setStatus("active")} data-testid="unit-restore">{t("恢复组织")}</Button>
              )}
            </Space>
          )}>
      <Descriptions size="small" column={{ xs: 1, sm: 2, lg: 3 }} data-testid="unit-details" items={[
        { key: "name", label: t("名称"), children: unit.name },
        { key: "code", label: t("编码"), children: <code>{unit.code}</code> },
        { key: "kind", label: t("类型"), children: t(unit.kind_name) },
        { key: "parent", label: t("上级组织"), children: parent ? parent.name : t("（顶级）") },
        { key: "status", label: t("状态"), children: active ? <Tag color="success">{t("正常")}</Tag> : <Tag>{t("已撤销")}</Tag> },
        { key: "established", label: t("成立日期"), children: unit.established_on ?? "—" },
        ...(unit.kind === "party_committee"
          ? [{ key: "authority", label: t("审批预备党员"), children: unit.approval_authority ? t("有审批权限") : t("无") }] : []),
        { key: "order", label: t("排序"), children: unit.sort_order },
        { key: "updated", label: t("最后修改"), children: when(unit.updated_at) || "—" },
      ]} />
      {editing && <UnitForm unit={unit} parent={parent ?? null} onClose={() => setEditing(false)} onSaved={() => { setEditing(false); onChanged(); }} />}
      {adding && <UnitForm parent={unit} onClose={() => setAdding(false)} onSaved={(id) => { setAdding(false); onCreated(id); }} />}
      {moving && <MoveForm unit={unit} index={index} onClose={() => setMoving(false)} onSaved={() => { setMoving(false); onChanged(); }} />}
    </Card>
  );
}

interface UnitValues {
  code: string;
  name: string;
  kind: string;
  sort_order: number;
  established_on: Dayjs | null;
  approval_authority: boolean;
}

/** Create a unit under `parent` (null: a root), or edit `unit` in place (its code and kind stay). */
export function UnitForm({ unit, parent, siblings, onClose, onSaved }: {
  unit?: OrgNode;
  parent: OrgNode | null;
  /** The new unit's siblings-to-be, for a sort order after them (default: the parent's children). */
  siblings?: OrgNode[];
  onClose: () => void;
  onSaved: (id: number) => void;
}) {
  const t = useT();
  const submit = useSubmit();
  const [form] = Form.useForm<UnitValues>();
  const [busy, setBusy] = useState(false);
  const kinds = childKinds(parent?.kind ?? null);
  const kind = Form.useWatch("kind", form) ?? unit?.kind;
  const save = async (v: UnitValues) => {
    setBusy(true);
    const body = { name: v.name.trim(), sort_order: v.sort_order ?? 0, established_on: day(v.established_on),
                   approval_authority: kind === "party_committee" ? !!v.approval_authority : false };
    const saved = await submit(form, () => unit
      ? call<Unit>("PATCH", `/org-units/${unit.id}`, { body: changedFields(
          { name: unit.name, sort_order: unit.sort_order, established_on: unit.established_on, approval_authority: unit.approval_authority ?? false }, body) })
      : api.post<Unit>("/org-units", { ...body, code: v.code.trim(), kind: v.kind, parent_id: parent?.id ?? null }),
    unit ? "已保存" : "组织已创建", { parent_id: "kind" });
    setBusy(false);
    if (saved) onSaved(saved.id);
  };
  return (
    <Modal open title={unit ? t("编辑组织") : parent ? t("在 {name} 下新建组织", { name: parent.name }) : t("新建顶级组织")}
           okText={t("保存")} cancelText={t("取消")} confirmLoading={busy} onCancel={onClose} onOk={() => form.submit()}
           okButtonProps={{ "data-testid": "unit-form-ok" } as never} destroyOnHidden>
      <Form form={form} layout="vertical" onFinish={save} data-testid="unit-form" initialValues={unit ? {
        name: unit.name, sort_order: unit.sort_order, approval_authority: !!unit.approval_authority,
        established_on: unit.established_on ? dayjs(unit.established_on) : null,
      } : { kind: kinds.length === 1 ? kinds[0] : undefined, approval_authority: false,
        sort_order: nextOrder(siblings ?? (parent?.children ?? []) as OrgNode[]) }}>
        {!unit && (
          <Form.Item name="code" label={t("编码")} extra={t("唯一，创建后不能修改；处理人规则 org:<编码> 引用它")}
                     rules={[{ required: true, whitespace: true }, { max: 64 },
                             { pattern: /^[A-Za-z0-9_\-.]+$/, message: t("编码只能包含字母、数字和 _ - .") }]}>
            <Input data-testid="unit-code" autoComplete="off" />
          </Form.Item>
        )}
        <Form.Item name="name" label={t("名称")} rules={[{ required: true, whitespace: true }, { max: 200 }]}>
          <Input data-testid="unit-name" autoComplete="off" />
        </Form.Item>
        {!unit && (
          <Form.Item name="kind" label={t("类型")} rules={[{ required: true }]}
                     extra={parent ? t("{parent}之下可设：{kinds}", { parent: t(parent.kind_name), kinds: kinds.map((k) => t(KIND_NAMES[k])).join("、") }) : undefined}>
            <Select data-testid="unit-kind" options={kinds.map((k) => ({ value: k, label: t(KIND_NAMES[k]) }))} />
          </Form.Item>
        )}
        <Space wrap size={16}>
          <Form.Item name="sort_order" label={t("排序")}>
            <InputNumber precision={0} style={{ width: 120 }} />
          </Form.Item>
          <Form.Item name="established_on" label={t("成立日期")}>
            <DatePicker />
          </Form.Item>
        </Space>
        {kind === "party_committee" && (
          <Form.Item name="approval_authority" valuePropName="checked">
            <Checkbox>{t("有审批预备党员的权限（基层党委）")}</Checkbox>
          </Form.Item>
        )}
      </Form>
    </Modal>
  );
}

function MoveForm({ unit, index, onClose, onSaved }: {
  unit: OrgNode;
  index: Indexed<OrgNode>;
  onClose: () => void;
  onSaved: () => void;
}) {
  const t = useT();
  const submit = useSubmit();
  const [form] = Form.useForm<{ parent: number }>();
  const [busy, setBusy] = useState(false);
  const save = async ({ parent }: { parent: number }) => {
    setBusy(true);
    const moved = await submit(form, () => api.post<Unit>(`/org-units/${unit.id}/move`, { parent_id: parent }), "组织已移动",
                               { parent_id: "parent", org_id: "parent" });
    setBusy(false);
    if (moved) onSaved();
  };
  return (
    <Modal open title={t("移动 {name}", { name: unit.name })} okText={t("移动")} cancelText={t("取消")} confirmLoading={busy}
           onCancel={onClose} onOk={() => form.submit()} destroyOnHidden>
      <Alert type="info" showIcon style={{ marginBottom: 12 }}
             title={t("下级组织随之移动；原上级和路径记入变更记录")} />
      <Form form={form} layout="vertical" onFinish={save}>
        <Form.Item name="parent" label={t("新的上级组织")} rules={[{ required: true }, {
          validator: (_, id?: number) => {
            const target = id == null ? undefined : index.byId.get(id);
            if (!target) return Promise.resolve();
            if (pathTo(index, id!).some((n) => n.id === unit.id)) return Promise.reject(new Error(t("不能移到它自己或它的下级之下")));
            if (!fitsUnder(unit.kind, target.kind))
              return Promise.reject(new Error(t("{kind}不能设在{parent}之下", { kind: t(unit.kind_name), parent: t(target.kind_name) })));
            return Promise.resolve();
          },
        }]}>
          <OrgPicker />
        </Form.Item>
      </Form>
    </Modal>
  );
}

const ACTIONS: Record<string, string> = { create: "新建", update: "修改", move: "移动", dissolve: "撤销组织", restore: "恢复组织" };
const FIELDS: Record<string, string> = {
  name: "名称", sort_order: "排序", established_on: "成立日期", approval_authority: "审批权限", status: "状态",
  ended_positions: "结束的任职", removed_in_charge: "解除的分管", subtree_units: "随之移动的组织数",
};

function show(v: unknown, t: (k: string) => string): string {
  if (v === null || v === undefined || v === "") return "—";
  if (v === true) return t("是");
  if (v === false) return t("否");
  if (v === "active") return t("正常");
  if (v === "dissolved") return t("已撤销");
  return Array.isArray(v) ? v.join("、") : String(v);
}

/** The unit's history: created, changed (each field from → to), moved (from which parent), dissolved. */
export function UnitHistory({ unit, index }: { unit: OrgNode; index: Indexed<OrgNode> }) {
  const t = useT();
  const [rows, setRows] = useState<History[] | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    api.get<History[]>(`/org-units/${unit.id}/history`).then(setRows).catch((e) => setError(problemText(e, t)));
  }, [unit.id, unit.updated_at, t]);
  const name = (id: number | null) => (id == null ? t("（顶级）") : index.byId.get(id)?.name ?? `#${id}`);
  const what = (h: History) => {
    if (h.action === "move") return t("从 {from} 移到 {to}", { from: name(h.old_parent_id), to: name(h.new_parent_id) });
    if (h.changes.via === "import") return t("通过 Excel 导入");
    if (h.action === "create") return `${t("编码")} ${show(h.changes.code, t)}，${t("上级组织")} ${name(h.new_parent_id)}`;
    return Object.entries(h.changes).map(([k, v]) => Array.isArray(v) && v.length === 2 && !k.startsWith("ended") && !k.startsWith("removed")
      ? `${t(FIELDS[k] ?? k)}：${show(v[0], t)} → ${show(v[1], t)}` : `${t(FIELDS[k] ?? k)}：${show(v, t)}`).join("；");
  };
  if (error) return <Alert type="error" showIcon title={error} />;
  return (
    <Table<History> rowKey="id" size="small" loading={!rows} dataSource={[...(rows ?? [])].reverse()} pagination={{ pageSize: 10, hideOnSinglePage: true }}
                    scroll={{ x: 600 }} data-testid="unit-history" locale={{ emptyText: t("暂无数据") }} columns={[
      { title: t("时间"), dataIndex: "changed_at", width: 150, render: (v) => when(v) },
      { title: t("动作"), dataIndex: "action", width: 90, render: (a: string) => t(ACTIONS[a] ?? a) },
      { title: t("内容"), render: (_, h) => what(h) },
      { title: t("操作人"), dataIndex: "changed_by_name", width: 100, render: (v) => v ?? t("系统") },
    ]} />
  );
}

/** The rules.md §5 findings for the unit (and, when asked, its subtree): errors break a confirmed
 * rule, warnings a "generally" one. */
export function UnitChecks({ unit }: { unit: OrgNode }) {
  const t = useT();
  const [recursive, setRecursive] = useState(false);
  const [rows, setRows] = useState<Finding[] | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    setRows(null);
    api.get<Finding[]>(`/org-units/${unit.id}/checks`, { recursive }).then(setRows).catch((e) => setError(problemText(e, t)));
  }, [unit.id, recursive, t]);
  if (error) return <Alert type="error" showIcon title={error} />;
  return (
    <Space orientation="vertical" style={{ width: "100%" }}>
      <Space size={6}><Switch size="small" checked={recursive} onChange={setRecursive} />{t("包括下级组织")}</Space>
      {rows && rows.length === 0 && <Alert type="success" showIcon title={t("符合党组织设置的各项规定")} />}
      {(!rows || rows.length > 0) && <List size="small" loading={!rows} dataSource={rows ?? []} data-testid="unit-checks" renderItem={(f) => (
        <List.Item>
          <Space orientation="vertical" size={0}>
            <Space wrap size={4}>
              <Tag color={f.level === "error" ? "error" : "warning"}>{f.level === "error" ? t("不符合规定") : t("提示")}</Tag>
              {recursive && f.org_name && <b>{f.org_name}</b>}
              <span>{f.message}</span>
            </Space>
            <span style={{ color: "#888", fontSize: 12 }}>{f.rule} {f.source}</span>
          </Space>
        </List.Item>
      )} />}
    </Space>
  );
}
