// Small pieces of the org admin forms that hold no React: what changed in an edit, and where the
// server's field problems belong.

type Value = unknown;

const blank = (v: Value) => v === undefined || v === null || v === "";

/** The fields of `after` that differ from `before` (blank, null and undefined count as the same), so
 * a PATCH sends only what the user changed: the server treats every field it is sent as set. */
export function changedFields<T extends Record<string, Value>>(before: Record<string, Value>, after: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(after) as [keyof T & string, Value][]) {
    const old = before[k];
    if (blank(v) && blank(old)) continue;
    if (v !== old) out[k] = (blank(v) ? null : v) as T[keyof T & string];
  }
  return out;
}

export interface Problem {
  field: string;
  message: string;
}

/** The server's field problems split into those a form field shows (by the last part of the
 * problem's path: "body/code" → "code", renamed by `alias`) and the messages left for the form's
 * own error line. */
export function placeProblems(problems: Problem[], fields: string[], alias: Record<string, string> = {}): {
  placed: { name: string; errors: string[] }[];
  rest: string[];
} {
  const byName = new Map<string, string[]>();
  const rest: string[] = [];
  for (const p of problems) {
    const last = p.field.split("/").pop() ?? "";
    const name = alias[last] ?? last;
    if (fields.includes(name)) byName.set(name, [...(byName.get(name) ?? []), p.message]);
    else if (p.message) rest.push(p.message);
  }
  return { placed: [...byName].map(([name, errors]) => ({ name, errors })), rest };
}
