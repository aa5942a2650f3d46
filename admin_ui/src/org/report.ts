// The Excel import's report (POST /api/users/import → {ok, dry_run, counts, problems}) as tables,
// and the file name of a download.

export interface RowProblem {
  sheet: string;
  row: number;
  column: string;
  reason: string;
}

export interface ImportReport {
  ok: boolean;
  dry_run: boolean;
  counts: Record<string, Record<string, number>>;
  problems: RowProblem[];
}

/** The workbook's sheets in their order (engine/org/workbook.py HEADERS). */
export const SHEETS = ["组织", "人员", "职务", "分管"];

export interface CountRow {
  sheet: string;
  created: number;
  updated: number;
  unchanged: number;
}

/** One row per sheet, the workbook's sheets first in their order, then any other the server named. */
export function countRows(counts: Record<string, Record<string, number>>): CountRow[] {
  const names = [...SHEETS.filter((s) => s in counts), ...Object.keys(counts).filter((s) => !SHEETS.includes(s))];
  return names.map((sheet) => ({
    sheet, created: counts[sheet]?.created ?? 0, updated: counts[sheet]?.updated ?? 0, unchanged: counts[sheet]?.unchanged ?? 0,
  }));
}

/** Rows created plus rows updated over all sheets. */
export function written(counts: Record<string, Record<string, number>>): number {
  return countRows(counts).reduce((n, c) => n + c.created + c.updated, 0);
}

// A problem with the whole file (no sheet) comes first, a sheet the workbook does not know last.
const rank = (sheet: string) => (sheet === "" ? -1 : SHEETS.includes(sheet) ? SHEETS.indexOf(sheet) : SHEETS.length);

/** Compare two problems by sheet in workbook order (a table column's sorter). */
export function bySheet(a: RowProblem, b: RowProblem): number {
  return rank(a.sheet) - rank(b.sheet);
}

/** Problems in workbook order: by sheet, then row, then column. */
export function sortProblems(problems: RowProblem[]): RowProblem[] {
  return [...problems].sort((a, b) => bySheet(a, b) || a.row - b.row || a.column.localeCompare(b.column));
}

/** The distinct values of one field, in first-seen order (a table column's filter choices). */
export function distinct(problems: RowProblem[], field: "sheet" | "column"): string[] {
  return [...new Set(problems.map((p) => p[field]))];
}

/** Problems whose sheet, column or reason contains `q`, or whose row number is `q`. */
export function searchProblems(problems: RowProblem[], q: string): RowProblem[] {
  const needle = q.trim();
  if (!needle) return problems;
  return problems.filter((p) => String(p.row) === needle || p.sheet.includes(needle) || p.column.includes(needle)
    || p.reason.includes(needle));
}

