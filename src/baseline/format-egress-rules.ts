import type { Baseline } from "../core/baseline/baseline-schema.js";
import { egressRulesFor, type EgressRules } from "./egress-rules.js";

/**
 * The `egress:` section a baseline's behaviour needs, as YAML ready to paste into a
 * policy, for `hangar baseline to-policy`. Pure. What it prints is accepted by the policy
 * loader (a test pastes it into a policy and loads it).
 */
export function formatEgressRules(baseline: Baseline): string {
  const rules = egressRulesFor(baseline);
  const lines: string[] = [];
  const state = baseline.status === "frozen" ? `frozen baseline (frozen at ${baseline.frozenAt ?? "?"})` : "baseline (still learning)";
  lines.push(`# Egress rules for ${baseline.server}, from its ${state}.`);
  lines.push("# Paste at the top level of the policy, replacing its egress section.");
  lines.push(...notes(rules));
  lines.push("egress:");
  if (rules.hosts.length + rules.cidrs.length === 0) {
    lines.push("  allow: []");
  } else {
    lines.push("  allow:");
    for (const h of rules.hosts) {
      if (h.dnsOnly) lines.push("    # looked up but never connected to; only declared names are answered");
      lines.push(`    - host: ${scalar(h.host)}`, `      ports: [${h.ports.join(", ")}]`);
      if (h.inspect === true) lines.push("      inspect: true");
      if (h.httpNote !== undefined) lines.push(`      # ${h.httpNote}`);
      if (h.http !== undefined) {
        lines.push("      http:");
        for (const r of h.http) lines.push(`        - { method: ${r.method}, path: ${JSON.stringify(r.path)} }`);
      }
    }
    for (const c of rules.cidrs) lines.push(`    - cidr: ${scalar(c.cidr)}`, `      ports: [${c.ports.join(", ")}]`);
  }
  if (rules.recordTypes.length > 1) lines.push("  dns:", `    recordTypes: [${rules.recordTypes.join(", ")}]`);
  return `${lines.join("\n")}\n`;
}

function notes(rules: EgressRules): string[] {
  const out: string[] = [];
  if (rules.unanswerable.length > 0) out.push(`# The server also asked for ${rules.unanswerable.join(", ")} records, which Hangar never answers.`);
  if (rules.tunnelling.length > 0) {
    out.push(`# Names that looked like DNS tunnelling were seen under ${rules.tunnelling.join(", ")}; no rule is suggested for them.`);
  }
  return out;
}

/** Host names and CIDRs are plain YAML scalars, except spellings YAML would read as something else. */
function scalar(s: string): string {
  return /^[a-z0-9_][a-z0-9_.:/-]*$/.test(s) && s.includes(".") ? s : JSON.stringify(s);
}
