import { useCallback, useEffect, useRef, useState } from "react";
import { useNavigate, useParams } from "react-router-dom";
import { Alert, App, Button, Card, Descriptions, Form, Input, Modal, Radio, Result, Select, Skeleton, Space, Tag } from "antd";
import { ApiError, api, newKey, type ActResult, type TaskDetail } from "../api";
import { ACTIONS, STATUS, useT } from "../i18n";
import { SchemaForm } from "../components/FormView";
import { Trail, useTrail } from "../components/Trail";
import { SignaturePad } from "../components/SignaturePad";
import { PersonPicker } from "../components/PersonPicker";
import { Attachments, useAttachments } from "../components/Attachments";

type Json = Record<string, unknown>;
// The order buttons appear in; the server decides which are allowed.
const ORDER = ["submit", "approve", "reject", "return", "resolve", "transfer", "delegate", "add_sign", "cc", "urge", "claim", "withdraw"];
// Actions that ask for more than a click.
const DIALOG = new Set(["return", "transfer", "delegate", "add_sign", "cc", "reject"]);
// Why this task is here, when it is not the node's own rule.
const NOTE: Record<string, string> = { returned: "退回", transferred: "转办", delegated: "委派", add_before: "加签",
                                       add_after: "加签", cc: "抄送", withdrawn: "撤回" };
const METHOD: Record<string, string> = { single: "单人审批", any: "或签", all: "会签", sequential: "依次审批" };

/** The node form's fields, and its own "opinion" field if it has one: the opinion box stands in
 * for that field (it is hidden in the form and the box writes it), so it is not asked twice. */
function formFields(detail: TaskDetail | null): { props: Record<string, Json>; opinion: Json | null } {
  const props = (((detail?.form?.schema as Json | undefined)?.properties ?? {}) as Record<string, Json>);
  return { props, opinion: props.opinion ?? null };
}

export function methodLabel(m: string): string {
  return METHOD[m] ?? (m.startsWith("ratio") ? "比例会签" : m);
}

/** One task: the application, the node's form (field permissions applied by the server), the
 * allowed actions, the opinion (and signature) where the node asks for them, history and diagram. */
export function TaskPage() {
  const t = useT();
  const { id } = useParams();
  const nav = useNavigate();
  const { message } = App.useApp();
  const [detail, setDetail] = useState<TaskDetail | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [data, setData] = useState<Json>({});
  const [opinion, setOpinion] = useState("");
  const [signature, setSignature] = useState("");
  const [dialog, setDialog] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [fieldErrors, setFieldErrors] = useState<string[]>([]);
  // The box writes the form's own opinion field as it is typed, so validation sees it.
  const changeOpinion = (text: string) => {
    setOpinion(text);
    if (formFields(detail).opinion) setData((d) => ({ ...d, opinion: text.trim() || undefined }));
  };
  const formRef = useRef<{ validateForm: () => boolean } | null>(null);
  // The Idempotency-Key of the action being sent, kept until the server answers: a click again
  // after a lost answer repeats the same request, which the server runs once.
  const intent = useRef<{ action: string; key: string } | null>(null);

  const load = useCallback(() => {
    setError(null);
    api
      .get<TaskDetail>(`/tasks/${id}`)
      .then((d) => {
        setDetail(d);
        setData((d.data as Json) ?? {});
      })
      .catch((e) => setError(e instanceof ApiError ? e : new ApiError(0, "", "")));
  }, [id]);
  useEffect(load, [load]);
  const trail = useTrail(detail?.task.instance_id);
  const attachments = useAttachments(detail?.task.instance_id);

  if (error) return <Result status={error.status === 404 ? "404" : "error"} title={error.detail || error.title}
                            extra={<Button onClick={() => nav("/inbox")}>{t("返回")}</Button>} />;
  if (!detail) return <Skeleton active />;

  const task = detail.task;
  const open = task.status === "open";
  const actions = ORDER.filter((a) => detail.allowed_actions.includes(a));
  const needsOpinion = (a: string) => a === "reject" || a === "return" || (a === "approve" && detail.opinion_required);

  const act = async (action: string, extra: Json = {}) => {
    setFieldErrors([]);
    if ((action === "approve" || action === "submit") && detail.form && formRef.current && !formRef.current.validateForm()) return;
    if (needsOpinion(action) && !opinion.trim() && !extra.comment) {
      message.error(t("请填写审批意见"));
      return;
    }
    if (action === "approve" && detail.signature_required && !signature) {
      message.error(t("请签名"));
      return;
    }
    setBusy(action);
    try {
      const body: Json = { comment: opinion.trim() || undefined, ...extra };
      if ((action === "approve" || action === "submit") && detail.form) body.data = data;
      if (action === "approve" && signature) body.signature = signature;
      if (intent.current?.action !== action) intent.current = { action, key: newKey() };
      const r = await api.post<ActResult>(`/tasks/${task.id}/actions/${action}`, body, intent.current.key);
      intent.current = null;
      message.success(`${t(ACTIONS[action] ?? action)}：${t("操作成功")}`);
      setDialog(null);
      const next = r.new_tasks.find((n) => n.assignee === task.assignee && n.status === "open" && n.id !== task.id);
      if (next) nav(`/tasks/${next.id}`, { replace: true });
      else if (["urge", "cc", "add_sign", "claim"].includes(action)) {
        load();
        trail.reload();
      }
      else nav(`/instances/${task.instance_id}`, { replace: true });
    } catch (e) {
      if (!(e instanceof ApiError) || e.status > 0) intent.current = null;
      if (e instanceof ApiError && e.status > 0) {
        setFieldErrors(e.errors.map((p) => `${p.field}: ${p.message}`));
        message.error(e.detail || e.title);
        if (e.status === 409) load();
      } else message.error(t("网络错误，请稍后重试"));
    } finally {
      setBusy(null);
    }
  };

  const app = detail.application;
  const fields = formFields(detail);
  const formUi = fields.opinion ? { ...(detail.form!.ui_schema as Json), opinion: { "ui:widget": "hidden" } } : (detail.form?.ui_schema as Json);
  const opinionMax = Number(fields.opinion?.maxLength ?? 2000);
  const formShown = Object.keys(fields.props).some((k) => k !== "opinion" || !fields.opinion);
  // who may add files: whoever holds this open task of a running instance (the server checks again)
  const canUpload = open && task.kind !== "cc" && actions.length > 0 && detail.instance.status === "running";
  const files = { instanceId: task.instance_id, taskId: task.id, files: attachments.files, onUploaded: attachments.reload };
  return (
    <Space orientation="vertical" size={12} style={{ width: "100%" }}>
      <Card
        title={<span data-testid="task-title">{detail.instance.title}</span>}
        extra={<Tag color={open ? "gold" : "default"}>{open ? task.node_name : t(STATUS[detail.instance.status] ?? detail.instance.status)}</Tag>}
      >
        <Descriptions size="small" column={{ xs: 1, sm: 2, md: 3 }}>
          <Descriptions.Item label={t("节点")}>{task.node_name}</Descriptions.Item>
          <Descriptions.Item label={t("发起人")}>{detail.instance.initiator_name}</Descriptions.Item>
          <Descriptions.Item label={t("审批进度")}>
            {t(methodLabel(detail.approve_method))} · {detail.slots.filter((s) => s.status === "completed").length}/{detail.slots.length}
          </Descriptions.Item>
        </Descriptions>
        {task.note && NOTE[String((task.note as Json).kind)] && (
          <Alert type="warning" showIcon data-testid="task-note" style={{ marginTop: 8 }}
                 title={`${t(NOTE[String((task.note as Json).kind)])}：${String((task.note as Json).by ?? "")}` +
                        ((task.note as Json).from_node_name ? `（${String((task.note as Json).from_node_name)}）` : "")}
                 description={(task.note as Json).reason ? String((task.note as Json).reason) : undefined} />
        )}
      </Card>
      {app && (
        <Card title={t("申请内容")} size="small">
          <SchemaForm schema={app.schema as Json} uiSchema={app.ui_schema as Json} data={detail.application_data as Json} readonly files={files} />
        </Card>
      )}
      {detail.form && (
        <Card title={detail.form.title || t("办理表单")} size="small" style={formShown ? undefined : { display: "none" }}>
          <SchemaForm schema={detail.form.schema as Json} uiSchema={formUi} data={data}
                      onChange={setData} readonly={!open} formRef={formRef as never} files={files} />
        </Card>
      )}
      {open && actions.length > 0 && (
        <Card size="small" title={t("审批意见")}>
          <Input.TextArea data-testid="opinion" rows={3} maxLength={opinionMax} showCount value={opinion}
                          onChange={(e) => changeOpinion(e.target.value)}
                          placeholder={detail.opinion_required ? t("请填写审批意见") : undefined} />
          {detail.signature_required && (
            <div style={{ marginTop: 12 }}>
              <div style={{ marginBottom: 4 }}>{t("手写签名")}</div>
              <SignaturePad onChange={setSignature} />
            </div>
          )}
          {fieldErrors.length > 0 && <Alert type="error" style={{ marginTop: 8 }} title={fieldErrors.join("；")} />}
        </Card>
      )}
      <Attachments instanceId={task.instance_id} taskId={task.id} files={attachments.files} canUpload={canUpload}
                   onChange={() => { attachments.reload(); trail.reload(); }} />
      <Trail history={trail.history} diagram={trail.diagram} />
      {open && actions.length > 0 && (
        <div className="dj-actions" data-testid="actions">
          {actions.map((a) => (
            <Button key={a} data-testid={`action-${a}`} loading={busy === a} danger={a === "reject"}
                    type={a === "approve" || a === "submit" ? "primary" : "default"}
                    onClick={() => (DIALOG.has(a) ? setDialog(a) : act(a))}>
              {t(ACTIONS[a] ?? a)}
            </Button>
          ))}
        </div>
      )}
      {dialog && (
        <ActionDialog action={dialog} detail={detail} opinion={opinion} setOpinion={changeOpinion} busy={busy === dialog}
                      onCancel={() => setDialog(null)} onOk={(extra) => act(dialog, extra)} />
      )}
    </Space>
  );
}

function ActionDialog({ action, detail, opinion, setOpinion, busy, onCancel, onOk }: {
  action: string;
  detail: TaskDetail;
  opinion: string;
  setOpinion: (s: string) => void;
  busy: boolean;
  onCancel: () => void;
  onOk: (extra: Json) => void;
}) {
  const t = useT();
  const [form] = Form.useForm();
  const submit = async () => {
    const v = await form.validateFields();
    const extra: Json = { comment: v.comment?.trim() || undefined };
    if (v.comment !== undefined) setOpinion(v.comment);
    if (action === "return") extra.target = v.target;
    if (action === "transfer" || action === "delegate") extra.to = v.to;
    if (action === "add_sign" || action === "cc") extra.users = v.users;
    if (action === "add_sign") extra.position = v.position;
    onOk(extra);
  };
  const commentRequired = action === "reject" || action === "return";
  return (
    <Modal open title={t(ACTIONS[action] ?? action)} onCancel={onCancel} onOk={submit} confirmLoading={busy}
           okText={t("确定")} cancelText={t("取消")} okButtonProps={{ "data-testid": "dialog-ok" } as never} destroyOnHidden>
      <Form form={form} layout="vertical" initialValues={{ comment: opinion, position: "before",
            target: detail.return_targets[detail.return_targets.length - 1]?.node_id }}>
        {action === "return" && (
          <Form.Item name="target" label={t("退回到")} rules={[{ required: true, message: t("请选择退回节点") }]}>
            <Radio.Group data-testid="return-targets">
              <Space orientation="vertical">
                {detail.return_targets.map((n) => <Radio key={n.node_id} value={n.node_id}>{n.name}</Radio>)}
              </Space>
            </Radio.Group>
          </Form.Item>
        )}
        {(action === "transfer" || action === "delegate") && (
          <Form.Item name="to" label={t("选择人员")} rules={[{ required: true }]}>
            <PersonPicker />
          </Form.Item>
        )}
        {(action === "add_sign" || action === "cc") && (
          <Form.Item name="users" label={t("选择人员")} rules={[{ required: true }]}>
            <PersonPicker multiple />
          </Form.Item>
        )}
        {action === "add_sign" && (
          <Form.Item name="position" label={t("加签位置")}>
            <Select options={[{ value: "before", label: t("之前（先于我审批）") }, { value: "after", label: t("之后（在我之后审批）") }]} />
          </Form.Item>
        )}
        <Form.Item name="comment" label={t("审批意见")}
                   rules={commentRequired ? [{ required: true, whitespace: true, message: t("请填写审批意见") }] : []}>
          <Input.TextArea rows={3} maxLength={2000} data-testid="dialog-comment" />
        </Form.Item>
      </Form>
    </Modal>
  );
}
