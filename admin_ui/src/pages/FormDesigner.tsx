import { useEffect, useMemo, useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import {
  Alert, App, Button, Card, Checkbox, Col, Empty, Form, Input, InputNumber, List, Row, Select, Space, Table, Tabs, Tag, Typography,
} from "antd";
import { ArrowDownOutlined, ArrowUpOutlined, DeleteOutlined } from "@ant-design/icons";
import { ApiError, api, type S } from "../api";
import { useT } from "../i18n";
import { SchemaForm } from "../components/FormView";
import { KIND_LABELS, fromSchema, lintForm, newField, toSchema, type FieldDef, type FieldKind, type FormDef } from "../designer/schemaBuilder";
import { when } from "../format";

type Json = Record<string, unknown>;
type FormSummary = S["FormSummary"];
type FormDetail = S["FormDetail"];
const KINDS = Object.keys(KIND_LABELS) as FieldKind[];

/** Every form, newest version each, with a way to a new one. */
export function FormList() {
  const t = useT();
  const [forms, setForms] = useState<FormSummary[] | null>(null);
  useEffect(() => {
    api.get<FormSummary[]>("/forms").then(setForms).catch(() => setForms([]));
  }, []);
  return (
    <Card title={t("表单设计")} extra={<Link to="/designer/forms/new"><Button type="primary" data-testid="form-new">{t("新建表单")}</Button></Link>}>
      <Table<FormSummary> rowKey="key" loading={!forms} dataSource={forms ?? []} pagination={false} size="small"
        columns={[
          { title: t("标题"), dataIndex: "title", render: (v, r) => <Link to={`/designer/forms/${encodeURIComponent(r.key)}`}>{v || r.key}</Link> },
          { title: "key", dataIndex: "key" },
          { title: t("版本"), dataIndex: "version", width: 80 },
          { title: t("时间"), dataIndex: "created_at", width: 160, render: (v) => when(v) },
        ]} />
    </Card>
  );
}

/** Build a form visually: a palette of field kinds, the field list, the selected field's
 * properties, and a live preview drawn by the renderer the task page uses. The JSON tab edits
 * the stored schema directly; saving makes a new version when anything changed. */
export function FormDesigner() {
  const t = useT();
  const { key: routeKey = "new" } = useParams();
  const isNew = routeKey === "new";
  const nav = useNavigate();
  const { message } = App.useApp();
  const [key, setKey] = useState(isNew ? "" : routeKey);
  const [def, setDef] = useState<FormDef>({ title: "", fields: [] });
  const [selected, setSelected] = useState<number | null>(null);
  const [json, setJson] = useState("");
  const [jsonError, setJsonError] = useState("");
  const [unsupported, setUnsupported] = useState<string[]>([]);
  const [raw, setRaw] = useState<{ schema: Json; uiSchema: Json } | null>(null); // what JSON mode saves as-is
  const [versions, setVersions] = useState<FormSummary[]>([]);
  const [serverError, setServerError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const [tab, setTab] = useState("design");
  const [preview, setPreview] = useState<Json>({});

  useEffect(() => {
    if (isNew) return;
    api.get<FormDetail>(`/forms/${encodeURIComponent(routeKey)}`).then((f) => {
      const r = fromSchema(f.schema as Json, f.ui_schema as Json);
      setDef({ ...r.def, title: r.def.title || f.title });
      setUnsupported(r.unsupported);
      if (r.unsupported.length) setRaw({ schema: f.schema as Json, uiSchema: f.ui_schema as Json });
    });
    api.get<FormSummary[]>(`/forms/${encodeURIComponent(routeKey)}/versions`).then(setVersions).catch(() => setVersions([]));
  }, [routeKey, isNew]);

  const built = useMemo(() => raw ?? toSchema(def), [def, raw]);
  const problems = useMemo(() => (raw ? [] : lintForm(def)), [def, raw]);
  // A form with parts the designer cannot show is edited as JSON only: the designer's model
  // would drop those parts on saving.
  const locked = raw !== null;
  const update = (next: FormDef) => {
    if (!locked) setDef(next);
  };
  const setTitle = (title: string) => {
    setDef({ ...def, title });
    if (raw) setRaw({ ...raw, schema: { ...raw.schema, title } });
  };
  const setField = (i: number, f: FieldDef) => update({ ...def, fields: def.fields.map((x, j) => (j === i ? f : x)) });

  const save = async () => {
    setServerError(null);
    if (!/^[a-z][a-z0-9_]{1,63}$/.test(key)) return message.error(t("表单标识只能用小写字母、数字和下划线，以字母开头"));
    if (problems.length) return message.error(problems[0].message);
    setBusy(true);
    try {
      const saved = await call(key, def.title || undefined, built.schema, built.uiSchema);
      message.success(`${t("已保存")}：${t("版本")} ${saved.version}`);
      api.get<FormSummary[]>(`/forms/${encodeURIComponent(key)}/versions`).then(setVersions);
      if (isNew) nav(`/designer/forms/${encodeURIComponent(key)}`, { replace: true });
    } catch (e) {
      setServerError(e instanceof ApiError ? e : new ApiError(0, "", t("网络错误，请稍后重试")));
    } finally {
      setBusy(false);
    }
  };

  const applyJson = () => {
    try {
      const parsed = JSON.parse(json) as { schema: Json; uiSchema?: Json };
      if (typeof parsed.schema !== "object" || parsed.schema?.type !== "object") throw new Error(t("schema 须为 type 为 object 的对象"));
      const r = fromSchema(parsed.schema, parsed.uiSchema ?? {});
      setDef({ ...r.def, title: String(parsed.schema.title ?? def.title) });
      setUnsupported(r.unsupported);
      setRaw(r.unsupported.length ? { schema: parsed.schema, uiSchema: parsed.uiSchema ?? {} } : null);
      setJsonError("");
      setTab("design");
    } catch (e) {
      setJsonError(String((e as Error).message));
    }
  };

  const field = selected !== null ? def.fields[selected] : undefined;
  return (
    <Space orientation="vertical" style={{ width: "100%" }} size={12}>
      <Card size="small">
        <Space wrap>
          <Input data-testid="form-key" addonBefore={t("表单标识")} value={key} disabled={!isNew} onChange={(e) => setKey(e.target.value.trim())}
                 placeholder="trip_request" style={{ width: 260 }} />
          <Input data-testid="form-title" addonBefore={t("标题")} value={def.title} onChange={(e) => setTitle(e.target.value)}
                 style={{ width: 300 }} />
          <Button type="primary" loading={busy} onClick={save} data-testid="form-save">{t("保存")}</Button>
          {versions[0] && <Tag data-testid="form-version">{t("版本")} {versions[0].version}</Tag>}
        </Space>
        {unsupported.length > 0 && (
          <Alert data-testid="form-locked" style={{ marginTop: 8 }} type="warning" showIcon
                 title={t("以下内容设计器无法显示，表单按 JSON 原样保存，请在“JSON（高级）”中编辑")}
                 description={unsupported.join("、")} />
        )}
        {problems.length > 0 && (
          <Alert data-testid="form-problems" style={{ marginTop: 8 }} type="warning" showIcon
                 title={problems.map((p) => `${p.path}：${p.message}`).join("；")} />
        )}
        {serverError && (
          <Alert style={{ marginTop: 8 }} type="error" showIcon title={serverError.detail || serverError.title}
                 description={serverError.errors.map((p) => `${p.field}: ${p.message}`).join("；") || undefined} />
        )}
      </Card>
      <Tabs activeKey={tab} onChange={(k) => { setTab(k); if (k === "json") setJson(JSON.stringify(built, null, 2)); }}
        items={[
          {
            key: "design", label: t("设计"),
            children: (
              <Row gutter={12}>
                <Col xs={24} md={4}>
                  <Card size="small" title={t("控件")}>
                    <Space orientation="vertical" style={{ width: "100%" }}>
                      {KINDS.map((k) => (
                        <Button key={k} block size="small" data-testid={`palette-${k}`} disabled={locked}
                                onClick={() => { const f = newField(k, def.fields.map((x) => x.name)); update({ ...def, fields: [...def.fields, f] }); setSelected(def.fields.length); }}>
                          {t(KIND_LABELS[k])}
                        </Button>
                      ))}
                    </Space>
                  </Card>
                </Col>
                <Col xs={24} md={10}>
                  <FieldList fields={def.fields} selected={selected} onSelect={setSelected}
                             onChange={(fields) => update({ ...def, fields })} />
                  {field && selected !== null && !locked && (
                    <Card size="small" title={`${t("字段属性")}：${field.title}`} style={{ marginTop: 12 }}>
                      <FieldEditor field={field} onChange={(f) => setField(selected, f)} />
                    </Card>
                  )}
                </Col>
                <Col xs={24} md={10}>
                  <Card size="small" title={t("预览")} data-testid="form-preview">
                    {def.fields.length ? <SchemaForm schema={built.schema} uiSchema={built.uiSchema} data={preview} onChange={setPreview} files={{ preview: true }} />
                      : <Empty description={t("从左侧添加控件")} />}
                  </Card>
                </Col>
              </Row>
            ),
          },
          {
            key: "json", label: t("JSON（高级）"),
            children: (
              <Card size="small">
                <Input.TextArea data-testid="form-json" value={json} onChange={(e) => setJson(e.target.value)} rows={24}
                                style={{ fontFamily: "monospace" }} />
                {jsonError && <Alert type="error" title={jsonError} style={{ marginTop: 8 }} />}
                <Button style={{ marginTop: 8 }} onClick={applyJson} data-testid="form-json-apply">{t("应用")}</Button>
              </Card>
            ),
          },
          {
            key: "versions", label: t("版本"),
            children: (
              <Table<FormSummary> size="small" rowKey="version" dataSource={versions} pagination={false}
                columns={[{ title: t("版本"), dataIndex: "version" }, { title: "hash", dataIndex: "hash", render: (v: string) => v.slice(0, 12) },
                          { title: t("时间"), dataIndex: "created_at", render: (v) => when(v) }]} />
            ),
          },
        ]} />
    </Space>
  );
}

function call(key: string, title: string | undefined, schema: Json, uiSchema: Json): Promise<FormDetail> {
  return api.put<FormDetail>(`/forms/${encodeURIComponent(key)}`, { title, schema, ui_schema: uiSchema });
}

function FieldList({ fields, selected, onSelect, onChange }: {
  fields: FieldDef[];
  selected: number | null;
  onSelect: (i: number | null) => void;
  onChange: (fields: FieldDef[]) => void;
}) {
  const t = useT();
  const move = (i: number, d: number) => {
    const next = [...fields];
    [next[i], next[i + d]] = [next[i + d], next[i]];
    onChange(next);
    onSelect(i + d);
  };
  return (
    <List size="small" bordered dataSource={fields} locale={{ emptyText: t("从左侧添加控件") }}
      renderItem={(f, i) => (
        <List.Item data-testid="designer-field" onClick={() => onSelect(i)}
                   style={{ cursor: "pointer", background: i === selected ? "#fff1f0" : undefined }}
                   actions={[
                     <Button key="up" size="small" type="text" icon={<ArrowUpOutlined />} disabled={i === 0} onClick={(e) => { e.stopPropagation(); move(i, -1); }} />,
                     <Button key="down" size="small" type="text" icon={<ArrowDownOutlined />} disabled={i === fields.length - 1} onClick={(e) => { e.stopPropagation(); move(i, 1); }} />,
                     <Button key="del" size="small" type="text" danger icon={<DeleteOutlined />} onClick={(e) => { e.stopPropagation(); onChange(fields.filter((_, j) => j !== i)); onSelect(null); }} />,
                   ]}>
          <Space>
            {f.required && <Typography.Text type="danger">*</Typography.Text>}
            <span>{f.title}</span>
            <Tag>{t(KIND_LABELS[f.kind])}</Tag>
            <Typography.Text type="secondary" code>{f.name}</Typography.Text>
          </Space>
        </List.Item>
      )} />
  );
}

function FieldEditor({ field, onChange }: { field: FieldDef; onChange: (f: FieldDef) => void }) {
  const t = useT();
  const [sub, setSub] = useState<number | null>(null);
  const set = (patch: Partial<FieldDef>) => {
    const next = { ...field, ...patch };
    for (const k of Object.keys(patch) as (keyof FieldDef)[]) if (patch[k] === null || patch[k] === "") delete next[k];
    onChange(next);
  };
  const text = field.kind === "text" || field.kind === "textarea";
  const num = field.kind === "number" || field.kind === "money";
  const nested = field.kind === "table" || field.kind === "section";
  return (
    <Form layout="vertical" size="small">
      <Row gutter={8}>
        <Col span={12}><Form.Item label={t("字段名")}><Input data-testid="field-name" value={field.name} onChange={(e) => set({ name: e.target.value.trim() })} /></Form.Item></Col>
        <Col span={12}><Form.Item label={t("标题")}><Input data-testid="field-title" value={field.title} onChange={(e) => set({ title: e.target.value })} /></Form.Item></Col>
      </Row>
      {field.kind !== "section" && (
        <Form.Item><Checkbox data-testid="field-required" checked={!!field.required} onChange={(e) => set({ required: e.target.checked || undefined })}>{t("必填")}</Checkbox></Form.Item>
      )}
      <Form.Item label={t("说明")}><Input value={field.help ?? ""} onChange={(e) => set({ help: e.target.value })} /></Form.Item>
      {(text || num) && <Form.Item label={t("占位提示")}><Input value={field.placeholder ?? ""} onChange={(e) => set({ placeholder: e.target.value })} /></Form.Item>}
      {text && (
        <Row gutter={8}>
          <Col span={8}><Form.Item label={t("最少字数")}><InputNumber min={0} value={field.minLength} onChange={(v) => set({ minLength: v ?? undefined })} /></Form.Item></Col>
          <Col span={8}><Form.Item label={t("最多字数")}><InputNumber min={1} value={field.maxLength} onChange={(v) => set({ maxLength: v ?? undefined })} /></Form.Item></Col>
          <Col span={8}><Form.Item label={t("格式（正则）")}><Input value={field.pattern ?? ""} onChange={(e) => set({ pattern: e.target.value })} /></Form.Item></Col>
        </Row>
      )}
      {(num || field.kind === "table") && (
        <Row gutter={8}>
          {num && <Col span={8}><Form.Item label={t("最小值")}><InputNumber value={field.min} onChange={(v) => set({ min: v ?? undefined })} /></Form.Item></Col>}
          <Col span={8}><Form.Item label={field.kind === "table" ? t("最多行数") : t("最大值")}><InputNumber data-testid="field-max" value={field.max} onChange={(v) => set({ max: v ?? undefined })} /></Form.Item></Col>
          {field.kind === "money" && <Col span={8}><Form.Item label={t("单位")}><Input value={field.unit ?? "元"} onChange={(e) => set({ unit: e.target.value })} /></Form.Item></Col>}
        </Row>
      )}
      {field.kind === "file" && (
        <Row gutter={8}>
          <Col span={8}><Form.Item label={t("最多文件数")}><InputNumber data-testid="field-max" min={1} precision={0} value={field.max} onChange={(v) => set({ max: v ?? undefined })} /></Form.Item></Col>
          <Col span={16}><Form.Item label={t("允许的类型")} extra={t("如 .pdf,.docx,image/*；留空则为系统允许的全部类型")}>
            <Input data-testid="field-accept" value={field.accept ?? ""} placeholder=".pdf,.docx,image/*" onChange={(e) => set({ accept: e.target.value.trim() })} />
          </Form.Item></Col>
        </Row>
      )}
      {field.options !== undefined && (
        <Form.Item label={t("选项")}>
          <Select data-testid="field-options" mode="tags" value={field.options} onChange={(v) => set({ options: v })} open={false} />
        </Form.Item>
      )}
      {nested && (
        <Form.Item label={field.kind === "table" ? t("表格列") : t("分组内的字段")}>
          <Space wrap style={{ marginBottom: 8 }}>
            {KINDS.filter((k) => k !== "file" && (field.kind === "section" || (k !== "table" && k !== "section"))).map((k) => (
              <Button key={k} size="small" onClick={() => set({ fields: [...(field.fields ?? []), newField(k, (field.fields ?? []).map((x) => x.name))] })}>
                + {t(KIND_LABELS[k])}
              </Button>
            ))}
          </Space>
          <FieldList fields={field.fields ?? []} selected={sub} onSelect={setSub} onChange={(fields) => set({ fields })} />
          {sub !== null && field.fields?.[sub] && (
            <Card size="small" style={{ marginTop: 8 }}>
              <FieldEditor field={field.fields[sub]} onChange={(f) => set({ fields: field.fields!.map((x, j) => (j === sub ? f : x)) })} />
            </Card>
          )}
        </Form.Item>
      )}
    </Form>
  );
}
