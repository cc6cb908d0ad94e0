import type { BaselineDiff, BaselineSide, EntryChange, FieldChange, SectionDiff } from "../core/baseline/baseline-diff.js";
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
  return `${lines.map(printable).join("\n")}\n`;
}

function section<T>(lines: string[], title: string, s: SectionDiff<T>, describe: (x: T) => string): void {
  if (s.added.length + s.removed.length + s.changed.length === 0) return;
  lines.push(`${title}:`);
  for (const x of s.added) lines.push(`  + ${describe(x)}`);
  for (const x of s.removed) lines.push(`  - ${describe(x)}`);
  for (const c of s.changed) lines.push(`  ~ ${changed(c)}`);
}

const value = (v: FieldChange["before"]): string => (Array.isArray(v) ? `[${v.join(", ")}]` : String(v));
const change = (c: FieldChange): string => `${c.field}: ${value(c.before)} -> ${value(c.after)}`;
const changed = (c: EntryChange): string => `${c.key}: ${c.changes.map((f) => `${f.field} ${value(f.before)} -> ${value(f.after)}`).join("; ")}`;
