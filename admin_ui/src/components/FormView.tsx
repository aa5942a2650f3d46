import Form from "@rjsf/antd";
import type { WidgetProps } from "@rjsf/utils";
import { localiseErrors, validator } from "../validation";
import { DatePicker, InputNumber } from "antd";
import dayjs from "dayjs";
import { PersonPicker } from "./PersonPicker";
import { OrgPicker } from "./OrgPicker";
import type { ReactNode } from "react";
import { useContext } from "react";
import { LangContext } from "../i18n";

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

export const WIDGETS = { money: MoneyWidget, daterange: DateRangeWidget, person: PersonWidget, org: OrgWidget };

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
      readonly={props.readonly}
      showErrorList={false}
      noHtml5Validate
      transformErrors={(errors) => localiseErrors(errors, lang)}
      onChange={(e) => props.onChange?.(e.formData as Json)}
    >
      {props.children ?? <></>}
    </Form>
  );
}
