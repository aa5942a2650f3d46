// 人员: the people of a unit and the units below it (一人一档): search, create, edit, party status
// and its history, and for account administrators a password reset and unlocking.
import { useCallback, useEffect, useState } from "react";
import { Alert, App, Button, Checkbox, DatePicker, Form, Input, Modal, Popconfirm, Select, Space, Table, Tag, Typography } from "antd";
import { PlusOutlined } from "@ant-design/icons";
import dayjs, { type Dayjs } from "dayjs";
import { api, call, type Page, type S } from "../../api";
import { useT } from "../../i18n";
import type { OrgAccess } from "../../org/access";
import { changedFields } from "../../org/forms";
import { ADMIN_KINDS, PARTY_KINDS, type Indexed } from "../../org/tree";
import { OrgPicker } from "../../components/OrgPicker";
import { USERNAME } from "../../designer/ruleBuilder";
import { when } from "../../format";
import { PARTY_STATUS, day, problemText, useSubmit, type OrgNode, type Person } from "./shared";

type Created = S["UserCreated"];
type StatusRow = S["StatusHistoryRead"];

export function PeopleTab({ unit, index, access }: { unit: OrgNode; index: Indexed<OrgNode>; access: OrgAccess }) {
  const t = useT();
  const { message, modal } = App.useApp();
  const [q, setQ] = useState("");
  const [status, setStatus] = useState<string | undefined>();
  const [page, setPage] = useState(1);
  const [rows, setRows] = useState<Page<Person> | null>(null);
  const [editing, setEditing] = useState<Person | "new" | null>(null);
  const [history, setHistory] = useState<Person | null>(null);
  const load = useCallback(() => {
    api.get<Page<Person>>("/users", { org_id: unit.id, q, party_status: status, page, size: 20 })
      .then(setRows).catch((e) => { setRows({ items: [], total: 0, page: 1, size: 20 }); message.error(problemText(e, t)); });
  }, [unit.id, q, status, page, message, t]);
  useEffect(load, [load]);
  const showPassword = (who: string, password: string) => modal.info({
    title: t("{name} 的初始密码", { name: who }),
    content: (
      <Space orientation="vertical">
        <Typography.Text copyable code data-testid="initial-password">{password}</Typography.Text>
        <span>{t("只显示这一次，请当面或通过安全渠道告知本人；首次登录须修改密码")}</span>
      </Space>
    ),
    okText: t("确定"),
  });
  const account = async (p: Person, what: "password-reset" | "unlock") => {
    try {
      const r = await api.post<{ initial_password?: string }>(`/users/${p.id}/${what}`);
      if (what === "password-reset" && r.initial_password) showPassword(p.display_name, r.initial_password);
      else message.success(t("账号已解锁"));
      load();
    } catch (e) {
      message.error(problemText(e, t));
    }
  };
  return (
    <Space orientation="vertical" size={8} style={{ width: "100%" }}>
      <Space wrap>
        <Input.Search allowClear placeholder={t("姓名、拼音首字母、用户名或党员编号")} style={{ width: 260 }} onSearch={(v) => { setQ(v); setPage(1); }}
                      data-testid="people-search" />
        <Select allowClear placeholder={t("政治面貌")} style={{ width: 150 }} value={status} onChange={(v) => { setStatus(v); setPage(1); }}
                options={Object.entries(PARTY_STATUS).map(([value, label]) => ({ value, label: t(label) }))} />
        {access.editPeople && (
          <Button type="primary" icon={<PlusOutlined />} onClick={() => setEditing("new")} data-testid="person-add">{t("新建人员")}</Button>
        )}
      </Space>
      <Table<Person> rowKey="id" size="small" loading={!rows} dataSource={rows?.items ?? []} scroll={{ x: 900 }} data-testid="people-table"
        locale={{ emptyText: t("暂无数据") }}
        onRow={() => ({ "data-testid": "person-row" } as never)}
        pagination={{ current: page, pageSize: 20, total: rows?.total ?? 0, showSizeChanger: false, hideOnSinglePage: true,
                      showTotal: (n) => t("共 {n} 条", { n }), onChange: setPage }}
        columns={[
          { title: t("姓名"), dataIndex: "display_name", width: 90, fixed: "left" },
          { title: t("用户名"), dataIndex: "username", width: 110 },
          { title: t("党员编号"), dataIndex: "member_code", width: 100, render: (v) => v ?? "—" },
          { title: t("部门"), dataIndex: "department_name", width: 100, render: (v) => v ?? "—" },
          { title: t("党组织"), dataIndex: "branch_name", width: 120, render: (v) => v ?? "—" },
          { title: t("政治面貌"), dataIndex: "party_status", width: 130, render: (_, p) => (
            <Button type="link" size="small" style={{ padding: 0 }} onClick={() => setHistory(p)} title={t("政治面貌记录")}>
              {t(PARTY_STATUS[p.party_status] ?? p.party_status_name)}{p.party_status_since ? ` ${p.party_status_since}` : ""}
            </Button>
          ) },
          { title: t("手机号"), dataIndex: "phone", width: 110, render: (v) => v ?? "—" },
          { title: t("账号"), width: 90, render: (_, p) => !p.has_login ? <Tag>{t("无登录账号")}</Tag>
            : p.locked ? <Tag color="error">{t("已锁定")}</Tag> : p.status === "disabled" ? <Tag>{t("已禁用")}</Tag>
            : <Tag color="success">{t("正常")}</Tag> },
          { title: t("操作"), width: 180, render: (_, p) => (
            <Space size={0} wrap>
              {access.editPeople && <Button type="link" size="small" onClick={() => setEditing(p)} data-testid="person-edit">{t("编辑")}</Button>}
              {access.accounts && p.has_login && (
                <Popconfirm title={t("为 {name} 重置密码？", { name: p.display_name })} description={t("原密码立即失效")}
                            okText={t("重置")} cancelText={t("取消")} onConfirm={() => account(p, "password-reset")}>
                  <Button type="link" size="small" data-testid="person-reset">{t("重置密码")}</Button>
                </Popconfirm>
              )}
              {access.unlock && p.locked && (
                <Button type="link" size="small" onClick={() => account(p, "unlock")} data-testid="person-unlock">{t("解锁")}</Button>
              )}
            </Space>
          ) },
        ]} />
      {editing && (
        <PersonForm person={editing === "new" ? null : editing} unit={unit} index={index} access={access} onClose={() => setEditing(null)}
                    onSaved={(created) => {
                      setEditing(null);
                      load();
                      if (created?.initial_password) showPassword(created.user.display_name, created.initial_password);
                    }} />
      )}
      {history && <StatusHistory person={history} onClose={() => setHistory(null)} />}
    </Space>
  );
}

interface PersonValues {
  username: string;
  display_name: string;
  member_code?: string;
  department?: number;
  branch?: number;
  party_status: string;
  party_status_since?: Dayjs | null;
  id_number?: string;
  phone?: string;
  email?: string;
  status?: string;
  note?: string;
  create_login?: boolean;
}

const ID_NUMBER = /^\d{17}[\dXx]$/;
const PHONE = /^(\+86)?1\d{10}$/;

function PersonForm({ person, unit, index, access, onClose, onSaved }: {
  person: Person | null;
  unit: OrgNode;
  index: Indexed<OrgNode>;
  access: OrgAccess;
  onClose: () => void;
  onSaved: (created?: Created) => void;
}) {
  const t = useT();
  const submit = useSubmit();
  const [form] = Form.useForm<PersonValues>();
  const [busy, setBusy] = useState(false);
  const code = (id?: number | null) => (id == null ? null : index.byId.get(id)?.code ?? null);
  const inKinds = (kinds: string[], what: string) => ({
    validator: (_: unknown, id?: number) => id == null || kinds.includes(index.byId.get(id)?.kind ?? "")
      ? Promise.resolve() : Promise.reject(new Error(t("请选择{what}", { what: t(what) }))),
  });
  const save = async (v: PersonValues) => {
    setBusy(true);
    const fields = {
      display_name: v.display_name.trim(), member_code: v.member_code?.trim() || null, department_code: code(v.department),
      branch_code: code(v.branch), party_status: v.party_status, party_status_since: day(v.party_status_since), email: v.email?.trim() || null,
      ...(v.status ? { status: v.status } : {}),
    };
    // Blank ID and phone numbers leave the ones on file as they are (the form shows them masked).
    const sensitive = { ...(v.id_number ? { id_number: v.id_number.trim() } : {}), ...(v.phone ? { phone: v.phone.trim() } : {}) };
    const alias = { department_code: "department", branch_code: "branch" };
    if (person) {
      const before = { display_name: person.display_name, member_code: person.member_code, department_code: code(person.department_id),
                       branch_code: code(person.branch_id), party_status: person.party_status, party_status_since: person.party_status_since,
                       email: person.email, status: person.status };
      const body = { ...changedFields(before, fields), ...sensitive };
      const saved = await submit(form, () => call<Person>("PATCH", `/users/${person.id}`, { body: { ...body, note: v.note?.trim() || null } }),
                                 "已保存", alias);
      setBusy(false);
      if (saved) onSaved();
    } else {
      const created = await submit(form, () => api.post<Created>("/users", {
        ...fields, ...sensitive, username: v.username.trim(), note: v.note?.trim() || null, create_login: !!v.create_login,
      }), "人员已创建", alias);
      setBusy(false);
      if (created) onSaved(created);
    }
  };
  const initial: Partial<PersonValues> = person ? {
    username: person.username, display_name: person.display_name, member_code: person.member_code ?? undefined,
    department: person.department_id ?? undefined, branch: person.branch_id ?? undefined, party_status: person.party_status,
    party_status_since: person.party_status_since ? dayjs(person.party_status_since) : null, email: person.email ?? undefined,
    status: person.status,
  } : {
    party_status: "none",
    department: ADMIN_KINDS.includes(unit.kind) ? unit.id : undefined,
    branch: PARTY_KINDS.includes(unit.kind) ? unit.id : undefined,
  };
  return (
    <Modal open width={640} title={person ? t("编辑 {name}", { name: person.display_name }) : t("新建人员")} okText={t("保存")}
           cancelText={t("取消")} confirmLoading={busy} onCancel={onClose} onOk={() => form.submit()} destroyOnHidden
           okButtonProps={{ "data-testid": "person-form-ok" } as never}>
      <Form form={form} layout="vertical" onFinish={save} initialValues={initial} data-testid="person-form">
        <Space wrap size={12} style={{ width: "100%" }}>
          <Form.Item name="username" label={t("用户名")} style={{ width: 260 }}
                     rules={person ? [] : [{ required: true, whitespace: true },
                       { pattern: USERNAME, message: t("用户名只能包含字母、数字和 _ . - @，2 到 64 个字符") }]}>
            <Input disabled={!!person} autoComplete="off" data-testid="person-username" />
          </Form.Item>
          <Form.Item name="display_name" label={t("姓名")} style={{ width: 260 }} rules={[{ required: true, whitespace: true }, { max: 100 }]}>
            <Input autoComplete="off" data-testid="person-name" />
          </Form.Item>
          <Form.Item name="member_code" label={t("党员编号（人员编号）")} style={{ width: 260 }} rules={[{ max: 64 }]}
                     extra={t("一人一档：唯一，Excel 导入按它匹配")}>
            <Input autoComplete="off" data-testid="person-code" />
          </Form.Item>
          <Form.Item name="email" label={t("邮箱")} style={{ width: 260 }} rules={[{ type: "email" }, { max: 200 }]}>
            <Input autoComplete="off" />
          </Form.Item>
          <Form.Item name="department" label={t("所在部门")} style={{ width: 260 }} rules={[inKinds(ADMIN_KINDS, "单位或科室")]}>
            <OrgPicker />
          </Form.Item>
          <Form.Item name="branch" label={t("所在党组织")} style={{ width: 260 }} rules={[inKinds(PARTY_KINDS, "党组织")]}>
            <OrgPicker />
          </Form.Item>
          <Form.Item name="party_status" label={t("政治面貌")} style={{ width: 260 }} rules={[{ required: true }]}>
            <Select data-testid="person-status" options={Object.entries(PARTY_STATUS).map(([value, label]) => ({ value, label: t(label) }))} />
          </Form.Item>
          <Form.Item name="party_status_since" label={t("自何时起")} style={{ width: 260 }}>
            <DatePicker style={{ width: "100%" }} />
          </Form.Item>
          <Form.Item name="id_number" label={t("身份证号")} style={{ width: 260 }}
                     rules={[{ pattern: ID_NUMBER, message: t("身份证号应为18位，前17位为数字，最后一位为数字或X") }]}>
            <Input autoComplete="off" placeholder={person?.id_number ? t("{v}（留空不变）", { v: person.id_number }) : undefined} />
          </Form.Item>
          <Form.Item name="phone" label={t("手机号")} style={{ width: 260 }} rules={[{ pattern: PHONE, message: t("手机号应为11位，以1开头") }]}>
            <Input autoComplete="off" placeholder={person?.phone ? t("{v}（留空不变）", { v: person.phone }) : undefined} />
          </Form.Item>
          {person && access.accounts && (
            <Form.Item name="status" label={t("账号状态")} style={{ width: 260 }}>
              <Select options={[{ value: "active", label: t("正常") }, { value: "disabled", label: t("已禁用") }]} />
            </Form.Item>
          )}
        </Space>
        <Form.Item name="note" label={t("备注（记入政治面貌记录）")} rules={[{ max: 500 }]}>
          <Input.TextArea rows={2} />
        </Form.Item>
        {!person && access.accounts && (
          <Form.Item name="create_login" valuePropName="checked">
            <Checkbox data-testid="person-login">{t("同时创建登录账号（生成初始密码，只显示一次）")}</Checkbox>
          </Form.Item>
        )}
        {!person && !access.accounts && (
          <Alert type="info" showIcon title={t("登录账号由系统管理员创建；这里只建立人员档案")} />
        )}
      </Form>
    </Modal>
  );
}

function StatusHistory({ person, onClose }: { person: Person; onClose: () => void }) {
  const t = useT();
  const [rows, setRows] = useState<StatusRow[] | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    api.get<StatusRow[]>(`/users/${person.id}/party-status-history`).then(setRows).catch((e) => setError(problemText(e, t)));
  }, [person.id, t]);
  return (
    <Modal open title={t("{name} 的政治面貌记录", { name: person.display_name })} footer={null} onCancel={onClose} width={600}>
      {error && <Alert type="error" showIcon title={error} />}
      <Table<StatusRow> rowKey={(r) => String(r.recorded_at)} size="small" loading={!rows && !error} dataSource={rows ?? []} pagination={false}
                        data-testid="status-history" locale={{ emptyText: t("暂无数据") }} columns={[
        { title: t("政治面貌"), dataIndex: "status", render: (s: string, r) => t(PARTY_STATUS[s] ?? r.status_name) },
        { title: t("自何时起"), dataIndex: "since", render: (v) => v ?? "—" },
        { title: t("备注"), dataIndex: "note", render: (v) => v ?? "" },
        { title: t("记录时间"), dataIndex: "recorded_at", render: (v) => when(v as string) },
      ]} />
    </Modal>
  );
}
