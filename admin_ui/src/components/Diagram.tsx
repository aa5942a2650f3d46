import { useCallback, useEffect, useRef, useState } from "react";
import { Alert, Space } from "antd";
import NavigatedViewer from "bpmn-js/lib/NavigatedViewer";
import "bpmn-js/dist/assets/diagram-js.css";
import "bpmn-js/dist/assets/bpmn-js.css";
import type { DiagramView } from "../api";
import { useT } from "../i18n";
import { takenFlows } from "../paths";

export interface DiagramElement {
  id: string;
  type: string;
  businessObject?: { sourceRef?: { id: string }; targetRef?: { id: string } };
}

/** Marker classes by element id; their colours are in styles.css (`.dj-diagram …`). */
export type Marks = Record<string, string[]>;

export interface Badge {
  id: string;
  html: HTMLElement;
  position: { top?: number; right?: number; bottom?: number; left?: number };
}

/** Selects an element and zooms to it; a new `n` does it again for the same element. */
export interface Focus {
  id: string;
  n: number;
}

interface Services {
  canvas: {
    zoom: (z: number | string) => void;
    addMarker: (id: string, cls: string) => void;
    scrollToElement: (el: DiagramElement, padding?: number) => void;
  };
  elementRegistry: { getAll: () => DiagramElement[]; get: (id: string) => DiagramElement | undefined };
  overlays: { add: (id: string, type: string, o: object) => void };
  selection: { select: (el: DiagramElement) => void };
}

/** A read-only BPMN diagram, fitted to its box, with marker classes and optional overlays; both
 * are given as values or worked out from the diagram's elements once it is drawn. `data-ready`
 * is set on the box when all is drawn. Pass stable (memoised) `markers` and `overlays`: a new
 * one draws the diagram again. */
export function BpmnViewer({ xml, markers, overlays, focus = null, testid }: {
  xml: string;
  markers: Marks | ((elements: DiagramElement[]) => Marks);
  overlays?: (elements: DiagramElement[]) => Badge[];
  focus?: Focus | null;
  testid: string;
}) {
  const box = useRef<HTMLDivElement>(null);
  const viewer = useRef<NavigatedViewer | null>(null);
  const [ready, setReady] = useState(false);
  const [error, setError] = useState("");
  useEffect(() => {
    const v = new NavigatedViewer({ container: box.current! });
    const get = <K extends keyof Services>(name: K) => v.get(name) as Services[K];
    viewer.current = v;
    let live = true;
    setReady(false);
    setError("");
    v.importXML(xml).then(() => {
      if (!live) return;
      const canvas = get("canvas");
      const registry = get("elementRegistry");
      canvas.zoom("fit-viewport");
      const elements = registry.getAll();
      const marks = typeof markers === "function" ? markers(elements) : markers;
      for (const [id, classes] of Object.entries(marks)) {
        if (registry.get(id)) for (const c of classes) canvas.addMarker(id, c);
      }
      for (const b of overlays?.(elements) ?? []) {
        if (registry.get(b.id)) get("overlays").add(b.id, "dj-badge", { position: b.position, html: b.html });
      }
      setReady(true);
    }).catch((e: Error) => live && setError(e.message));
    return () => {
      live = false;
      viewer.current = null;
      v.destroy();
    };
  }, [xml, markers, overlays]);
  useEffect(() => {
    const v = viewer.current;
    if (!ready || !focus || !v) return;
    const el = (v.get("elementRegistry") as Services["elementRegistry"]).get(focus.id);
    if (!el) return;
    (v.get("selection") as Services["selection"]).select(el);
    const canvas = v.get("canvas") as Services["canvas"];
    canvas.zoom(1);
    canvas.scrollToElement(el, 60);
  }, [focus, ready]);
  return (
    <>
      {error && <Alert type="error" title={error} />}
      <div ref={box} className="dj-diagram" data-testid={testid} data-ready={ready ? "1" : undefined} />
    </>
  );
}

/** A legend entry's swatch: `kind` names its colours in styles.css (completed, active, error,
 * none, and the version diff's added, removed, changed). */
export function Swatch({ kind }: { kind: string }) {
  return <span className={`dj-legend-swatch dj-swatch-${kind}`} />;
}

type Node = DiagramView["nodes"][number];

/** The marker classes of an instance's diagram: completed nodes, current ones (a timer or a join
 * waiting counts), failed ones, and the sequence flows on the path taken. */
export function stateMarks(view: Pick<DiagramView, "nodes" | "path">, elements: DiagramElement[]): Marks {
  const ids = new Set(elements.map((el) => el.id));
  const done = new Set(view.path);
  const active = new Set(view.nodes.filter((n) => n.state === "active" || n.state === "waiting").map((n) => n.node_id));
  const failed = new Set(view.nodes.filter((n) => n.state === "error").map((n) => n.node_id));
  for (const n of view.nodes) if (n.state === "completed") done.add(n.node_id);
  const marks: Marks = {};
  const mark = (id: string, cls: string) => ids.has(id) && (marks[id] = [...(marks[id] ?? []), cls]);
  for (const id of done) if (!active.has(id) && !failed.has(id)) mark(id, "dj-node-completed");
  for (const id of active) mark(id, "dj-node-active");
  for (const id of failed) mark(id, "dj-node-error");
  const flows = elements.filter((el) => el.type === "bpmn:SequenceFlow" && el.businessObject?.sourceRef && el.businessObject.targetRef)
    .map((el) => ({ id: el.id, source: el.businessObject!.sourceRef!.id, target: el.businessObject!.targetRef!.id }));
  const joins = new Set(elements.filter((el) => el.type === "bpmn:ParallelGateway" || el.type === "bpmn:InclusiveGateway").map((el) => el.id));
  for (const id of takenFlows(flows, view.path, [...active], (n) => joins.has(n))) mark(id, "dj-flow-taken");
  return marks;
}

// The states a legend shows, by their swatch kind.
const LEGEND: [string, string][] = [["已完成", "completed"], ["进行中", "active"], ["出错", "error"], ["未到达", "none"]];

/** What a node's badge says: how many times it ran, and its latest slots decided of those that
 * count (会签 2/3; a settled 或签 has no slots left undecided, so it shows no fraction). */
export function countLabel(n: Pick<Node, "runs" | "tasks_done" | "tasks_total">): string {
  const runs = n.runs > 1 ? `×${n.runs}` : "";
  const slots = n.tasks_total > 1 ? `${n.tasks_done}/${n.tasks_total}` : "";
  return [runs, slots].filter(Boolean).join(" · ") || String(n.runs);
}

/** The instance's diagram: completed nodes green, current ones amber, failed ones red, and the
 * sequence flows between nodes on the path taken drawn green. With `counts` (the monitor), each
 * node that ran carries a badge: how many times it ran, and a 会签's slots decided of all. */
export function Diagram({ view, counts = false }: { view: DiagramView; counts?: boolean }) {
  const t = useT();
  const tRef = useRef(t);
  tRef.current = t;
  const markers = useCallback((elements: DiagramElement[]) => stateMarks(view, elements), [view]);
  const badges = useCallback((elements: DiagramElement[]): Badge[] => {
    if (!counts) return [];
    const byId = new Map(elements.map((el) => [el.id, el]));
    return view.nodes.flatMap((n) => {
      const el = byId.get(n.node_id);
      if (!el || n.runs < 1 || el.type.endsWith("Gateway") || el.type.endsWith("Event")) return [];
      const html = document.createElement("div");
      html.className = `dj-node-count${n.state === "active" ? " dj-count-open" : ""}`;
      html.dataset.testid = "node-count";
      html.dataset.node = n.node_id;
      html.textContent = countLabel(n);
      html.title = [tRef.current("运行 {n} 次", { n: n.runs }),
                    n.tasks_total ? tRef.current("本轮已办 {done}/{total}", { done: n.tasks_done, total: n.tasks_total }) : ""]
        .filter(Boolean).join("；");
      return [{ id: n.node_id, html, position: { top: -9, right: 9 } }];
    });
  }, [view, counts]);
  return (
    <>
      <BpmnViewer xml={view.bpmn_xml} markers={markers} overlays={badges} testid="diagram" />
      {counts && (
        <Space wrap size={16} style={{ marginTop: 8, fontSize: 12 }} data-testid="diagram-legend">
          {LEGEND.map(([label, kind]) => <span key={kind}><Swatch kind={kind} />{t(label)}</span>)}
          <span><span className="dj-node-count dj-legend-count">×2</span>{t("运行次数")}</span>
          <span><span className="dj-node-count dj-legend-count">2/3</span>{t("本轮已办/共（会签、或签、依次）")}</span>
        </Space>
      )}
    </>
  );
}
