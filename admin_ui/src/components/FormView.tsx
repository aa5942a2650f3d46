import Form from "@rjsf/antd";
import type { WidgetProps } from "@rjsf/utils";
import { localiseErrors, validator } from "../validation";
import { Button, DatePicker, InputNumber, List, Space, Typography } from "antd";
import dayjs from "dayjs";
import { PersonPicker } from "./PersonPicker";
import { OrgPicker } from "./OrgPicker";
import type { ReactNode } from "react";
import { useContext, useRef, useState } from "react";
import { LangContext, useT } from "../i18n";
import { UploadButton, discardStaged, downloadHref, fileSize, type Attachment } from "./Attachments";

type Json = Record<string, unknown>;

/** "ui:widget": "money": an amount with thousands separators, `precision` decimals (2) and a
 * `unit` (元) after it. */
function MoneyWidget(props: WidgetProps) {
  const precision = Number(props.options.precision ?? 2);
  return (
    <InputNumber<number>
      id={props.id}
      value={props.value ?? null}
      disabled={props.disabled || props.readonly}
      precision={precision}
      min={props.schema.minimum}
      max={props.schema.maximum}
      suffix={String(props.options.unit ?? "元")}
      formatter={(v) => (v === undefined || v === null || String(v) === "" ? "" : String(v).replace(/\B(?=(\d{3})+(?!\d))/g, ","))}
      parser={(v) => Number((v ?? "").replace(/,/g, ""))}
      style={{ width: "100%" }}
      onChange={(v) => props.onChange(v === null ? undefined : v)}
      onBlur={() => props.onBlur(props.id, props.value)}
      onFocus={() => props.onFocus(props.id, props.value)}
    />
  );
}

/** "ui:widget": "daterange": [start, end] as two ISO dates. */
function DateRangeWidget(props: WidgetProps) {
  const v = Array.isArray(props.value) && props.value.length === 2 ? [dayjs(props.value[0]), dayjs(props.value[1])] : null;
  return (
    <DatePicker.RangePicker id={props.id} style={{ width: "100%" }} disabled={props.disabled || props.readonly}
      value={v as never}
      onChange={(d) => props.onChange(d && d[0] && d[1] ? [d[0].format("YYYY-MM-DD"), d[1].format("YYYY-MM-DD")] : undefined)} />
  );
}

/** "ui:widget": "person": a username from the directory. */
function PersonWidget(props: WidgetProps) {
  if (props.disabled || props.readonly) return <span id={props.id}>{props.value ?? ""}</span>;
  return <PersonPicker value={props.value} onChange={(v) => props.onChange(v)} />;
}

/** "ui:widget": "org": an org unit id from the tree. */
function OrgWidget(props: WidgetProps) {
  return <OrgPicker id={props.id} value={props.value} disabled={props.disabled || props.readonly} onChange={(v) => props.onChange(v)} />;
}

/** Where a form's file fields upload to: an instance's attachments (`instanceId`, whose list
 * `files` names the ids), the uploader's staging area before a start (no instance), or nowhere
 * (`preview` in the form designer). */
export interface FilesContext {
  instanceId?: number | null;
  taskId?: number | null; // on a task page: the task the uploads are added at
  files?: Attachment[] | null;
  preview?: boolean;
  onUploaded?: (a: Attachment) => void;
}

/** "ui:widget": "attachments": an array of attachment ids, drawn as the files with download
 * links, a remove button each and an upload button ("ui:options": accept; maxItems the limit). */
function AttachmentsWidget(props: WidgetProps) {
  const t = useT();
  const ctx = ((props.registry.formContext ?? {}) as FilesContext);
  const [added, setAdded] = useState<Attachment[]>([]);
  const ids: number[] = Array.isArray(props.value) ? (props.value as unknown[]).filter((x): x is number => typeof x === "number") : [];
  // several files picked at once arrive one by one, each before the form has re-rendered
  const latest = useRef(ids);
  latest.current = ids;
  const known = new Map<number, Attachment>([...(ctx.files ?? []), ...added].map((a) => [a.id, a]));
  const max = typeof props.schema.maxItems === "number" ? props.schema.maxItems : undefined;
  const accept = typeof props.options.accept === "string" ? props.options.accept : undefined;
  const locked = props.disabled || props.readonly;
  const set = (next: number[]) => props.onChange(next.length ? next : undefined);
  // a file staged for a start form (no instance yet) is deleted on the server when removed from the
  // field; a file of the instance stays the instance's, only the field no longer names it
  const remove = (id: number) => {
    set(ids.filter((x) => x !== id));
    const a = known.get(id);
    if (!ctx.instanceId && a && a.instance_id == null) {
      setAdded((list) => list.filter((x) => x.id !== id));
      discardStaged(id).catch(() => undefined); // left behind, it is purged after a day
    }
  };
  return (
    <div id={props.id} data-testid={`files-${props.name}`}>
      {ids.length > 0 && (
        <List size="small" dataSource={ids} rowKey={(id) => String(id)} style={{ marginBottom: locked ? 0 : 8 }} renderItem={(id) => {
          const a = known.get(id);
          return (
            <List.Item data-testid="file-field-item" actions={locked ? undefined : [
              <Button key="x" type="link" size="small" danger data-testid="file-field-remove" onClick={() => remove(id)}>{t("移除")}</Button>]}>
              <Space size={8} wrap>
                <a href={downloadHref(id)} download={a?.filename}>{a?.filename ?? t("附件 #{id}", { id })}</a>
                {a && <Typography.Text type="secondary">{fileSize(a.size)}</Typography.Text>}
              </Space>
            </List.Item>
          );
        }} />
      )}
      {locked ? (ids.length === 0 && <Typography.Text type="secondary">{t("无附件")}</Typography.Text>) : (
        <Space wrap>
          <UploadButton instanceId={ctx.instanceId} taskId={ctx.taskId} accept={accept} testId={`files-${props.name}-upload`}
            disabled={ctx.preview || (max !== undefined && ids.length >= max)}
            onUploaded={(a) => {
              setAdded((list) => [...list, a]);
              latest.current = [...latest.current, a.id];
              set(latest.current);
              ctx.onUploaded?.(a);
            }} />
          <Typography.Text type="secondary">
            {ctx.preview ? t("预览中不上传文件")
              : [max !== undefined ? t("最多 {n} 个文件", { n: max }) : "", accept ? t("类型：{accept}", { accept }) : ""].filter(Boolean).join("，")}
          </Typography.Text>
        </Space>
      )}
    </div>
  );
}

// A list of attachment ids (a file field) is not padded to its minItems with empty entries: it
// starts empty and the upload fills it.
const DEFAULTS = {
  arrayMinItems: {
    computeSkipPopulate: (_v: unknown, schema: Json) => {
      const items = schema.items as Json | undefined;
      return schema.type === "array" && items?.type === "integer" && schema.uniqueItems === true;
    },
  },
};

export const WIDGETS = { money: MoneyWidget, daterange: DateRangeWidget, person: PersonWidget, org: OrgWidget,
                         attachments: AttachmentsWidget };

/** A JSON Schema form rendered with the server's field permissions already applied: hidden fields
 * are not in the schema at all, read-only ones carry ui:readonly. */
export function SchemaForm(props: {
  schema: Json;
  uiSchema?: Json;
  data: Json;
  onChange?: (data: Json) => void;
  readonly?: boolean;
  formRef?: React.Ref<never>;
  children?: ReactNode;
  files?: FilesContext;
}) {
  const { lang } = useContext(LangContext);
  // The card around the form already shows its title.
  const { $schema: _ignored, title: _title, ...schema } = props.schema;
  void _ignored;
  void _title;
  return (
    <Form
      ref={props.formRef}
      schema={schema}
      uiSchema={{ ...(props.uiSchema ?? {}), "ui:submitButtonOptions": { norender: true } }}
      formData={props.data}
      validator={validator}
      widgets={WIDGETS}
      formContext={props.files ?? {}}
      experimental_defaultFormStateBehavior={DEFAULTS as never}
      readonly={props.readonly}
      showErrorList={false}
      noHtml5Validate
      transformErrors={(errors) => localiseErrors(errors, lang, props.uiSchema)}
      onChange={(e) => props.onChange?.(e.formData as Json)}
    >
      {props.children ?? <></>}
    </Form>
  );
}
