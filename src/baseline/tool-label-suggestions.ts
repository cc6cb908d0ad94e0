import type { Baseline } from "../core/baseline/baseline-schema.js";
import type { ToolLabel } from "../core/policy/policy-schema.js";

/**
 * Tool labels a baseline's behaviour suggests, for hangar.yaml's flow rules: a tool that
 * reached a destination outside its sandbox while it was the only call in flight is
 * `sends-external`. One reached only while other calls were in flight (so possibly theirs)
 * is listed apart, for the reviewer to decide. Pure; for `hangar baseline to-policy`.
 */
export interface ToolLabelSuggestion {
  readonly tool: string;
  readonly labels: readonly ToolLabel[];
  /** The destinations (`host:port`) behind the suggestion. */
  readonly because: readonly string[];
}

export interface ToolLabelSuggestions {
  readonly suggested: readonly ToolLabelSuggestion[];
  /** Tools whose egress is only shared with other calls in flight: not suggested, named. */
  readonly uncertain: readonly ToolLabelSuggestion[];
}

export function suggestToolLabels(baseline: Baseline): ToolLabelSuggestions {
  const suggested: ToolLabelSuggestion[] = [];
  const uncertain: ToolLabelSuggestion[] = [];
  for (const t of [...baseline.tools].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (t.destinations.length > 0) suggested.push({ tool: t.name, labels: ["sends-external"], because: [...t.destinations] });
    else if (t.sharedDestinations.length > 0) uncertain.push({ tool: t.name, labels: ["sends-external"], because: [...t.sharedDestinations] });
  }
  return { suggested, uncertain };
}

/** The suggestions as commented YAML (pasting the egress rules stays safe); empty when there are none. */
export function formatToolLabelSuggestions(baseline: Baseline): string {
  const { suggested, uncertain } = suggestToolLabels(baseline);
  if (suggested.length + uncertain.length === 0) return "";
  const key = (tool: string): string => (/^[A-Za-z_][\w.-]*$/.test(tool) ? tool : JSON.stringify(tool));
  const lines = ["#", "# Suggested tool labels, for hangar.yaml's flows (merge into the policy's tools section):"];
  if (suggested.length > 0) {
    lines.push("# tools:", "#   labels:");
    for (const s of suggested) lines.push(`#     ${key(s.tool)}: [${s.labels.join(", ")}]   # reached ${s.because.join(", ")}`);
  }
  for (const s of uncertain) lines.push(`# ${s.tool} reached ${s.because.join(", ")} only while other calls were in flight: label it sends-external if that egress is its own.`);
  return `${lines.join("\n")}\n`;
}
