import type { BaselineDiff, BaselineSide, DestinationRoute, EntryChange, FieldChange, SectionDiff } from "../core/baseline/baseline-diff.js";
import { plural, printable } from "./text-table.js";

/** The readable form of `diffBaselines`, for `hangar baseline diff`. Pure. */
export function formatBaselineDiff(diff: BaselineDiff, names: { readonly a: string; readonly b: string }): string {
  const side = (s: BaselineSide): string => `${s.server}, ${s.status === "frozen" ? `frozen at ${s.frozenAt ?? "?"}` : "learning"}`;
  const lines = [`--- ${names.a} (${side(diff.a)})`, `+++ ${names.b} (${side(diff.b)})`];
  if (diff.same) {
    lines.push("no behavioural differences");
    for (const c of diff.settings) lines.push(`(${change(c)})`);
    return `${lines.map(printable).join("\n")}\n`;
  }
  for (const c of diff.settings) lines.push(change(c));
  section(lines, "destinations", diff.destinations, (d) => `${d.name}:${d.port} (${d.protocols.join(",") || "-"}; ${d.tools.length > 0 ? `from ${d.tools.join(", ")}` : "outside any tool call"}; at most ${d.perMinute.max} a minute)`);
  section(lines, "dns", diff.dns, (e) => `${e.name} ${e.type}`);
  section(lines, "tools", diff.tools, (t) => `${t.name} (${plural(t.calls, "call")}; ${t.destinations.length + t.sharedDestinations.length > 0 ? `reaches ${[...t.destinations, ...t.sharedDestinations].join(", ")}` : "makes no connections"})`);
  section(lines, "tunnelling", diff.tunnelling, (t) => `${t.rule} (${t.signals.join(", ")})`);
  section(lines, "requests", diff.requests, (r) => `${r.destination} ${r.method} ${r.path} (${routeNames(r)}; ${r.tools.length > 0 ? `from ${r.tools.join(", ")}` : "outside any tool call"})`, nameChanges);
  return `${lines.map(printable).join("\n")}\n`;
}

function section<T>(lines: string[], title: string, s: SectionDiff<T>, describe: (x: T) => string, describeChange: (c: EntryChange) => string = changed): void {
  if (s.added.length + s.removed.length + s.changed.length === 0) return;
  lines.push(`${title}:`);
  for (const x of s.added) lines.push(`  + ${describe(x)}`);
  for (const x of s.removed) lines.push(`  - ${describe(x)}`);
  for (const c of s.changed) lines.push(`  ~ ${describeChange(c)}`);
}

const NAME_LISTS: Readonly<Record<string, string>> = { bodyFields: "body fields", queryKeys: "query keys", headerNames: "headers", bodies: "bodies", tools: "tools" };

function routeNames(r: DestinationRoute): string {
  const parts = [`body ${r.bodies.join("/")}${r.bodyFields.length > 0 ? `: ${r.bodyFields.join(", ")}` : ""}`];
  if (r.queryKeys.length > 0) parts.push(`query: ${r.queryKeys.join(", ")}`);
  if (r.headerNames.length > 0) parts.push(`headers: ${r.headerNames.join(", ")}`);
  return parts.join("; ");
}

/** A route's name lists as what was added and removed: `body fields +Bcc; headers -x-trace`. */
function nameChanges(c: EntryChange): string {
  const list = (v: FieldChange["before"]): string[] => (Array.isArray(v) ? v.map(String) : [String(v)]);
  const parts = c.changes.map((f) => {
    const before = new Set(list(f.before));
    const after = new Set(list(f.after));
    const delta = [...[...after].filter((x) => !before.has(x)).map((x) => `+${x}`), ...[...before].filter((x) => !after.has(x)).map((x) => `-${x}`)];
    return `${NAME_LISTS[f.field] ?? f.field} ${delta.join(" ")}`;
  });
  return `${c.key}: ${parts.join("; ")}`;
}

const value = (v: FieldChange["before"]): string => (Array.isArray(v) ? `[${v.join(", ")}]` : String(v));
const change = (c: FieldChange): string => `${c.field}: ${value(c.before)} -> ${value(c.after)}`;
const changed = (c: EntryChange): string => `${c.key}: ${c.changes.map((f) => `${f.field} ${value(f.before)} -> ${value(f.after)}`).join("; ")}`;
