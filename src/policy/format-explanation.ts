import { NAMED_PROTOCOL_PORTS } from "../core/policy/compiled-policy.js";
import { portsText, type PolicyExplanation } from "./explain-policy.js";

/** The plain-words form of `explainPolicy`, for `hangar policy explain`. Pure. */
export function formatExplanation(x: PolicyExplanation): string {
  const lines: string[] = [];
  const section = (title: string): void => {
    if (lines.length > 0) lines.push("");
    lines.push(title);
  };
  const item = (label: string, text: string): void => {
    lines.push(`  ${label}: ${text}`);
  };

  lines.push(`Policy ${x.name}${x.description !== undefined ? ` - ${x.description}` : ""}`);

  section("Server");
  const s = x.server;
  item("source", s.sourceText);
  item("command", s.command !== undefined ? s.command.join(" ") : s.source.kind === "npm" ? "the package's own bin" : "the image's entrypoint");
  if (s.args.length > 0) item("args", s.args.join(" "));
  item("env", s.env.length > 0 ? `${s.env.join(", ")} (plain values from the policy)` : "none");
  item("secrets", s.secrets.length > 0 ? `${s.secrets.join(", ")} (names only: values are passed in as environment variables at start and never logged)` : "none");
  if (s.mounts.length === 0) item("mounts", "none (the root filesystem is read-only; /tmp is a private tmpfs)");
  else for (const m of s.mounts) item("mount", `${m.source} -> ${m.target} (${m.readOnly ? "read-only" : "read-write"})`);
  item("resources", `memory ${s.resources.memory}, ${s.resources.cpus} CPUs, at most ${s.resources.pids} processes`);

  section("Egress");
  const e = x.egress;
  item("mode", `${e.mode} - ${e.modeMeaning}`);
  item("summary", e.summary);
  if (e.hosts.length + e.cidrs.length > 0) lines.push("  allowed destinations:");
  for (const h of e.hosts) {
    const spelt = h.written.filter((w) => w !== h.rule);
    lines.push(`    - ${h.meaning}${spelt.length > 0 ? ` (written ${spelt.map((w) => JSON.stringify(w)).join(", ")})` : ""}`);
  }
  for (const c of e.cidrs) lines.push(`    - ${c.meaning}`);
  item("dns", e.dns.meaning);
  item("capture", e.capture.meaning);
  item("transparent ports", e.transparentPorts.length > 0 ? `${portsText(e.transparentPorts)} (for clients that ignore HTTP_PROXY)` : "none");
  // HTTP and TLS name their destination; routing by port matters only for other protocols.
  const nameless = e.namelessPorts.filter((p) => !NAMED_PROTOCOL_PORTS.has(p.port));
  if (nameless.length > 0) {
    lines.push("  traffic without a name (no TLS SNI, no HTTP Host):");
    for (const p of nameless) lines.push(`    - ${p.meaning}`);
  }

  section("Tools");
  lines.push(`  ${x.tools.meaning}`);

  section("Baseline");
  lines.push(`  ${x.baseline.meaning}`);

  section("Always, in every mode");
  for (const inv of x.invariants) lines.push(`  - ${inv}`);

  if (x.warnings.length > 0) {
    section("Warnings");
    for (const w of x.warnings) lines.push(`  - ${w.path}: ${w.message}`);
  }
  return `${lines.join("\n")}\n`;
}
