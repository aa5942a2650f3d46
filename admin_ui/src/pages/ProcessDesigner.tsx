import { useCallback, useContext, useEffect, useMemo, useRef, useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import {
  Alert, App, Button, Card, Checkbox, Col, Form, Input, InputNumber, List, Modal, Radio, Row, Select, Space, Switch, Table, Tag, Typography,
} from "antd";
import Modeler from "bpmn-js/lib/Modeler";
import "bpmn-js/dist/assets/diagram-js.css";
import "bpmn-js/dist/assets/bpmn-js.css";
import "bpmn-js/dist/assets/bpmn-font/css/bpmn-embedded.css";
import { ApiError, api, errorText, call, type ProcessSummary, type S } from "../api";
import { LangContext, useT } from "../i18n";
import {
  NEW_DIAGRAM, SPIFF_MODDLE, elementForProblem, importNote, importReport, translateModule, type ImportItem,
} from "../designer/bpmnSupport";
import { describeChange, diffBpmn, type BpmnDiff } from "../designer/bpmnDiff";
import { BpmnViewer, Swatch, type Focus, type Marks } from "../components/Diagram";
import {
  INITIATOR_ORGS, ORG_LABELS, RULE_LABELS, RuleError, describeRule, formatRule, parseRule, type Rule, type RuleKind,
} from "../designer/ruleBuilder";
import { when } from "../format";
import { SettingsDrawer } from "./ProcessSettings";

type Json = Record<string, unknown>;
type Version = S["VersionView"];
type VersionDetail = S["VersionDetail"];
type Problem = S["ProblemView"];
type FormSummary = S["FormSummary"];
type FormDetail = S["FormDetail"];

interface Moddle {
  $type: string;
  id?: string;
  name?: string;
  extensionElements?: { values: Moddle[] };
  properties?: Moddle[];
  value?: string;
}
interface Shape {
  id: string;
  type: string;
  businessObject: Moddle;
}
interface Services {
  modeling: { updateProperties: (el: Shape, props: Json) => void };
  moddle: { create: (type: string, attrs?: Json) => Moddle };
  canvas: { zoom: (z: string) => void; getRootElement: () => Shape; addMarker: (id: string, c: string) => void; removeMarker: (id: string, c: string) => void };
  elementRegistry: { getAll: () => Shape[]; get: (id: string) => Shape | undefined };
  overlays: { add: (id: string, type: string, o: Json) => void; remove: (q: Json) => void };
  selection: { select: (el: Shape) => void };
}

const BUTTONS = ["approve", "reject", "return", "transfer", "delegate", "add_sign", "cc", "withdraw"];
const BUTTON_LABELS: Record<string, string> = { approve: "同意", reject: "驳回", return: "退回", transfer: "转办", delegate: "委派",
                                                add_sign: "加签", cc: "抄送", withdraw: "撤回" };
const POSITIONS: Record<string, string> = { head: "负责人", deputy_head: "副职", secretary: "书记", deputy_secretary: "副书记" };

export function readProps(bo: Moddle): Record<string, string> {
  const holder = bo.extensionElements?.values?.find((v) => v.$type === "spiffworkflow:Properties");
  return Object.fromEntries((holder?.properties ?? []).map((p) => [p.name ?? "", p.value ?? ""]));
}

/** Published and draft processes, for designers. */
export function ProcessList() {
  const t = useT();
  const [items, setItems] = useState<ProcessSummary[] | null>(null);
  useEffect(() => {
    api.get<ProcessSummary[]>("/process-definitions").then(setItems).catch(() => setItems([]));
  }, []);
  return (
    <Card title={t("流程设计")} extra={<Link to="/designer/processes/new"><Button type="primary" data-testid="process-new">{t("新建流程")}</Button></Link>}>
      <Table<ProcessSummary> rowKey="key" size="small" loading={!items} dataSource={items ?? []} pagination={false}
        columns={[
          { title: t("名称"), dataIndex: "name", render: (v, r) => <Link to={`/designer/processes/${encodeURIComponent(r.key)}`}>{v}</Link> },
          { title: "key", dataIndex: "key" },
          { title: t("已发布版本"), dataIndex: "published_version", width: 110 },
          { title: t("草稿"), dataIndex: "draft_version", width: 80 },
        ]} />
    </Card>
  );
}

/** The bpmn-js modeler with djflow's properties panel: draw, set each approval node's rule, form
 * and behaviour, validate against the server's lint (problems pinned to their elements), save a
 * draft, publish, open an earlier version, import and export .bpmn files. */
export function ProcessDesigner() {
  const t = useT();
  const { lang } = useContext(LangContext);
  const langAtStart = useRef(lang);
  const { key: routeKey = "new" } = useParams();
  const nav = useNavigate();
  const { message } = App.useApp();
  const box = useRef<HTMLDivElement>(null);
  const modeler = useRef<Modeler | null>(null);
  const [key, setKey] = useState(routeKey === "new" ? "" : routeKey);
  const [selected, setSelected] = useState<Shape | null>(null);
  const [, setTick] = useState(0);
  const [problems, setProblems] = useState<(Problem & { element: string | null })[] | null>(null);
  const [versions, setVersions] = useState<Version[]>([]);
  const [forms, setForms] = useState<FormSummary[]>([]);
  const [busy, setBusy] = useState<string | null>(null);
  const [askNew, setAskNew] = useState(routeKey === "new");
  const [error, setError] = useState("");
  const [loaded, setLoaded] = useState(false);
  const [showSettings, setShowSettings] = useState(false);
  const [report, setReport] = useState<ImportItem[]>([]);
  const [comparing, setComparing] = useState(false);

  const svc = useCallback(<K extends keyof Services>(name: K): Services[K] => modeler.current!.get(name) as Services[K], []);

  const loadVersions = useCallback((k: string) => {
    api.get<Version[]>(`/process-definitions/${encodeURIComponent(k)}/versions`).then(setVersions).catch(() => setVersions([]));
  }, []);

  const tRef = useRef(t);
  tRef.current = t;
  const open = useCallback(async (xml: string) => {
    try {
      const { warnings } = await modeler.current!.importXML(xml);
      // What djflow keeps, converts and ignores of the file (another tool's extensions; what the
      // modeler could not read at all is left out of what is saved): said, not lost quietly.
      const defs = (modeler.current as unknown as { getDefinitions: () => unknown }).getDefinitions();
      const moddle = svc("moddle");
      setReport(importReport(defs as never, (warnings ?? []) as never, xml, (type, attrs) => moddle.create(type, attrs) as never));
      svc("canvas").zoom("fit-viewport");
      setLoaded(true);
      setSelected(null);
      setProblems(null);
      setError("");
    } catch (e) {
      setError(`${tRef.current("无法打开此 BPMN 文件")}：${(e as Error).message}`);
    }
  }, [svc]);

  useEffect(() => {
    // The palette's language is the one at start: switching language must not rebuild the modeler
    // (and lose unsaved work); the new language shows on the next visit.
    const m = new Modeler({ container: box.current!, moddleExtensions: { spiffworkflow: SPIFF_MODDLE },
                            additionalModules: [translateModule(langAtStart.current)] });
    modeler.current = m;
    m.on("selection.changed", (e: { newSelection: Shape[] }) => setSelected(e.newSelection.length === 1 ? e.newSelection[0] : null));
    m.on("elements.changed", () => setTick((n) => n + 1));
    api.get<FormSummary[]>("/forms").then(setForms).catch(() => setForms([]));
    if (routeKey !== "new") {
      (async () => {
        const list = await api.get<Version[]>(`/process-definitions/${encodeURIComponent(routeKey)}/versions`);
        setVersions(list);
        const newest = list.reduce((a, b) => (a && a.version > b.version ? a : b), list[0]);
        if (newest) {
          const d = await api.get<VersionDetail>(`/process-definitions/${encodeURIComponent(routeKey)}/versions/${newest.version}`);
          await open(d.bpmn_xml);
        }
      })().catch((e) => setError(errorText(e, t)));
    }
    return () => m.destroy();
  }, [routeKey, open]);

  const xml = async () => (await modeler.current!.saveXML({ format: true })).xml ?? "";
  const processKey = () => processOf(svc("canvas").getRootElement().businessObject).id ?? key;

  const upload = async (path: string) => {
    const form = new FormData();
    const text = await xml();
    form.append("file", new Blob([text], { type: "application/xml" }), `${processKey()}.bpmn`);
    return { text, result: call<Problem[] | Version>("POST", path, { body: form }) };
  };

  const pin = (text: string, list: Problem[]) => {
    const ids = svc("elementRegistry").getAll().map((e) => e.id);
    svc("overlays").remove({ type: "dj-problem" });
    for (const id of ids) svc("canvas").removeMarker(id, "dj-invalid");
    const pinned = list.map((p) => ({ ...p, element: elementForProblem(text, p.line, p.message, ids) }));
    for (const p of pinned) {
      if (!p.element) continue;
      svc("canvas").addMarker(p.element, "dj-invalid");
      const badge = document.createElement("div");
      badge.className = "dj-problem-badge";
      badge.title = p.message;
      badge.textContent = "!";
      svc("overlays").add(p.element, "dj-problem", { position: { top: -10, right: 10 }, html: badge });
    }
    setProblems(pinned);
    return pinned;
  };

  const validate = async () => {
    setBusy("validate");
    try {
      const { text, result } = await upload("/process-definitions/validate");
      const list = (await result) as Problem[];
      pin(text, list);
      if (!list.length) message.success(t("校验通过"));
      return list.length === 0;
    } catch (e) {
      message.error(errorText(e, t));
      return false;
    } finally {
      setBusy(null);
    }
  };

  const save = async (publish: boolean) => {
    setBusy(publish ? "publish" : "save");
    try {
      const { text, result } = await upload("/process-definitions");
      let v: Version;
      try {
        v = (await result) as Version;
      } catch (e) {
        if (e instanceof ApiError && e.errors.length) {
          pin(text, e.errors.map((p) => ({ field: "bpmn", file: "", line: Number((p as unknown as Json).line ?? 0), code: "", message: p.message })));
        }
        throw e;
      }
      pin(text, []);
      if (publish) v = await api.post<Version>(`/process-definitions/${encodeURIComponent(v.key)}/publish`, { version: v.version });
      message.success(publish ? `${t("已发布")}：${t("版本")} ${v.version}` : `${t("草稿已保存")}：${t("版本")} ${v.version}`);
      setKey(v.key);
      loadVersions(v.key);
      if (routeKey !== v.key) nav(`/designer/processes/${encodeURIComponent(v.key)}`, { replace: true });
    } catch (e) {
      message.error(errorText(e, t));
    } finally {
      setBusy(null);
    }
  };

  const exportFile = async () => {
    const url = URL.createObjectURL(new Blob([await xml()], { type: "application/xml" }));
    const a = document.createElement("a");
    a.href = url;
    a.download = `${processKey()}.bpmn`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 1000); // revoking at once can abort the download
  };

  const importFile = async (file: File) => open(await file.text());

  return (
    <Space orientation="vertical" style={{ width: "100%" }} size={12}>
      <Card size="small">
        <Space wrap>
          <Typography.Text strong data-testid="process-key">{key || t("新流程")}</Typography.Text>
          <Button onClick={() => setAskNew(true)}>{t("新建流程")}</Button>
          <Button onClick={() => document.getElementById("dj-import")?.click()}>{t("导入 .bpmn")}</Button>
          <input id="dj-import" data-testid="process-import" type="file" accept=".bpmn,.xml" style={{ display: "none" }}
                 onChange={(e) => e.target.files?.[0] && importFile(e.target.files[0])} />
          <Button onClick={exportFile}>{t("导出 .bpmn")}</Button>
          <Button onClick={validate} loading={busy === "validate"} data-testid="process-validate">{t("校验")}</Button>
          <Button onClick={() => save(false)} loading={busy === "save"} data-testid="process-save">{t("保存草稿")}</Button>
          <Button type="primary" onClick={() => save(true)} loading={busy === "publish"} data-testid="process-publish">{t("发布")}</Button>
          {versions.some((v) => v.status === "published") && (
            <Button onClick={() => setShowSettings(true)} data-testid="process-settings">{t("本单位参数")}</Button>
          )}
          {versions.length > 1 && (
            <Button onClick={() => setComparing(true)} data-testid="process-compare">{t("版本对比")}</Button>
          )}
          {versions.length > 0 && (
            <Select style={{ width: 220 }} placeholder={t("打开版本")} data-testid="process-versions"
              options={[...versions].sort((a, b) => b.version - a.version).map((v) => ({
                value: v.version, label: `v${v.version} · ${v.status === "published" ? t("已发布") : v.status === "draft" ? t("草稿") : t("已停用")} · ${when(v.created_at)}`,
              }))}
              onChange={async (v) => open((await api.get<VersionDetail>(`/process-definitions/${encodeURIComponent(key)}/versions/${v}`)).bpmn_xml)} />
          )}
        </Space>
        {error && <Alert type="error" style={{ marginTop: 8 }} title={error} />}
        <ImportReport items={report} onSelect={(id) => { const el = svc("elementRegistry").get(id); if (el) svc("selection").select(el); }} />
        {problems && (
          problems.length === 0
            ? <Alert data-testid="process-problems" type="success" showIcon style={{ marginTop: 8 }} title={t("校验通过")} />
            : <Alert data-testid="process-problems" type="error" showIcon style={{ marginTop: 8 }} title={t("校验发现 {n} 个问题", { n: problems.length })}
                description={<List size="small" dataSource={problems} renderItem={(p) => (
                  <List.Item style={{ cursor: p.element ? "pointer" : undefined }}
                             onClick={() => { const el = p.element && svc("elementRegistry").get(p.element); if (el) svc("selection").select(el); }}>
                    <Space>{p.element && <Tag>{p.element}</Tag>}<span>{t("第 {n} 行", { n: p.line })}</span><span>{p.message}</span></Space>
                  </List.Item>)} />} />
        )}
      </Card>
      <Row gutter={12}>
        <Col xs={24} lg={16}>
          <div ref={box} className="dj-modeler" data-testid="modeler" />
        </Col>
        <Col xs={24} lg={8}>
          <Card size="small" title={t("属性")} data-testid="properties">
            {loaded && (selected
              ? <ElementPanel key={selected.id} element={selected} svc={svc} forms={forms} />
              : <ProcessPanel svc={svc} />)}
          </Card>
        </Col>
      </Row>
      {comparing && <VersionCompare processKey={key} versions={versions} onClose={() => setComparing(false)} />}
      <SettingsDrawer processKey={key} open={showSettings} onClose={() => setShowSettings(false)} onSaved={() => loadVersions(key)} />
      <NewProcessDialog open={askNew} onCancel={() => setAskNew(false)}
        onOk={(k, n) => { setAskNew(false); setKey(""); setVersions([]); open(NEW_DIAGRAM(k, n)); }} />
    </Space>
  );
}

function NewProcessDialog({ open, onOk, onCancel }: { open: boolean; onOk: (key: string, name: string) => void; onCancel: () => void }) {
  const t = useT();
  const [form] = Form.useForm();
  return (
    <Modal open={open} title={t("新建流程")} onCancel={onCancel} okText={t("确定")} cancelText={t("取消")} destroyOnHidden
           okButtonProps={{ "data-testid": "new-process-ok" } as never}
           onOk={async () => { const v = await form.validateFields(); onOk(v.key, v.name); }}>
      <Form form={form} layout="vertical">
        <Form.Item name="key" label={t("流程标识")} rules={[{ required: true, pattern: /^[a-z][a-z0-9_]{1,63}$/, message: t("小写字母、数字和下划线，以字母开头") }]}>
          <Input data-testid="new-process-key" placeholder="trip_approval" />
        </Form.Item>
        <Form.Item name="name" label={t("名称")} rules={[{ required: true }]}>
          <Input data-testid="new-process-name" />
        </Form.Item>
      </Form>
    </Modal>
  );
}

/** The process a diagram is about: the root itself, or, for a diagram drawn with a pool and lanes
 * (a collaboration), the process of its first participant. */
export function processOf(root: Moddle): Moddle {
  if (root.$type === "bpmn:Collaboration") {
    const ref = (root as unknown as { participants?: { processRef?: Moddle }[] }).participants?.find((p) => p.processRef)?.processRef;
    if (ref) return ref;
  }
  return root;
}

function ProcessPanel({ svc }: { svc: <K extends keyof Services>(n: K) => Services[K] }) {
  const t = useT();
  const root = svc("canvas").getRootElement();
  const proc = processOf(root.businessObject);
  const rename = (name: string) => {
    if (proc === root.businessObject) svc("modeling").updateProperties(root, { name });
    else proc.name = name;  // a pool's process has no shape of its own: set it on the model
  };
  return (
    <Form layout="vertical" size="small">
      <Form.Item label={t("流程标识")}><Input value={proc.id} disabled /></Form.Item>
      <Form.Item label={t("名称")}>
        <Input data-testid="process-name" defaultValue={proc.name} onChange={(e) => rename(e.target.value)} />
      </Form.Item>
      <Typography.Text type="secondary">{t("选中一个节点以设置它的属性")}</Typography.Text>
    </Form>
  );
}

function ElementPanel({ element, svc, forms }: {
  element: Shape;
  svc: <K extends keyof Services>(n: K) => Services[K];
  forms: FormSummary[];
}) {
  const t = useT();
  const bo = element.businessObject;
  const [props, setProps] = useState<Record<string, string>>(() => readProps(bo));
  const setProp = (name: string, value: string | undefined) => {
    const moddle = svc("moddle");
    const ext = bo.extensionElements ?? (moddle.create("bpmn:ExtensionElements", { values: [] }) as unknown as { values: Moddle[] });
    let holder = ext.values.find((v) => v.$type === "spiffworkflow:Properties");
    if (!holder) {
      holder = moddle.create("spiffworkflow:Properties", { properties: [] });
      ext.values.push(holder);
    }
    const list = holder.properties ?? (holder.properties = []);
    const at = list.findIndex((p) => p.name === name);
    if (value === undefined || value === "") {
      if (at >= 0) list.splice(at, 1);
    } else if (at >= 0) list[at].value = value;
    else list.push(moddle.create("spiffworkflow:Property", { name, value }));
    svc("modeling").updateProperties(element, { extensionElements: ext });
    setProps(readProps(bo));
  };
  const isUserTask = element.type === "bpmn:UserTask";
  const method = props.approveMethod ?? "single";
  return (
    <Form layout="vertical" size="small">
      <Form.Item label="id"><Typography.Text code>{element.id}</Typography.Text></Form.Item>
      <Form.Item label={t("名称")}>
        <Input data-testid="element-name" defaultValue={bo.name} onChange={(e) => svc("modeling").updateProperties(element, { name: e.target.value })} />
      </Form.Item>
      {!isUserTask && element.type === "bpmn:Task" && <Alert type="info" title={t("审批节点请用“更改类型”改为用户任务")} />}
      {isUserTask && (
        <>
          <Form.Item label={t("表单")}>
            <Select data-testid="element-form" allowClear showSearch optionFilterProp="label" value={props.formJsonSchemaFilename}
              options={forms.map((f) => ({ value: f.key, label: `${f.title || f.key}（${f.key}）` }))}
              onChange={(v) => { setProp("formJsonSchemaFilename", v); setProp("formUiSchemaFilename", v); }} />
          </Form.Item>
          <RuleEditor value={props.assignee} onChange={(v) => setProp("assignee", v)} />
          <Form.Item label={t("审批方式")}>
            <Space wrap>
              <Select data-testid="element-method" style={{ width: 160 }} value={method.startsWith("ratio") ? "ratio" : method}
                options={[{ value: "single", label: t("单人审批") }, { value: "any", label: t("或签") }, { value: "all", label: t("会签") },
                          { value: "sequential", label: t("依次审批") }, { value: "ratio", label: t("比例会签") }]}
                onChange={(v) => setProp("approveMethod", v === "single" ? undefined : v === "ratio" ? "ratio:0.6" : v)} />
              {method.startsWith("ratio") && (
                <InputNumber min={0.01} max={1} step={0.05} value={Number(method.split(":")[1] ?? 0.6)}
                             onChange={(v) => setProp("approveMethod", `ratio:${v ?? 0.6}`)} />
              )}
            </Space>
          </Form.Item>
          <Form.Item label={t("驳回后")}>
            <Select value={props.rejectPolicy ?? "end"} onChange={(v) => setProp("rejectPolicy", v === "end" ? undefined : v)}
              options={[{ value: "end", label: t("结束流程") }, { value: "return_initiator", label: t("退回发起人") }, { value: "return_previous", label: t("退回上一步") }]} />
          </Form.Item>
          <Form.Item label={t("按钮")}>
            <Checkbox.Group value={props.buttons ? props.buttons.split(",") : BUTTONS}
              options={BUTTONS.map((b) => ({ value: b, label: t(BUTTON_LABELS[b]) }))}
              onChange={(v) => v.length && setProp("buttons", v.length === BUTTONS.length ? undefined : (v as string[]).join(","))} />
          </Form.Item>
          <Space size={24}>
            <Form.Item label={t("意见必填")}><Switch checked={props.opinionRequired === "true"} onChange={(v) => setProp("opinionRequired", v ? "true" : undefined)} /></Form.Item>
            <Form.Item label={t("手写签名")}><Switch checked={props.signatureRequired === "true"} onChange={(v) => setProp("signatureRequired", v ? "true" : undefined)} /></Form.Item>
          </Space>
          <Row gutter={8}>
            <Col span={12}><Form.Item label={t("办理时限")} tooltip="ISO 8601，如 P3D；P3WD 为 3 个工作日">
              <Input placeholder="P3WD" defaultValue={props.dueIn} onBlur={(e) => setProp("dueIn", e.target.value.trim())} /></Form.Item></Col>
            <Col span={12}><Form.Item label={t("超时处理")} tooltip="remind:N，然后 auto_approve / auto_reject / escalate">
              <Input placeholder="remind:2,then:escalate" defaultValue={props.timeout} onBlur={(e) => setProp("timeout", e.target.value.trim())} /></Form.Item></Col>
          </Row>
          <Form.Item label={t("找不到处理人时")}>
            <Select allowClear value={props.emptyAssignee} onChange={(v) => setProp("emptyAssignee", v)}
              options={[{ value: "auto_approve", label: t("自动通过") }, { value: "process_admin", label: t("交流程管理员") }, { value: "reject", label: t("驳回") }]} />
          </Form.Item>
          <Form.Item label={t("审批人去重")}>
            <Select allowClear value={props.dedupe} onChange={(v) => setProp("dedupe", v)}
              options={[{ value: "off", label: t("不去重") }, { value: "consecutive", label: t("连续重复时自动通过") }, { value: "once", label: t("同一人只审一次") }]} />
          </Form.Item>
          <Form.Item label={t("发起人是审批人时")}>
            <Select allowClear value={props.initiatorIsApprover} onChange={(v) => setProp("initiatorIsApprover", v)}
              options={[{ value: "self", label: t("由本人审批") }, { value: "skip", label: t("自动跳过") }, { value: "superior", label: t("交上级审批") }]} />
          </Form.Item>
          {props.formJsonSchemaFilename && (
            <FieldPermissions formKey={props.formJsonSchemaFilename} value={props.fieldPermissions}
                              onChange={(v) => setProp("fieldPermissions", v)} />
          )}
          <Form.Item label={t("表单值记入流程数据")} tooltip={t("打开后，本节点填写的值以字段名记入流程数据，网关条件和后续节点可直接使用（如会议记录、表决结果）")}>
            <Switch data-testid="element-merge" checked={props.mergeData === "true"} onChange={(v) => setProp("mergeData", v ? "true" : undefined)} />
          </Form.Item>
          <Form.Item label={t("保密（所填内容仅本人可见）")} tooltip={t("如民主测评：各人填写的内容不向发起人和其他办理人显示")}>
            <Switch data-testid="element-confidential" checked={props.confidential === "true"} onChange={(v) => setProp("confidential", v ? "true" : undefined)} />
          </Form.Item>
          <GuardsEditor value={props.guards} onChange={(v) => setProp("guards", v)} />
        </>
      )}
    </Form>
  );
}

function RuleEditor({ value, onChange }: { value?: string; onChange: (v: string | undefined) => void }) {
  const t = useT();
  const initial = useMemo(() => {
    try {
      return value ? parseRule(value) : null;
    } catch {
      return null;
    }
  }, [value]);
  const [rule, setRule] = useState<Rule | null>(initial);
  const [problem, setProblem] = useState("");
  const apply = (next: Rule | null) => {
    setRule(next);
    if (!next) {
      setProblem("");
      return onChange(undefined);
    }
    try {
      onChange(formatRule(next));
      setProblem("");
    } catch (e) {
      setProblem(e instanceof RuleError ? e.message : String(e));
    }
  };
  const needsName = rule && ["user", "position", "role", "field"].includes(rule.kind);
  const needsOrg = rule && ["position", "role", "in_charge_of", "leaders"].includes(rule.kind);
  const org = rule?.org ?? { base: "initiator" as const, name: "department", parents: 0 };
  return (
    <Form.Item label={t("处理人")} help={problem || (rule ? describeRule(rule, POSITIONS) : t("未设置时使用泳道的规则"))}
               validateStatus={problem ? "error" : undefined}>
      <Space orientation="vertical" style={{ width: "100%" }}>
        <Select data-testid="rule-kind" allowClear value={rule?.kind} placeholder={t("选择规则")}
          options={(Object.keys(RULE_LABELS) as RuleKind[]).map((k) => ({ value: k, label: t(RULE_LABELS[k]) }))}
          onChange={(k?: RuleKind) => apply(k ? { kind: k, org: ["position", "role", "in_charge_of", "leaders"].includes(k) ? org : undefined,
                                                   name: k === "position" ? "head" : undefined, levels: k === "leaders" ? 2 : undefined } : null)} />
        {needsName && (rule!.kind === "position"
          ? <Select data-testid="rule-position" value={rule!.name} options={Object.entries(POSITIONS).map(([k, v]) => ({ value: k, label: `${v}（${k}）` }))}
                    onChange={(v) => apply({ ...rule!, name: v })} />
          : <Input data-testid="rule-name" placeholder={rule!.kind === "user" ? t("用户名") : rule!.kind === "field" ? t("表单字段名") : t("角色标识")}
                   defaultValue={rule!.name} onChange={(e) => apply({ ...rule!, name: e.target.value.trim() })} />)}
        {needsOrg && (
          <Space wrap>
            <Select data-testid="rule-org" style={{ width: 180 }} value={org.base === "initiator" ? org.name : org.base}
              options={[...INITIATOR_ORGS.map((o) => ({ value: o, label: t(ORG_LABELS[o]) })), { value: "org", label: t("指定组织（编码）") },
                        { value: "field", label: t("表单字段所选组织") }]}
              onChange={(v) => apply({ ...rule!, org: v === "org" || v === "field" ? { base: v, name: "", parents: org.parents } : { base: "initiator", name: v, parents: org.parents } })} />
            {org.base !== "initiator" && (
              <Input style={{ width: 140 }} placeholder={org.base === "org" ? t("组织编码") : t("字段名")} defaultValue={org.name}
                     onChange={(e) => apply({ ...rule!, org: { ...org, name: e.target.value.trim() } })} />
            )}
            <Select style={{ width: 120 }} value={org.parents} onChange={(p) => apply({ ...rule!, org: { ...org, parents: p } })}
              options={[0, 1, 2, 3].map((p) => ({ value: p, label: p === 0 ? t("本级") : t("上 {n} 级", { n: p }) }))} />
            {rule!.kind === "leaders" && (
              <InputNumber min={1} max={10} value={rule!.levels} addonAfter={t("级")} onChange={(v) => apply({ ...rule!, levels: v ?? 1 })} />
            )}
          </Space>
        )}
      </Space>
    </Form.Item>
  );
}

function FieldPermissions({ formKey, value, onChange }: { formKey: string; value?: string; onChange: (v: string | undefined) => void }) {
  const t = useT();
  const [fields, setFields] = useState<[string, string][]>([]);
  const perms = useMemo(() => {
    try {
      return value ? (JSON.parse(value) as Record<string, string>) : {};
    } catch {
      return {};
    }
  }, [value]);
  useEffect(() => {
    api.get<FormDetail>(`/forms/${encodeURIComponent(formKey)}`).then((f) => {
      const props = ((f.schema as Json).properties ?? {}) as Record<string, Json>;
      setFields(Object.entries(props).map(([k, v]) => [k, String(v.title ?? k)]));
    }).catch(() => setFields([]));
  }, [formKey]);
  const set = (name: string, p: string) => {
    const next = { ...perms, [name]: p };
    if (p === "edit") delete next[name];
    onChange(Object.keys(next).length ? JSON.stringify(next) : undefined);
  };
  return (
    <Form.Item label={t("字段权限")}>
      <Table size="small" pagination={false} rowKey="0" dataSource={fields}
        columns={[
          { title: t("字段"), render: (_, r) => r[1] },
          { title: t("权限"), render: (_, r) => (
            <Radio.Group size="small" value={perms[r[0]] ?? "edit"} onChange={(e) => set(r[0], e.target.value)}
              options={[{ value: "edit", label: t("可编辑") }, { value: "read", label: t("只读") }, { value: "hidden", label: t("隐藏") }]} />
          ) },
        ]} />
    </Form.Item>
  );
}

interface Guard { rule: string; message: string; field?: string }

/** 办理前校验 (the `guards` property): each row is an expression that must hold when the node is
 * submitted or approved, the message shown when it does not, and the field it is about. The
 * server checks the expressions when the process is validated. */
function GuardsEditor({ value, onChange }: { value?: string; onChange: (v: string | undefined) => void }) {
  const t = useT();
  const parsed = useMemo((): Guard[] | null => {
    if (!value) return [];
    try {
      const v = JSON.parse(value);
      return Array.isArray(v) ? (v as Guard[]) : null;
    } catch {
      return null;
    }
  }, [value]);
  const [rows, setRows] = useState<Guard[]>(parsed ?? []);
  if (parsed === null) {
    return <Form.Item label={t("办理前校验")}><Alert type="warning" title={t("校验规则不是合法的 JSON，请在 XML 中修改")} /></Form.Item>;
  }
  const write = (next: Guard[]) => {
    setRows(next);
    const kept = next.filter((g) => g.rule.trim() && g.message.trim())
      .map((g) => (g.field?.trim() ? { rule: g.rule.trim(), message: g.message.trim(), field: g.field.trim() }
                                   : { rule: g.rule.trim(), message: g.message.trim() }));
    onChange(kept.length ? JSON.stringify(kept) : undefined);
  };
  const edit = (i: number, part: Partial<Guard>) => write(rows.map((g, n) => (n === i ? { ...g, ...part } : g)));
  return (
    <Form.Item label={t("办理前校验")} tooltip={t("每条是一个必须成立的表达式，如 age_on(initiator['birth_date'], today()) >= 18；不成立时拒绝提交并提示")}>
      <Space orientation="vertical" style={{ width: "100%" }} data-testid="element-guards">
        {rows.map((g, i) => (
          <Card key={i} size="small" extra={<Button size="small" type="link" danger onClick={() => write(rows.filter((_, n) => n !== i))}>{t("删除")}</Button>}>
            <Input.TextArea autoSize placeholder={t("条件表达式")} defaultValue={g.rule} onBlur={(e) => edit(i, { rule: e.target.value })} />
            <Input style={{ marginTop: 4 }} placeholder={t("不满足时的提示")} defaultValue={g.message} onBlur={(e) => edit(i, { message: e.target.value })} />
            <Input style={{ marginTop: 4 }} placeholder={t("相关字段（可选）")} defaultValue={g.field} onBlur={(e) => edit(i, { field: e.target.value })} />
          </Card>
        ))}
        <Button size="small" onClick={() => setRows([...rows, { rule: "", message: "" }])}>{t("添加校验")}</Button>
      </Space>
    </Form.Item>
  );
}

const HANDLING: Record<ImportItem["handling"], [string, string]> = {
  keep: ["保留", "green"], ignore: ["忽略", "orange"], convert: ["转换", "blue"],
};
const HANDLING_ORDER: Record<ImportItem["handling"], number> = { ignore: 0, convert: 1, keep: 2 };

/** 导入报告: what of an opened file djflow ignores, converts and keeps, element by element (shown
 * only when something is ignored or converted; a row selects its element). */
function ImportReport({ items, onSelect }: { items: ImportItem[]; onSelect: (id: string) => void }) {
  const t = useT();
  const [showKept, setShowKept] = useState(false);
  const ignored = items.filter((i) => i.handling === "ignore").length;
  const converted = items.filter((i) => i.handling === "convert").length;
  const kept = items.length - ignored - converted;
  const rows = useMemo(() => items.map((item, n) => ({ ...item, n }))
    .filter((i) => showKept || i.handling !== "keep")
    .sort((a, b) => HANDLING_ORDER[a.handling] - HANDLING_ORDER[b.handling] || a.n - b.n), [items, showKept]);
  if (!ignored && !converted) return null;
  return (
    <Alert data-testid="process-ignored" type="warning" showIcon style={{ marginTop: 8 }}
      title={t("导入报告：{i} 项 djflow 不使用，{c} 项已转换", { i: ignored, c: converted })}
      description={
        <Space orientation="vertical" style={{ width: "100%" }} size={4}>
          <Typography.Text type="secondary">
            {t("忽略的内容仍保留在保存的文件中（标明“不保存”的除外）；保留的内容 djflow 照常使用。")}
          </Typography.Text>
          <Space size={6}>
            <Switch size="small" checked={showKept} onChange={setShowKept} data-testid="import-show-kept" />
            <span>{t("同时列出保留的内容（{n} 项）", { n: kept })}</span>
          </Space>
          <Table size="small" rowKey="n" dataSource={rows} scroll={{ x: true }}
            pagination={rows.length > 12 ? { pageSize: 12, size: "small" } : false}
            onRow={(r) => ({ "data-testid": "import-row", "data-handling": r.handling, style: { cursor: r.element ? "pointer" : undefined },
                             onClick: () => r.element && onSelect(r.element) }) as object}
            columns={[
              { title: t("元素"), width: 180, render: (_, r) => (r.element
                ? <Space size={4} wrap>{r.elementName !== r.element && <span>{r.elementName}</span>}<Typography.Text code>{r.element}</Typography.Text></Space>
                : t("整个文件")) },
              { title: t("内容"), render: (_, r) => (r.content === "name" ? t("名称")
                : <Typography.Text code style={{ wordBreak: "break-all" }}>{r.content}</Typography.Text>) },
              { title: t("处理"), width: 70, render: (_, r) => <Tag color={HANDLING[r.handling][1]}>{t(HANDLING[r.handling][0])}</Tag> },
              { title: t("说明"), render: (_, r) => (
                <>{importNote(r, t)}{!r.saved && <Tag color="red" style={{ marginLeft: 6 }}>{t("不保存")}</Tag>}</>) },
            ]} />
        </Space>
      } />
  );
}

// a change's label, its tag colour in the list, and its swatch and marker (colours in styles.css)
const KINDS: Record<string, [string, string, string]> = {
  added: ["新增", "green", "added"], removed: ["删除", "red", "removed"], changed: ["修改", "gold", "changed"],
};

/** 版本对比: two versions side by side (stacked when narrow), what was added green (newer only),
 * removed red (older only), changed amber, and the changes in words; an entry zooms to its element. */
function VersionCompare({ processKey, versions, onClose }: { processKey: string; versions: Version[]; onClose: () => void }) {
  const t = useT();
  const sorted = useMemo(() => [...versions].sort((a, b) => b.version - a.version), [versions]);
  const [older, setOlder] = useState(sorted[1]?.version ?? sorted[0].version);
  const [newer, setNewer] = useState(sorted[0].version);
  const [state, setState] = useState<{ a: string; b: string; diff: BpmnDiff } | null>(null);
  const [error, setError] = useState("");
  const [focus, setFocus] = useState<Focus | null>(null);
  const tRef = useRef(t);
  tRef.current = t;
  useEffect(() => {
    let live = true;
    setState(null);
    setError("");
    const get = (v: number) => api.get<VersionDetail>(`/process-definitions/${encodeURIComponent(processKey)}/versions/${v}`)
      .then((d) => d.bpmn_xml);
    Promise.all([get(older), get(newer)])
      .then(async ([a, b]) => {
        const diff = await diffBpmn(a, b);
        if (live) setState({ a, b, diff });
      })
      .catch((e) => live && setError(`${tRef.current("无法对比")}：${errorText(e, tRef.current)}`));
    return () => {
      live = false;
    };
  }, [processKey, older, newer]);
  const marks = useMemo(() => {
    const left: Marks = {};
    const right: Marks = {};
    for (const c of state?.diff.changes ?? []) {
      if (c.kind !== "added") left[c.id] = [`dj-diff-${c.kind}`];
      if (c.kind !== "removed") right[c.id] = [`dj-diff-${c.kind}`];
    }
    for (const id of state?.diff.moved ?? []) right[id] = [...(right[id] ?? []), "dj-diff-moved"];
    return { left, right };
  }, [state]);
  const entries = (state?.diff.changes ?? []).flatMap((c) => describeChange(c, t).map((text, i) => ({ c, text, key: `${c.id}-${i}` })));
  const label = (v: Version) => `v${v.version} · ${v.status === "published" ? t("已发布") : v.status === "draft" ? t("草稿") : t("已停用")}`;
  const options = sorted.map((v) => ({ value: v.version, label: label(v) }));
  const names = (ids: string[]) => ids.map((id) => state?.diff.names[id] ?? id);
  return (
    <Modal open title={t("版本对比")} width="96vw" style={{ top: 16 }} footer={null} onCancel={onClose} destroyOnHidden>
      <Space orientation="vertical" style={{ width: "100%" }} size={8} className="dj-compare" data-testid="compare">
        <Space wrap>
          <span>{t("较早版本")}</span>
          <Select style={{ width: 160 }} value={older} options={options} onChange={setOlder} data-testid="compare-older-version" />
          <span>{t("较新版本")}</span>
          <Select style={{ width: 160 }} value={newer} options={options} onChange={setNewer} data-testid="compare-newer-version" />
          {Object.values(KINDS).map(([label, , kind]) => <span key={kind}><Swatch kind={kind} />{t(label)}</span>)}
        </Space>
        {error && <Alert type="error" title={error} />}
        {state && (
          <>
            <Row gutter={[12, 12]}>
              <Col xs={24} lg={12}>
                <Typography.Text strong>v{older}</Typography.Text>
                <BpmnViewer xml={state.a} markers={marks.left} focus={focus} testid="compare-older" />
              </Col>
              <Col xs={24} lg={12}>
                <Typography.Text strong>v{newer}</Typography.Text>
                <BpmnViewer xml={state.b} markers={marks.right} focus={focus} testid="compare-newer" />
              </Col>
            </Row>
            {entries.length === 0
              ? <Alert type="success" showIcon data-testid="compare-none" title={t("两个版本的流转没有差别")} />
              : <List size="small" bordered dataSource={entries} data-testid="compare-changes"
                  header={t("共 {n} 处变化", { n: state.diff.changes.length })}
                  renderItem={(e) => (
                    <List.Item data-testid="compare-change" data-kind={e.c.kind} data-element={e.c.id} style={{ cursor: "pointer" }}
                               onClick={() => setFocus((f) => ({ id: e.c.id, n: (f?.n ?? 0) + 1 }))}>
                      <Space><Tag color={KINDS[e.c.kind][1]}>{t(KINDS[e.c.kind][0])}</Tag><span>{e.text}</span></Space>
                    </List.Item>
                  )} />}
            {state.diff.moved.length > 0 && (
              <Typography.Text type="secondary" data-testid="compare-moved">
                {t("仅调整了位置（不影响流转）：{names}", { names: names(state.diff.moved).join("、") })}
              </Typography.Text>
            )}
          </>
        )}
      </Space>
    </Modal>
  );
}
