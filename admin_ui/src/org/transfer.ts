// The workbook in and out: the import's upload with progress (fetch cannot report an upload's
// progress; XHR can) and the export's download.
import { ApiError, api, csrfToken, download } from "../api";
import type { ImportReport } from "./report";

/** What an answer of POST /api/users/import means: the report (200, or 422 carrying the rows'
 * problems), or the server's refusal as an ApiError (403, 413, a 422 without a report …). */
export function readAnswer(status: number, text: string): ImportReport | ApiError {
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON: keep the status */
  }
  if ((status === 200 || status === 422) && Array.isArray(body.problems) && typeof body.counts === "object")
    return body as unknown as ImportReport;
  const errors = Array.isArray(body.errors)
    ? (body.errors as Record<string, unknown>[]).map((e) => ({ field: String(e.field ?? ""), message: String(e.message ?? e.reason ?? e.msg ?? "") }))
    : [];
  return new ApiError(status, String(body.title ?? ""), typeof body.detail === "string" ? body.detail : "", errors);
}

function send(file: File, dryRun: boolean, onProgress: (percent: number) => void): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/users/import?dry_run=${dryRun}`);
    xhr.setRequestHeader("X-CSRF-Token", csrfToken());
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(Math.round((e.loaded / e.total) * 100));
    xhr.onload = () => resolve({ status: xhr.status, text: xhr.responseText });
    xhr.onerror = () => reject(new ApiError(0, "network", ""));
    const body = new FormData();
    body.append("file", file, file.name);
    xhr.send(body);
  });
}

/** Upload `file` for a dry run (nothing written) or the real import; resolves with the report,
 * rejects with an ApiError. An ended access token is refreshed once (by a call through api.ts). */
export async function uploadWorkbook(file: File, dryRun: boolean, onProgress: (percent: number) => void): Promise<ImportReport> {
  let answer = await send(file, dryRun, onProgress);
  if (answer.status === 401) {
    await api.get("/me");
    answer = await send(file, dryRun, onProgress);
  }
  const read = readAnswer(answer.status, answer.text);
  if (read instanceof ApiError) throw read;
  return read;
}

/** Download GET /api/users/export (the caller's scope, masked) and hand it to the browser; returns
 * the file's name. */
export async function downloadExport(): Promise<string> {
  return (await download("/users/export", undefined, { method: "GET", fallback: "人员与组织.xlsx" })).name;
}
