import { describe, expect, it } from "vitest";
import { BpmnModdle } from "bpmn-moddle";
import { SPIFF_MODDLE } from "./bpmnSupport";

// Every shipped process, as the modeler reads and writes it: nothing djflow needs may be dropped
// (an unknown element is left out of what the modeler saves).
const FILES = import.meta.glob("../../../process_definitions/*/*.bpmn", { query: "?raw", import: "default", eager: true }) as Record<string, string>;
const BY_KEY = Object.fromEntries(Object.entries(FILES)
  .map(([path, xml]) => [path.split("/").slice(-2), xml] as const)
  .filter(([[folder, file]]) => file === `${folder}.bpmn`)
  .map(([[folder], xml]) => [folder, xml]));
const shipped = Object.keys(BY_KEY).sort();
const TAGS = ["serviceTaskOperator", "parameter", "property", "preScript", "postScript", "retry"];

function count(xml: string, tag: string): number {
  return (xml.match(new RegExp(`<spiffworkflow:${tag}[\\s>/]`, "g")) ?? []).length;
}

type Node = { $type?: string; [k: string]: unknown };

/** Every djflow extension value in a parsed definitions tree (parameters, properties, scripts). */
function values(root: Node): string[] {
  const out: string[] = [];
  const seen = new Set<unknown>();
  const walk = (n: unknown) => {
    if (!n || typeof n !== "object" || seen.has(n)) return;
    seen.add(n);
    const node = n as Node;
    if (node.$type?.startsWith("spiffworkflow:")) {
      for (const k of ["id", "name", "value", "resultVariable", "retries", "backoff_base"]) {
        if (typeof node[k] === "string") out.push(`${node.$type}.${k}=${node[k]}`);
      }
    }
    for (const [k, v] of Object.entries(node)) {
      if (k.startsWith("$") && k !== "$children") continue;
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === "object" && !("$parent" === k)) walk(v);
    }
  };
  walk(root);
  return out.sort();
}

describe("the shipped processes round-trip through the modeler's moddle", () => {
  it("ships the whole library", () => {
    expect(shipped.length).toBeGreaterThanOrEqual(11);
  });
  for (const key of shipped) {
    it(`${key} keeps every djflow extension`, async () => {
      const xml = BY_KEY[key];
      const moddle = BpmnModdle({ spiffworkflow: SPIFF_MODDLE });
      const { rootElement, warnings } = await moddle.fromXML(xml);
      expect(warnings.map((w: { message: string }) => w.message)).toEqual([]);
      const { xml: saved } = await moddle.toXML(rootElement, { format: true });
      for (const tag of TAGS) expect([tag, count(saved, tag)]).toEqual([tag, count(xml, tag)]);
      const again = await BpmnModdle({ spiffworkflow: SPIFF_MODDLE }).fromXML(saved);
      const before = values(rootElement as unknown as Node);
      expect(before.length).toBeGreaterThan(key === "approval_chain" ? 10 : 50);
      expect(values(again.rootElement as unknown as Node)).toEqual(before);
    });
  }
});
