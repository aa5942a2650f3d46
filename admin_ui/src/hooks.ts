import { useEffect, useState } from "react";
import { useSearchParams } from "react-router-dom";
import { App } from "antd";
import { api, errorText, type ProcessSummary } from "./api";
import { useT } from "./i18n";

/** List filters kept in the URL (a reload or a shared link keeps them); changing a filter goes
 * back to page 1. */
export function useUrlFilters() {
  const [params, setParams] = useSearchParams();
  const get = (k: string) => params.get(k) || undefined;
  const set = (patch: Record<string, string | undefined>) => {
    const next = new URLSearchParams(params);
    for (const [k, v] of Object.entries(patch)) (v ? next.set(k, v) : next.delete(k));
    if (!("page" in patch)) next.delete("page");
    setParams(next, { replace: true });
  };
  return { params, setParams, get, set, page: Number(params.get("page") || 1) };
}

/** The process catalogue the user may see (for filters and names); nothing is asked for while
 * `enabled` is false (the caller may not read it). */
export function useProcesses(enabled = true): ProcessSummary[] {
  const [processes, setProcesses] = useState<ProcessSummary[]>([]);
  useEffect(() => {
    if (enabled) api.get<ProcessSummary[]>("/process-definitions").then(setProcesses).catch(() => setProcesses([]));
  }, [enabled]);
  return processes;
}

/** An operation on one instance (withdraw, cancel, retry): POST /process-instances/{id}/{path},
 * then say it worked and call `done` (to reload), or show the server's reason. */
export function useInstanceAction(instanceId: number | string | undefined, done: () => void) {
  const t = useT();
  const { message } = App.useApp();
  return async (path: string, body: unknown = {}) => {
    try {
      await api.post(`/process-instances/${instanceId}/${path}`, body);
      message.success(t("操作成功"));
      done();
    } catch (e) {
      message.error(errorText(e, t));
    }
  };
}
