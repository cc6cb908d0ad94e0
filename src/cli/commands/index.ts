import type { Command } from "../command.js";
import { fileURLToPath } from "node:url";
import { loadCjsWithCodeCache } from "../cached-cjs.js";
import { lazyCommand, type LazyVerb } from "../lazy-command.js";

/**
 * Every top-level verb of `hangar`, in the order `hangar --help` lists them. A verb's code
 * loads only when it runs (see lazy-command.ts), so its name and summaries are stated here
 * too; test/cli/run-cli.test.ts fails when they differ from the command's own.
 * To add one: write src/cli/commands/<verb>.ts exporting a Command (defineCommand for a
 * leaf, defineGroup for a verb with sub-verbs) and append an entry here.
 */
export const verbs: readonly LazyVerb[] = [
  {
    name: "init",
    summary: "Create the Hangar directory and the audit log's signing key pair",
    load: async () => (await import("./init.js")).initCommand,
  },
  {
    name: "policy",
    summary: "Check, explain and describe policy files",
    subcommands: [
      ["lint", "Check policy files and report every problem with its line and column"],
      ["explain", "Say in plain words what a policy allows"],
      ["schema", "Print the policy file's JSON Schema (for editors and CI)"],
    ],
    load: async () => (await import("./policy.js")).policyCommand,
    loadSubcommand: { lint: loadPolicyLint },
  },
  {
    name: "baseline",
    summary: "Record, inspect, compare and freeze behavioural baselines",
    subcommands: [
      ["record", "Run a server through a scenario of tool calls and write what it did as a learning baseline"],
      ["show", "Summarise a baseline: destinations, DNS lookups, tools and their rates"],
      ["diff", "Show how the behaviour in two baselines differs"],
      ["freeze", "Freeze a learning baseline so drift is measured against it"],
      ["to-policy", "Print the egress allow rules the observed behaviour needs, as policy YAML"],
    ],
    load: async () => (await import("./baseline.js")).baselineCommand,
  },
  {
    name: "audit",
    summary: "Verify, query and export the tamper-evident audit log",
    subcommands: [
      ["verify", "Check the audit log for edited, deleted, inserted, reordered or truncated records"],
      ["query", "Find audit records by server, tool, identity, kind and time"],
      ["export", "Export the audit log as JSON lines or OCSF events"],
    ],
    load: async () => (await import("./audit.js")).auditCommand,
  },
  {
    name: "config",
    summary: "Check the Hangar configuration (hangar.yaml) and print its JSON Schema",
    subcommands: [
      ["check", "Check hangar.yaml and every policy it names, reporting every problem at once"],
      ["schema", "Print the JSON Schema of hangar.yaml or of scenario files (for editors and CI)"],
    ],
    load: async () => (await import("./config.js")).configCommand,
  },
  {
    name: "serve",
    summary: "Serve one governed MCP endpoint over every configured server",
    load: async () => (await import("./serve.js")).serveCommand,
  },
  {
    name: "status",
    summary: "Show the fleet: state, uptime, calls, last error and egress verdicts per server",
    load: async () => (await import("./status.js")).statusCommand,
  },
  {
    name: "approve",
    summary: "Request, list, grant and deny server approvals",
    subcommands: [
      ["request", "Ask for a server to be approved, pinning what it runs"],
      ["list", "List approvals: pending, granted (in force or superseded), denied, with the manifest scan's findings"],
      ["grant", "Grant a pending approval: the server may start"],
      ["deny", "Deny a pending approval, saying why"],
    ],
    load: async () => (await import("./approve.js")).approveCommand,
  },
  {
    name: "token",
    summary: "Create, list and revoke bearer tokens for the HTTP endpoint",
    subcommands: [
      ["create", "Create a bearer token for an identity (shown once)"],
      ["list", "List tokens (ids and identities, never the tokens)"],
      ["revoke", "Remove a token; a running gateway refuses it within a second"],
    ],
    load: async () => (await import("./token.js")).tokenCommand,
  },
  {
    name: "run",
    summary: "Run one MCP server in its sandbox and bridge MCP stdio (usable as a client's server command)",
    load: async () => (await import("./run.js")).runCommand,
  },
  {
    name: "ps",
    summary: "List Hangar sandboxes: their containers, sidecar address, uptime and owner",
    load: async () => (await import("./ps.js")).psCommand,
  },
  {
    name: "stop",
    summary: "Stop and remove the sandbox(es) of a server",
    load: async () => (await import("./stop.js")).stopCommand,
  },
  {
    name: "events",
    summary: "Show the sidecar's events of a running sandbox (--follow to keep watching)",
    load: async () => (await import("./events.js")).eventsCommand,
  },
  {
    name: "logs",
    summary: "Show a server's stderr, from a running sandbox or one that has ended (--follow to keep watching)",
    load: async () => (await import("./logs.js")).logsCommand,
  },
  {
    name: "prune",
    summary: "Remove Hangar sandboxes whose owner has ended (--all: every Hangar object; --images: images too)",
    load: async () => (await import("./prune.js")).pruneCommand,
  },
  {
    name: "image",
    summary: "Build the images a sandbox runs (base, sidecar, server)",
    subcommands: [["build", "Build (or reuse) the base, sidecar and server images of a policy"]],
    load: async () => (await import("./image.js")).imageCommand,
  },
  {
    name: "replay",
    summary: "Replay a scenario against a server and fail on drift from its frozen baseline (CI)",
    load: async () => (await import("./replay.js")).replayCommand,
  },
  {
    name: "quarantine",
    summary: "Run an untrusted server with nothing allowed out, and report what each tool tried to reach",
    load: async () => (await import("./quarantine.js")).quarantineCommand,
  },
  {
    name: "k8s",
    summary: "Render Kubernetes manifests for servers, their sidecars and the gateway",
    subcommands: [["render", "Write Kubernetes manifests for policies: hardened server, sidecar, NetworkPolicies, gateway"]],
    load: async () => (await import("./k8s.js")).k8sCommand,
  },
];

export const commands: readonly Command[] = verbs.map(lazyCommand);

/**
 * `hangar policy lint`: from the CommonJS bundle beside the built CLI with its V8 code cache
 * (cached-cjs.ts; about a third of lint's run was compiling), else (running from src/) the module.
 */
async function loadPolicyLint(): Promise<Command> {
  const bundled = loadCjsWithCodeCache<{ policyLintCommand: Command }>(fileURLToPath(new URL(POLICY_LINT_BUNDLE, import.meta.url)));
  return bundled?.exports.policyLintCommand ?? (await import("./policy-lint.js")).policyLintCommand;
}

/** Made by scripts/bundle-cli.ts beside dist/cli/main.js (where this module is bundled). */
export const POLICY_LINT_BUNDLE = "./policy-lint.cjs";
