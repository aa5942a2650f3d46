// Small formatting helpers shared by pages and components (no React, no page imports).
import dayjs from "dayjs";

/** `{name}` placeholders of a text filled from `vars`; one not given stays as it is. */
export function fill(text: string, vars?: Record<string, string | number>): string {
  return text.replace(/{(\w+)}/g, (whole, k) => (vars && k in vars ? String(vars[k]) : whole));
}

/** A server time (ISO, UTC) as the browser's local date and minute: 2026-03-10 23:30. */
export function when(iso?: string | null) {
  return iso ? dayjs(iso).format("YYYY-MM-DD HH:mm") : "";
}

/** A range of whole days picked in a date picker (YYYY-MM-DD, in the browser's time zone) as the
 * instants the server filters on: `from` is the first day's midnight (inclusive), `to` the
 * midnight after the last day (exclusive, as the API's `arrived_to` / `started_to` are). */
export function dayRange(from?: string | null, to?: string | null): { from?: string; to?: string } {
  return {
    from: from ? dayjs(from).startOf("day").toISOString() : undefined,
    to: to ? dayjs(to).add(1, "day").startOf("day").toISOString() : undefined,
  };
}
