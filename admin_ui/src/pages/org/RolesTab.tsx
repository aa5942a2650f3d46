// 角色与授权: the roles with their permissions and data scope, and who holds which role for which
// unit. Changing them is the 安全保密管理员's (role.write); 三员分立 is the server's to enforce.
import { useCallback, useEffect, useMemo, useState } from "react";
import { Alert, App, Button, Card, Checkbox, Form, Input, Modal, Popconfirm, Select, Space, Table, Tag, Tooltip } from "antd";
import { PlusOutlined } from "@ant-design/icons";
import { api, call, type S } from "../../api";
import { useT } from "../../i18n";
import type { OrgAccess } from "../../org/access";
import { OrgPicker } from "../../components/OrgPicker";
import { PersonSelect } from "./PersonSelect";
import { DATA_SCOPES, problemText, useSubmit } from "./shared";

type Role = S["RoleView"];
type Grant = S["GrantView"];

export function RolesTab({ access, canReadOrgs }: { access: OrgAccess; canReadOrgs: boolean }) {
  const t = useT();
  const { message } = App.useApp();
  const submit = useSubmit();
  const [roles, setRoles] = useState<Role[] | null>(null);
  const [perms, setPerms] = useState<Record<string, string>>({});
  const [grants, setGrants] = useState<Grant[] | null>(null);
  const [q, setQ] = useState("");
  const [granting, setGranting] = useState(false);
  const [editing, setEditing] = useState<Role | "new" | null>(null);
  const load = useCallback(() => {
    const fail = (e: unknown) => message.error(problemText(e, t));
    api.get<Role[]>("/roles").then(setRoles).catch((e) => { setRoles([]); fail(e); });
    api.get<Record<string, string>>("/roles/permissions").then(setPerms).catch(fail);
    api.get<Grant[]>("/role-grants").then(setGrants).catch((e) => { setGrants([]); fail(e); });
  }, [message, t]);
  useEffect(load, [load]);
  const roleName = useMemo(() => Object.fromEntries((roles ?? []).map((r) => [r.key, r.name])), [roles]);
  const shown = (grants ?? []).filter((g) => !q.trim() || g.username.includes(q.trim()) || g.role_key.includes(q.trim())
    || (roleName[g.role_key] ?? "").includes(q.trim()) || (g.org_unit_name ?? "").includes(q.trim()));
  const revoke = async (g: Grant) => {
    if (await submit(null, () => call("DELETE", `/role-grants/${g.id}`).then(() => true), "授权已撤销")) load();
  };
  return (
    <Space orientation="vertical" size={12} style={{ width: "100%" }}>
      <Card size="small" title={t("角色与权限")} extra={access.editRoles && (
        <Button size="small" icon={<PlusOutlined />} onClick={() => setEditing("new")} data-testid="role-add">{t("新建自定义角色")}</Button>
      )}>
        <Table<Role> rowKey="key" size="small" loading={!roles} dataSource={roles ?? []} pagination={false} scroll={{ x: 800 }}
                     data-testid="roles-table" columns={[
          { title: t("角色名称"), dataIndex: "name", width: 150, render: (v, r) => (
            <Space orientation="vertical" size={0}>
              <span>{v} {r.builtin && <Tag>{t("内置")}</Tag>}</span>
              <code style={{ fontSize: 12, color: "#888" }}>{r.key}</code>
            </Space>
          ) },
          { title: t("数据范围"), dataIndex: "data_scope", width: 110, render: (s: string) => t(DATA_SCOPES[s] ?? s) },
          { title: t("权限"), dataIndex: "permissions", render: (ps: string[]) => (
            <Space size={[4, 4]} wrap>{ps.map((p) => <Tooltip key={p} title={p}><Tag>{perms[p] ?? p}</Tag></Tooltip>)}</Space>
          ) },
          { title: t("持有人数"), dataIndex: "holders", width: 80 },
          ...(access.editRoles ? [{ title: t("操作"), width: 70, render: (_: unknown, r: Role) => !r.builtin && (
            <Button type="link" size="small" onClick={() => setEditing(r)}>{t("编辑")}</Button>
          ) }] : []),
        ]} />
      </Card>
      <Card size="small" title={t("授权")} extra={access.editRoles && (
        <Button size="small" type="primary" icon={<PlusOutlined />} onClick={() => setGranting(true)} data-testid="grant-add">{t("授权")}</Button>
      )}>
        <Input.Search allowClear placeholder={t("用户名、角色或组织")} style={{ width: 240, marginBottom: 8 }} onChange={(e) => setQ(e.target.value)} />
        <Table<Grant> rowKey="id" size="small" loading={!grants} dataSource={shown} scroll={{ x: 560 }} data-testid="grants-table"
                      pagination={{ pageSize: 20, hideOnSinglePage: true }} locale={{ emptyText: t("暂无数据") }} columns={[
          { title: t("用户名"), dataIndex: "username", sorter: (a, b) => a.username.localeCompare(b.username) },
          { title: t("角色名称"), dataIndex: "role_key", render: (k: string) => roleName[k] ?? k,
            filters: (roles ?? []).map((r) => ({ text: r.name, value: r.key })), onFilter: (v, g) => g.role_key === v },
          { title: t("授权范围"), dataIndex: "org_unit_name", render: (v) => v ?? t("本人所在部门和党组织") },
          ...(access.editRoles ? [{ title: t("操作"), width: 90, render: (_: unknown, g: Grant) => (
            <Popconfirm title={t("撤销 {user} 的{role}授权？", { user: g.username, role: roleName[g.role_key] ?? g.role_key })}
                        okText={t("撤销授权")} cancelText={t("取消")} okButtonProps={{ danger: true }} onConfirm={() => revoke(g)}>
              <Button type="link" size="small" danger>{t("撤销授权")}</Button>
            </Popconfirm>
          ) }] : []),
        ]} />
      </Card>
      {granting && <GrantForm roles={roles ?? []} canReadOrgs={canReadOrgs} onClose={() => setGranting(false)}
                              onSaved={() => { setGranting(false); load(); }} />}
      {editing && <RoleForm role={editing === "new" ? null : editing} perms={perms} onClose={() => setEditing(null)}
                            onSaved={() => { setEditing(null); load(); }} />}
    </Space>
  );
}

function GrantForm({ roles, canReadOrgs, onClose, onSaved }: { roles: Role[]; canReadOrgs: boolean; onClose: () => void; onSaved: () => void }) {
  const t = useT();
  const submit = useSubmit();
  const [form] = Form.useForm<{ person: number; role_key: string; org_unit_id?: number | null }>();
  const [busy, setBusy] = useState(false);
  const save = async (v: { person: number; role_key: string; org_unit_id?: number | null }) => {
    setBusy(true);
    const done = await submit(form, () => api.post<Grant>("/role-grants", {
      user_id: v.person, role_key: v.role_key, org_unit_id: v.org_unit_id ?? null,
    }), "已授权", { user_id: "person" });
    setBusy(false);
    if (done) onSaved();
  };
  return (
    <Modal open title={t("授权")} okText={t("授权")} cancelText={t("取消")} confirmLoading={busy} onCancel={onClose}
           onOk={() => form.submit()} destroyOnHidden okButtonProps={{ "data-testid": "grant-form-ok" } as never}>
      <Alert type="info" showIcon style={{ marginBottom: 12 }}
             title={t("三员分立：系统管理员、安全保密管理员、安全审计员不能由同一人担任，也不能兼有业务角色")} />
      <Form form={form} layout="vertical" onFinish={save}>
        <Form.Item name="person" label={t("人员")} rules={[{ required: true }]}>
          <PersonSelect />
        </Form.Item>
        <Form.Item name="role_key" label={t("授予角色")} rules={[{ required: true }]}>
          <Select data-testid="grant-role" options={roles.map((r) => ({ value: r.key, label: `${r.name}（${t(DATA_SCOPES[r.data_scope] ?? r.data_scope)}）` }))} />
        </Form.Item>
        <Form.Item name="org_unit_id" label={t("授权范围（组织）")} extra={t("不选：此人所在的部门和党组织")}>
          <OrgPicker source={canReadOrgs ? "scoped" : "directory"} />
        </Form.Item>
      </Form>
    </Modal>
  );
}

interface RoleValues {
  key: string;
  name: string;
  data_scope: string;
  permissions: string[];
  description?: string;
}

// Only the three administrators hold these (engine/identity/permissions.py ADMIN_ONLY).
const ADMIN_ONLY = ["account.write", "role.write", "policy.write", "config.write", "audit.read"];

function RoleForm({ role, perms, onClose, onSaved }: { role: Role | null; perms: Record<string, string>; onClose: () => void; onSaved: () => void }) {
  const t = useT();
  const submit = useSubmit();
  const [form] = Form.useForm<RoleValues>();
  const [busy, setBusy] = useState(false);
  const save = async (v: RoleValues) => {
    setBusy(true);
    const done = await submit(form, () => api.put<Role>(`/roles/${encodeURIComponent(role?.key ?? v.key.trim())}`, {
      name: v.name.trim(), data_scope: v.data_scope, permissions: v.permissions, description: v.description?.trim() ?? "",
    }), "已保存");
    setBusy(false);
    if (done) onSaved();
  };
  return (
    <Modal open width={640} title={role ? t("编辑角色 {name}", { name: role.name }) : t("新建自定义角色")} okText={t("保存")}
           cancelText={t("取消")} confirmLoading={busy} onCancel={onClose} onOk={() => form.submit()} destroyOnHidden>
      <Form form={form} layout="vertical" onFinish={save} initialValues={role ?? { data_scope: "org_and_descendants", permissions: [] }}>
        <Space wrap size={12}>
          <Form.Item name="key" label={t("角色标识")} style={{ width: 260 }} rules={[{ required: true },
            { pattern: /^[a-z][a-z0-9_]{1,63}$/, message: t("小写字母、数字和下划线，以字母开头") }]}>
            <Input disabled={!!role} autoComplete="off" />
          </Form.Item>
          <Form.Item name="name" label={t("名称")} style={{ width: 260 }} rules={[{ required: true, whitespace: true }, { max: 100 }]}>
            <Input autoComplete="off" />
          </Form.Item>
        </Space>
        <Form.Item name="data_scope" label={t("数据范围")} rules={[{ required: true }]}>
          <Select options={Object.entries(DATA_SCOPES).map(([value, label]) => ({ value, label: t(label) }))} />
        </Form.Item>
        <Form.Item name="permissions" label={t("权限")} rules={[{ required: true, type: "array", min: 1, message: t("请至少选择一项权限") }]}
                   extra={t("系统管理员、安全保密管理员、安全审计员专有的权限不能放进自定义角色")}>
          <Checkbox.Group style={{ display: "grid", gridTemplateColumns: "repeat(auto-fill, minmax(240px, 1fr))", gap: 4 }}
            options={Object.entries(perms).map(([value, label]) => ({ value, label, disabled: ADMIN_ONLY.includes(value) }))} />
        </Form.Item>
        <Form.Item name="description" label={t("描述")} rules={[{ max: 500 }]}>
          <Input.TextArea rows={2} />
        </Form.Item>
      </Form>
    </Modal>
  );
}
