import { useEffect, useRef, useState } from "react";
import { Alert } from "antd";
import NavigatedViewer from "bpmn-js/lib/NavigatedViewer";
import "bpmn-js/dist/assets/diagram-js.css";
import "bpmn-js/dist/assets/bpmn-js.css";
import type { DiagramView } from "../api";
import { takenFlows } from "../paths";

interface Shape {
  id: string;
  type: string;
  businessObject?: { sourceRef?: { id: string }; targetRef?: { id: string } };
}

/** The instance's diagram: completed nodes green, current ones amber, and the sequence flows
 * between nodes on the path taken drawn green. */
export function Diagram({ view }: { view: DiagramView }) {
  const box = useRef<HTMLDivElement>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    if (!box.current) return;
    const viewer = new NavigatedViewer({ container: box.current });
    let live = true;
    viewer
      .importXML(view.bpmn_xml)
      .then(() => {
        if (!live) return;
        const canvas = viewer.get("canvas") as {
          zoom: (z: string) => void;
          addMarker: (id: string, cls: string) => void;
        };
        const registry = viewer.get("elementRegistry") as { getAll: () => Shape[]; get: (id: string) => Shape | undefined };
        canvas.zoom("fit-viewport");
        const done = new Set(view.path);
        const active = new Set(view.nodes.filter((n) => n.state === "active" || n.state === "waiting").map((n) => n.node_id));
        for (const n of view.nodes) if (n.state === "completed") done.add(n.node_id);
        for (const id of done) if (registry.get(id)) canvas.addMarker(id, "dj-node-completed");
        for (const id of active) if (registry.get(id)) canvas.addMarker(id, "dj-node-active");
        const all = registry.getAll();
        const flows = all.filter((el) => el.type === "bpmn:SequenceFlow" && el.businessObject?.sourceRef && el.businessObject.targetRef)
          .map((el) => ({ id: el.id, source: el.businessObject!.sourceRef!.id, target: el.businessObject!.targetRef!.id }));
        const joins = new Set(all.filter((el) => el.type === "bpmn:ParallelGateway" || el.type === "bpmn:InclusiveGateway").map((el) => el.id));
        for (const id of takenFlows(flows, view.path, [...active], (n) => joins.has(n))) canvas.addMarker(id, "dj-flow-taken");
        box.current?.setAttribute("data-ready", "1");
      })
      .catch((e: Error) => live && setError(e.message));
    return () => {
      live = false;
      viewer.destroy();
    };
  }, [view]);
  return (
    <>
      {error && <Alert type="error" title={error} />}
      <div ref={box} className="dj-diagram" data-testid="diagram" />
    </>
  );
}
