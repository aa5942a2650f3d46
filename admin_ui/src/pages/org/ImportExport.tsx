// 导入/导出: an .xlsx is checked first (a dry run: nothing written), every problem listed row by row;
// a clean workbook is then imported for real, the same file; 导出 downloads the caller's scope.
import { useMemo, useState } from "react";
import { Alert, App, Button, Card, Input, Progress, Space, Table, Typography, Upload } from "antd";
import { DownloadOutlined, InboxOutlined } from "@ant-design/icons";
import { useT } from "../../i18n";
import type { OrgAccess } from "../../org/access";
import { SHEETS, bySheet, countRows, distinct, searchProblems, sortProblems, written, type CountRow, type ImportReport,
  type RowProblem } from "../../org/report";
import { downloadExport, uploadWorkbook } from "../../org/transfer";
import { problemText } from "./shared";

type Stage = "idle" | "checking" | "importing";

export function ImportExport({ access }: { access: OrgAccess }) {
  const t = useT();
  const { message } = App.useApp();
  const [file, setFile] = useState<File | null>(null);
  const [stage, setStage] = useState<Stage>("idle");
  const [percent, setPercent] = useState(0);
  const [report, setReport] = useState<ImportReport | null>(null);
  const [error, setError] = useState("");
  const [q, setQ] = useState("");
  const [exporting, setExporting] = useState(false);
  const run = async (dryRun: boolean) => {
    if (!file) return;
    setStage(dryRun ? "checking" : "importing");
    setPercent(0);
    setError("");
    try {
      const r = await uploadWorkbook(file, dryRun, setPercent);
      setReport({ ...r, problems: sortProblems(r.problems) });
      if (!dryRun && r.ok) message.success(t("导入完成：写入 {n} 行", { n: written(r.counts) }));
    } catch (e) {
      setReport(null);
      setError(problemText(e, t));
    } finally {
      setStage("idle");
    }
  };
  const pick = (f: File) => {
    setFile(f);
    setReport(null);
    setError("");
    setQ("");
    return false; // kept here: the dry run uploads it
  };
  const exportNow = async () => {
    setExporting(true);
    try {
      message.success(t("已下载 {name}", { name: await downloadExport() }));
    } catch (e) {
      message.error(problemText(e, t));
    } finally {
      setExporting(false);
    }
  };
  const problems = useMemo(() => searchProblems(report?.problems ?? [], q), [report, q]);
  const busy = stage !== "idle";
  const imported = report && report.ok && !report.dry_run;
  return (
    <Space orientation="vertical" size={12} style={{ width: "100%" }}>
      {access.importing && (
        <Card size="small" title={t("从 Excel 导入组织和人员")}>
          <Space orientation="vertical" size={12} style={{ width: "100%" }}>
            <Typography.Text type="secondary">
              {t("工作表：组织、人员、职务、分管（表头为中文，可先导出一份作为模板）。先检查、不写入；全部无误后再导入，同一工作簿一次写入。按组织编码和人员编号匹配，重复导入不会重复建档。")}
            </Typography.Text>
            <Upload.Dragger accept=".xlsx,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" maxCount={1}
                            multiple={false} beforeUpload={pick} showUploadList={false} disabled={busy} data-testid="import-file">
              <p className="ant-upload-drag-icon"><InboxOutlined /></p>
              <p className="ant-upload-text">{file ? file.name : t("点击或拖入 .xlsx 工作簿")}</p>
              {file && <p className="ant-upload-hint">{t("{n} KB，点击可换一个文件", { n: Math.ceil(file.size / 1024) })}</p>}
            </Upload.Dragger>
            <Space wrap>
              <Button type="primary" disabled={!file || busy} loading={stage === "checking"} onClick={() => run(true)} data-testid="import-check">
                {t("检查（不写入）")}
              </Button>
              {report?.ok && report.dry_run && (
                <Button type="primary" danger loading={stage === "importing"} disabled={busy} onClick={() => run(false)} data-testid="import-run">
                  {t("导入")}
                </Button>
              )}
            </Space>
            {busy && (
              <div data-testid="import-progress">
                <Progress percent={percent} status="active" size="small" />
                <Typography.Text type="secondary">
                  {percent < 100 ? t("正在上传…") : stage === "checking" ? t("已上传，正在逐行检查…") : t("已上传，正在写入…")}
                </Typography.Text>
              </div>
            )}
            {error && <Alert type="error" showIcon title={error} data-testid="import-error" />}
            {report && (
              <div data-testid="import-report">
                {report.ok ? (
                  <Alert type="success" showIcon data-testid="import-result" style={{ marginBottom: 8 }}
                         title={imported ? t("导入完成，共写入 {n} 行", { n: written(report.counts) })
                           : t("检查通过：没有发现问题，可以导入（尚未写入）")} />
                ) : (
                  <Alert type="error" showIcon data-testid="import-result" style={{ marginBottom: 8 }}
                         title={t("发现 {n} 处问题，未写入任何数据；请修改工作簿后重新检查", { n: report.problems.length })} />
                )}
                {report.ok && <Counts rows={countRows(report.counts)} done={!!imported} />}
                {!report.ok && (
                  <>
                    <Input.Search allowClear placeholder={t("搜索原因、列或行号")} style={{ width: 240, marginBottom: 8 }}
                                  onChange={(e) => setQ(e.target.value)} />
                    <ProblemTable problems={problems} all={report.problems} />
                  </>
                )}
              </div>
            )}
          </Space>
        </Card>
      )}
      {access.exporting && (
        <Card size="small" title={t("导出")}>
          <Space wrap>
            <Button icon={<DownloadOutlined />} loading={exporting} onClick={exportNow} data-testid="export">{t("导出人员与组织")}</Button>
            <Typography.Text type="secondary">{t("导出您管理范围内的组织和人员，版式与导入相同；身份证号和手机号已脱敏，导出记入审计日志")}</Typography.Text>
          </Space>
        </Card>
      )}
    </Space>
  );
}

function Counts({ rows, done }: { rows: CountRow[]; done: boolean }) {
  const t = useT();
  return (
    <Table<CountRow> rowKey="sheet" size="small" pagination={false} dataSource={rows} data-testid="import-counts"
                     title={() => (done ? t("已写入") : t("导入后将写入"))} columns={[
      { title: t("工作表"), dataIndex: "sheet" },
      { title: t("新建"), dataIndex: "created" },
      { title: t("修改"), dataIndex: "updated" },
      { title: t("不变"), dataIndex: "unchanged" },
    ]} />
  );
}

function ProblemTable({ problems, all }: { problems: RowProblem[]; all: RowProblem[] }) {
  const t = useT();
  const sheets = distinct(all, "sheet").sort((a, b) => SHEETS.indexOf(a) - SHEETS.indexOf(b));
  return (
    <Table<RowProblem> rowKey={(p) => `${p.sheet}:${p.row}:${p.column}:${p.reason}`} size="small" dataSource={problems}
                       data-testid="import-problems" scroll={{ x: 640 }} locale={{ emptyText: t("暂无数据") }}
                       onRow={() => ({ "data-testid": "problem-row" } as never)}
                       pagination={{ pageSize: 50, hideOnSinglePage: true, showSizeChanger: false, showTotal: (n) => t("共 {n} 条", { n }) }}
                       columns={[
      { title: t("工作表"), dataIndex: "sheet", width: 110, render: (v: string) => v || t("（整个文件）"), sorter: bySheet,
        filters: sheets.map((s) => ({ text: s || t("（整个文件）"), value: s })), onFilter: (v, p) => p.sheet === v },
      { title: t("行"), dataIndex: "row", width: 70, sorter: (a, b) => a.row - b.row, render: (v: number) => v || "—" },
      { title: t("列"), dataIndex: "column", width: 130, render: (v: string) => v || "—",
        sorter: (a, b) => a.column.localeCompare(b.column, "zh-CN"),
        filters: distinct(all, "column").filter(Boolean).map((c) => ({ text: c, value: c })), onFilter: (v, p) => p.column === v },
      { title: t("原因"), dataIndex: "reason" },
    ]} />
  );
}
