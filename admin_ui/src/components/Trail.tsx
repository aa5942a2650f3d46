import { useCallback, useEffect, useState } from "react";
import { Card } from "antd";
import { api, type DiagramView, type HistoryEntry } from "../api";
import { useT } from "../i18n";
import { History } from "./History";
import { Diagram } from "./Diagram";

/** An instance's history and diagram, loaded together (the task page and the instance page). */
export function useTrail(instanceId?: number | string) {
  const [history, setHistory] = useState<HistoryEntry[]>([]);
  const [diagram, setDiagram] = useState<DiagramView | null>(null);
  const reload = useCallback(() => {
    if (!instanceId) return;
    api.get<HistoryEntry[]>(`/process-instances/${instanceId}/history`).then(setHistory).catch(() => setHistory([]));
    api.get<DiagramView>(`/process-instances/${instanceId}/diagram`).then(setDiagram).catch(() => setDiagram(null));
  }, [instanceId]);
  useEffect(reload, [reload]);
  return { history, diagram, reload };
}

/** 流转记录 and 流程图 as two cards; `counts` puts each node's run count on the diagram (the monitor). */
export function Trail({ history, diagram, counts = false }: { history: HistoryEntry[]; diagram: DiagramView | null; counts?: boolean }) {
  const t = useT();
  return (
    <>
      <Card size="small" title={t("流转记录")}>
        <History entries={history} />
      </Card>
      {diagram && (
        <Card size="small" title={t("流程图")}>
          <Diagram view={diagram} counts={counts} />
        </Card>
      )}
    </>
  );
}
