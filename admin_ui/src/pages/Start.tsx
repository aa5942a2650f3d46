import { useEffect, useMemo, useRef, useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { Alert, App, Button, Card, Col, Empty, Input, Result, Row, Skeleton, Space, Typography } from "antd";
import { ApiError, api, draftKey, newKey, type ActResult, type ProcessSummary, type S } from "../api";
import { useT } from "../i18n";
import { SchemaForm } from "../components/FormView";

type Json = Record<string, unknown>;
type Version = S["VersionDetail"];
type FormDetail = S["FormDetail"];

/** The processes the user may start, grouped by category. */
export function StartCatalogue() {
  const t = useT();
  const [items, setItems] = useState<ProcessSummary[] | null>(null);
  useEffect(() => {
    api.get<ProcessSummary[]>("/process-definitions").then((p) => setItems(p.filter((x) => x.published_version)));
  }, []);
  const groups = useMemo(() => {
    const g = new Map<string, ProcessSummary[]>();
    for (const p of items ?? []) g.set(p.category || t("未分类"), [...(g.get(p.category || t("未分类")) ?? []), p]);
    return [...g.entries()];
  }, [items, t]);
  if (!items) return <Skeleton active />;
  if (!items.length) return <Empty description={t("暂无数据")} />;
  return (
    <Space orientation="vertical" style={{ width: "100%" }} size={16}>
      <Typography.Title level={4} style={{ margin: 0 }}>{t("可发起的流程")}</Typography.Title>
      {groups.map(([name, list]) => (
        <Card key={name} size="small" title={name}>
          <Row gutter={[12, 12]}>
            {list.map((p) => (
              <Col key={p.key} xs={24} sm={12} md={8}>
                <Link to={`/start/${encodeURIComponent(p.key)}`} data-testid={`start-${p.key}`}>
                  <Card hoverable size="small" title={p.name}>
                    <Typography.Paragraph type="secondary" ellipsis={{ rows: 2 }} style={{ margin: 0 }}>
                      {p.description || p.key}
                    </Typography.Paragraph>
                  </Card>
                </Link>
              </Col>
            ))}
          </Row>
        </Card>
      ))}
    </Space>
  );
}

/** The initiator's form of the newest published version; 提交 starts the instance and submits the
 * form in one request. A draft is kept on this device until the request is submitted. */
export function StartForm({ username }: { username: string }) {
  const t = useT();
  const { key = "" } = useParams();
  const nav = useNavigate();
  const { message } = App.useApp();
  const [form, setForm] = useState<FormDetail | null | undefined>(undefined);
  const [name, setName] = useState("");
  const [data, setData] = useState<Json>({});
  const [title, setTitle] = useState("");
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const ref = useRef<{ validateForm: () => boolean } | null>(null);
  const intent = useRef<string | null>(null); // the Idempotency-Key of this submission, until answered

  useEffect(() => {
    (async () => {
      try {
        const list = await api.get<ProcessSummary[]>("/process-definitions");
        const p = list.find((x) => x.key === key);
        if (!p?.published_version) throw new ApiError(404, "", `没有已发布的流程 ${key}`);
        setName(p.name);
        const v = await api.get<Version>(`/process-definitions/${encodeURIComponent(key)}/versions/${p.published_version}`);
        const node = Object.values((v.nodes ?? {}) as Record<string, Json>).find((n) => n.initiator && n.form_key);
        if (!node) return setForm(null);
        const fk = String(node.form_key);
        setForm(await api.get<FormDetail>(`/forms/${encodeURIComponent(fk)}`, { version: (v.form_refs as Json)?.[fk] as number }));
        const draft = localStorage.getItem(draftKey(username, key));
        if (draft) {
          const d = JSON.parse(draft) as { title: string; data: Json };
          setData(d.data);
          setTitle(d.title);
          message.info(t("已恢复草稿"));
        }
      } catch (e) {
        setError(e instanceof ApiError ? e : new ApiError(0, "", String(e)));
      }
    })();
  }, [key, username, message, t]);

  const submit = async () => {
    if (form && ref.current && !ref.current.validateForm()) return;
    setBusy(true);
    setError(null);
    try {
      intent.current ??= newKey();
      const r = await api.post<ActResult>("/process-instances", { key, data: form ? data : undefined, title: title.trim() || undefined },
                                          intent.current);
      intent.current = null;
      localStorage.removeItem(draftKey(username, key));
      message.success(t("操作成功"));
      nav(`/instances/${r.instance_id}`);
    } catch (e) {
      // The server answered: the next click is a new request. No answer (status 0): a retry keeps the key.
      if (e instanceof ApiError && e.status > 0) intent.current = null;
      setError(e instanceof ApiError ? e : new ApiError(0, "", t("网络错误，请稍后重试")));
    } finally {
      setBusy(false);
    }
  };
  const saveDraft = () => {
    localStorage.setItem(draftKey(username, key), JSON.stringify({ title, data }));
    message.success(t("草稿已保存在本机"));
  };

  if (error && form === undefined) return <Result status="404" title={error.detail} extra={<Link to="/start">{t("返回")}</Link>} />;
  if (form === undefined) return <Skeleton active />;
  return (
    <Card title={name}>
      {error && <Alert type="error" showIcon data-testid="start-error" style={{ marginBottom: 12 }} title={error.detail || error.title}
                       description={error.errors.map((p) => `${p.field}: ${p.message}`).join("；") || undefined} />}
      <Space orientation="vertical" style={{ width: "100%" }}>
        <Input placeholder={t("标题")} value={title} maxLength={200} onChange={(e) => setTitle(e.target.value)} data-testid="start-title" />
        {form && <SchemaForm schema={form.schema as Json} uiSchema={form.ui_schema as Json} data={data} onChange={setData} formRef={ref as never} />}
        <Space>
          <Button type="primary" loading={busy} onClick={submit} data-testid="start-submit">{t("提交")}</Button>
          <Button onClick={saveDraft} data-testid="start-draft">{t("保存草稿")}</Button>
        </Space>
      </Space>
    </Card>
  );
}
