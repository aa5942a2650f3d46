// Which sequence flows of a diagram were taken, from the order the nodes completed in.
export interface Flow {
  id: string;
  source: string;
  target: string;
}

/** `path` lists node ids in the order they completed (a node repeats when a loop or a 退回 ran
 * it again); `active` are the nodes running now. Each time a node is reached, the flow into it
 * came from the latest node before it that has a flow to it, except at a parallel join, which
 * all its completed branches enter. So an exclusive gateway's untaken branch stays grey even
 * when both its ends ran. */
export function takenFlows(flows: Flow[], path: string[], active: string[], isJoin: (node: string) => boolean): Set<string> {
  const incoming = new Map<string, Flow[]>();
  for (const f of flows) incoming.set(f.target, [...(incoming.get(f.target) ?? []), f]);
  const visits = [...path, ...active];
  const taken = new Set<string>();
  const lastSeen = new Map<string, number>();
  visits.forEach((node, i) => {
    const into = (incoming.get(node) ?? []).filter((f) => lastSeen.has(f.source));
    const since = lastSeen.get(node) ?? -1; // sources that ran after this node's previous visit
    const fresh = into.filter((f) => lastSeen.get(f.source)! > since);
    if (isJoin(node)) fresh.forEach((f) => taken.add(f.id));
    else if (fresh.length) taken.add(fresh.reduce((a, b) => (lastSeen.get(a.source)! >= lastSeen.get(b.source)! ? a : b)).id);
    if (i < path.length) lastSeen.set(node, i);
  });
  return taken;
}
