import { LineCounter, parseDocument } from "yaml";
import { parseIp } from "../core/ip.js";
import { normaliseHostName } from "../core/names.js";
import { compilePolicy, findCidrRule, findHostRule } from "../core/policy/compiled-policy.js";
import type { Policy } from "../core/policy/policy-schema.js";
import { createYamlLocator } from "../policy/index.js";

/**
 * Where in a policy file a destination is decided: the `egress.allow` entry whose host or
 * CIDR admits it (the most specific, as the sidecar picks it), positioned on that entry;
 * or, when no entry does, the `egress` section (or the top of the file). Pure: the policy
 * and its own text come in.
 */
export interface PolicyRuleSpot {
  readonly line: number;
  readonly column: number;
  /** The allow entry's index, when one admits the name. */
  readonly index?: number;
  /** Its host pattern or CIDR, as the policy spells it once normalised. */
  readonly rule?: string;
  /** Whether the entry lists the port too (false: the name is admitted, the port is not). */
  readonly coversPort?: boolean;
}

export interface PolicyRuleLocator {
  /** A destination (host name or IP literal), and its port when known. */
  forDestination(name: string, port?: number): PolicyRuleSpot;
  /** The allow entry written as exactly this host pattern ("*.example.com"), if any. */
  forPattern(pattern: string): PolicyRuleSpot;
}

export function createPolicyRuleLocator(policy: Policy, text: string): PolicyRuleLocator {
  const lines = new LineCounter();
  const locator = createYamlLocator(parseDocument(text, { lineCounter: lines, prettyErrors: false }), lines);
  const compiled = compilePolicy(policy);
  const entry = (index: number, rule: string, coversPort: boolean | undefined): PolicyRuleSpot => {
    const { line, col } = locator.at(["egress", "allow", index]);
    return { line, column: col, index, rule, ...(coversPort !== undefined ? { coversPort } : {}) };
  };
  const egress = (): PolicyRuleSpot => {
    const { line, col } = locator.at(["egress"], "key");
    return { line, column: col };
  };

  return {
    forDestination(name, port) {
      const ip = parseIp(name);
      if (ip !== undefined) {
        const rule = (port !== undefined ? findCidrRule(compiled, ip, port) : undefined) ?? findCidrRule(compiled, ip);
        return rule === undefined ? egress() : entry(rule.index, rule.text, port === undefined ? undefined : rule.ports.has(port));
      }
      const host = normaliseHostName(name);
      const rule = host === undefined ? undefined : findHostRule(compiled, host);
      return rule === undefined ? egress() : entry(rule.index, rule.text, port === undefined ? undefined : rule.ports.has(port));
    },
    forPattern(pattern) {
      const rule = pattern.startsWith("*.") ? compiled.wildcardHosts.find((r) => r.text === pattern) : compiled.exactHosts.get(pattern);
      return rule === undefined ? egress() : entry(rule.index, rule.text, undefined);
    },
  };
}

/** What a spot says about `what`: "egress.allow[2] (*.mail.test) admits api.mail.test:443". */
export function policyNote(spot: PolicyRuleSpot, what: string, port?: number): string {
  if (spot.index === undefined) return `no egress.allow entry of the policy admits ${what}`;
  const entry = `egress.allow[${spot.index}] (${spot.rule ?? "?"})`;
  return spot.coversPort === false ? `${entry} admits the name of ${what}, but not port ${port ?? "?"}` : `${entry} admits ${what}`;
}
