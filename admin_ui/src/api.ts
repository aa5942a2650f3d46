// The typed client of /api: every type comes from src/schema.d.ts, which `npm run gen` generates
// from the server's own OpenAPI document (`djflow openapi --out openapi.json`).
import type { components } from "./schema";

export type S = components["schemas"];
export type TaskView = S["TaskView"];
export type TaskDetail = S["TaskDetail"];
export type InstanceView = S["InstanceView"];
export type HistoryEntry = S["HistoryEntry"];
export type DiagramView = S["DiagramView"];
export type ProcessSummary = S["ProcessSummary"];
export type ActResult = S["ActResult"];
export type Me = S["MeRead"];

export interface FieldProblem {
  field: string;
  message: string;
}

/** An RFC 9457 problem from the server, or a network failure (status 0). */
export class ApiError extends Error {
  status: number;
  title: string;
  detail: string;
  errors: FieldProblem[];

  constructor(status: number, title: string, detail: string, errors: FieldProblem[] = []) {
    super(detail || title);
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.errors = errors;
  }
}

function cookie(name: string): string {
  const hit = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
  return hit ? decodeURIComponent(hit.slice(name.length + 1)) : "";
}

/** Whether this browser holds a session at all: the readable CSRF cookie lives exactly as long as
 * the HttpOnly session cookies, so without it there is no need to ask /api/me (and get a 401). */
export function hasSession(): boolean {
  return cookie("djflow_csrf") !== "";
}

/** Drafts kept on this device belong to one person: a draft key names them, and signing out
 * removes them, so the next person at a shared computer never sees them. */
export function draftKey(username: string, processKey: string): string {
  return `djflow.draft.${username}.${processKey}`;
}
export function clearDrafts(): void {
  for (const k of Object.keys(localStorage)) if (k.startsWith("djflow.draft.")) localStorage.removeItem(k);
}

let onSignedOut: () => void = () => {};
/** What to do when the session has ended and cannot be refreshed (the app shows the login page). */
export function whenSignedOut(handler: () => void) {
  onSignedOut = handler;
}

let refreshing: Promise<boolean> | null = null;
async function refresh(): Promise<boolean> {
  refreshing ??= fetch("/api/auth/refresh", { method: "POST", credentials: "same-origin" })
    .then((r) => r.ok)
    .catch(() => false)
    .finally(() => setTimeout(() => (refreshing = null), 0));
  return refreshing;
}

type Query = Record<string, string | number | boolean | undefined | null>;

function url(path: string, query?: Query): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  const s = q.toString();
  return "/api" + path + (s ? "?" + s : "");
}

async function problem(r: Response): Promise<ApiError> {
  let body: Record<string, unknown> = {};
  try {
    body = await r.json();
  } catch {
    /* not JSON: keep the status line */
  }
  const errors = Array.isArray(body.errors)
    ? (body.errors as Record<string, unknown>[]).map((e) => ({
        field: String(e.field ?? e.loc ?? ""),
        message: String(e.message ?? e.msg ?? e.reason ?? ""),
      }))
    : [];
  const detail = typeof body.detail === "string" ? body.detail : "";
  return new ApiError(r.status, String(body.title ?? r.statusText), detail, errors);
}

/** A random Idempotency-Key. crypto.randomUUID exists only on HTTPS and localhost; an intranet
 * server on plain HTTP still has getRandomValues. */
export function newKey(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

export async function call<T>(method: string, path: string, opts: { query?: Query; body?: unknown; key?: string } = {},
                              retried = false): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  let body: BodyInit | undefined;
  if (opts.body instanceof FormData) body = opts.body;
  else if (opts.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(opts.body);
  }
  if (method !== "GET") headers["X-CSRF-Token"] = cookie("djflow_csrf");
  // One key per user intent (the caller keeps it until the server has answered), so a retry after
  // a lost answer returns the first result instead of acting twice.
  if (opts.key) headers["Idempotency-Key"] = opts.key;
  let r: Response;
  try {
    r = await fetch(url(path, opts.query), { method, headers, body, credentials: "same-origin" });
  } catch {
    throw new ApiError(0, "network", "");
  }
  if (r.status === 401 && !retried && !path.startsWith("/auth/")) {
    if (await refresh()) return call<T>(method, path, opts, true);
    onSignedOut();
  }
  if (!r.ok) throw await problem(r);
  if (r.status === 204) return undefined as T;
  return (await r.json()) as T;
}

/** The file name a Content-Disposition header gives (RFC 5987 `filename*=UTF-8''…` first, so
 * Chinese names survive), or `fallback`. */
export function fileName(header: string | null, fallback: string): string {
  if (!header) return fallback;
  const star = /filename\*\s*=\s*([^']*)'[^']*'([^;]+)/i.exec(header);
  if (star) {
    try {
      return decodeURIComponent(star[2].trim().replace(/^"|"$/g, ""));
    } catch {
      /* a malformed escape: try the plain name */
    }
  }
  const plain = /filename\s*=\s*"?([^";]+)"?/i.exec(header);
  return plain ? plain[1].trim() : fallback;
}

/** The CSRF token to send with a request made outside `call` (an XHR upload with progress). */
export function csrfToken(): string {
  return cookie("djflow_csrf");
}

/** Ask for a file (POST by default: the audit bundle; GET: the people workbook) and hand it to the
 * browser as a download; an ended access token is refreshed once. */
export async function download(path: string, query?: Query, opts: { method?: "GET" | "POST"; fallback?: string } = {},
                               retried = false): Promise<{ name: string; sha256: string | null }> {
  const method = opts.method ?? "POST";
  let r: Response;
  try {
    r = await fetch(url(path, query), { method, credentials: "same-origin",
                                        headers: method === "GET" ? {} : { "X-CSRF-Token": cookie("djflow_csrf") } });
  } catch {
    throw new ApiError(0, "network", "");
  }
  if (r.status === 401 && !retried) {
    if (await refresh()) return download(path, query, opts, true);
    onSignedOut();
  }
  if (!r.ok) throw await problem(r);
  const name = fileName(r.headers.get("content-disposition"), opts.fallback ?? "download");
  const href = URL.createObjectURL(await r.blob());
  const a = document.createElement("a");
  a.href = href;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(href), 1000);
  return { name, sha256: r.headers.get("x-djflow-bundle-sha256") };
}

export const api = {
  get: <T>(path: string, query?: Query) => call<T>("GET", path, { query }),
  post: <T>(path: string, body?: unknown, key?: string) => call<T>("POST", path, { body: body ?? {}, key }),
  put: <T>(path: string, body: unknown) => call<T>("PUT", path, { body }),
};

/** What to tell the user about a failed request: the server's own words, else a network error. */
export function errorText(e: unknown, t: (key: string) => string): string {
  if (e instanceof ApiError) return e.status > 0 ? e.detail || e.title : t("网络错误，请稍后重试");
  return e instanceof Error ? e.message : String(e);
}

export interface Page<T> {
  items: T[];
  total: number;
  page: number;
  size: number;
}
