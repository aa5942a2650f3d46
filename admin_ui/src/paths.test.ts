import { describe, expect, it } from "vitest";
import { takenFlows, type Flow } from "./paths";

const f = (id: string, source: string, target: string): Flow => ({ id, source, target });
const none = () => false;

describe("the path taken, drawn on the diagram", () => {
  // start → submit → dept → gw ─(达到标准)→ head → end ;  gw ─(低于标准)→ end
  const chain = [f("1", "start", "submit"), f("2", "submit", "dept"), f("3", "dept", "gw"),
    f("big", "gw", "head"), f("4", "head", "end"), f("small", "gw", "end")];

  it("leaves the exclusive gateway's untaken branch out although both its ends ran", () => {
    const taken = takenFlows(chain, ["start", "submit", "dept", "gw", "head", "end"], [], none);
    expect([...taken].sort()).toEqual(["1", "2", "3", "4", "big"]);
  });

  it("takes the short branch when the amount was below the threshold", () => {
    const taken = takenFlows(chain, ["start", "submit", "dept", "gw", "end"], [], none);
    expect([...taken].sort()).toEqual(["1", "2", "3", "small"]);
  });

  it("draws the flow into the node running now", () => {
    expect([...takenFlows(chain, ["start", "submit"], ["dept"], none)].sort()).toEqual(["1", "2"]);
  });

  it("enters a parallel join from every finished branch", () => {
    const par = [f("a", "fork", "A"), f("b", "fork", "B"), f("ja", "A", "join"), f("jb", "B", "join"), f("e", "join", "end")];
    const taken = takenFlows(par, ["fork", "A", "B", "join", "end"], [], (n) => n === "join");
    expect([...taken].sort()).toEqual(["a", "b", "e", "ja", "jb"]);
  });

  it("after a 退回 to the initiator, the flow back into submit is the one from the rejecting step only", () => {
    const loop = [f("1", "start", "submit"), f("2", "submit", "dept"), f("back", "dept", "submit")];
    const taken = takenFlows(loop, ["start", "submit", "dept", "submit"], ["dept"], none);
    expect([...taken].sort()).toEqual(["1", "2", "back"]);
  });
});
