import { describe, expect, it } from "vitest";
import { countLabel, stateMarks, type DiagramElement } from "./Diagram";

const flow = (id: string, source: string, target: string): DiagramElement =>
  ({ id, type: "bpmn:SequenceFlow", businessObject: { sourceRef: { id: source }, targetRef: { id: target } } });
const task = (id: string): DiagramElement => ({ id, type: "bpmn:UserTask" });
const elements = [task("start"), task("a"), task("b"), task("c"), flow("f1", "start", "a"), flow("f2", "a", "b"), flow("f3", "b", "c")];
const node = (node_id: string, state: string) =>
  ({ node_id, name: node_id, state, completed: 0, open_slots: 0, assignees: [], runs: 1, tasks_done: 0, tasks_total: 0 });

describe("stateMarks", () => {
  it("marks completed nodes, the current one and the flows on the path taken", () => {
    const marks = stateMarks({ path: ["start", "a"], nodes: [node("start", "completed"), node("a", "completed"), node("b", "active")] }, elements);
    expect(marks).toEqual({ start: ["dj-node-completed"], a: ["dj-node-completed"], b: ["dj-node-active"],
                            f1: ["dj-flow-taken"], f2: ["dj-flow-taken"] });
  });
  it("marks a failed node red, not green, and skips ids the diagram lacks", () => {
    const marks = stateMarks({ path: ["start", "gone"], nodes: [node("a", "error")] }, elements);
    expect(marks).toEqual({ start: ["dj-node-completed"], a: ["dj-node-error"] });
  });
});

describe("countLabel", () => {
  it("shows runs and the slots decided of those that count", () => {
    expect(countLabel({ runs: 1, tasks_done: 2, tasks_total: 3 })).toBe("2/3");
    expect(countLabel({ runs: 2, tasks_done: 0, tasks_total: 1 })).toBe("×2");
    expect(countLabel({ runs: 1, tasks_done: 1, tasks_total: 1 })).toBe("1"); // a settled 或签
    expect(countLabel({ runs: 3, tasks_done: 1, tasks_total: 3 })).toBe("×3 · 1/3");
  });
});
