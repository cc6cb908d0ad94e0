import { scenarioJsonSchema } from "../core/baseline/scenario-schema.js";
import { hangarConfigJsonSchema } from "../gateway/config/hangar-config-schema.js";

/**
 * JSON Schemas for editors (yaml-language-server), generated from the zod schemas that
 * validate the files, with a description on every field for hover text. The descriptions
 * live here, keyed by path ("*" for a map's values, "[]" for a list's items), so the
 * validating schemas stay as they are; a test fails when a field has none.
 */
type Descriptions = Readonly<Record<string, string>>;

const HANGAR_DESCRIPTIONS: Descriptions = {
  "": "Hangar configuration (hangar.yaml): the servers to govern, the audit log, RBAC, the gateway's and the runtime's settings. Paths are relative to this file.",
  version: "The configuration format version. Always 1 for now.",
  runtime: "How this machine runs sandboxes (hangar run, serve, replay, quarantine).",
  "runtime.egressNetwork": "The Docker network sidecars use to reach declared destinations; created when missing. Default hangar-egress.",
  "runtime.trustedUpstreamRanges": "IPv4 CIDRs the sidecar may dial although they are private (internal APIs, tests). Default none.",
  "runtime.trustedUpstreamRanges.[]": "An IPv4 CIDR, such as 10.1.0.0/16.",
  "runtime.sandboxSubnets": "The IPv4 pool carved into one /28 per sandbox network. At least a /28. Default 10.213.0.0/16.",
  "runtime.baseImage": "The tag of the base image every server image is built on. Hangar never pulls it.",
  "runtime.sidecar": "The sidecar container's image and limits.",
  "runtime.sidecar.image": "The sidecar image's tag.",
  "runtime.sidecar.memory": 'The sidecar\'s memory limit, such as "128m" (at least "6m").',
  "runtime.sidecar.cpus": "The sidecar's CPU limit, in CPUs (0.5 is half of one).",
  "runtime.sidecar.pids": "The sidecar's process limit (16-32768).",
  "runtime.sidecar.readyTimeoutMs": "How long to wait for the sidecar to start, in milliseconds.",
  "runtime.sidecar.maxRestarts": "Restarts after unexpected exits before the sandbox is given up (it fails closed either way).",
  "runtime.upstreamCaFile": "A PEM file of extra roots the sidecar trusts when it re-originates TLS for an inspected destination (relative to hangar.yaml). The system roots are always trusted.",
  "runtime.inspectBodyLimit": 'How much of a request body the sidecar reads to decide its shape (field names), on requests it sees: a size from "1k" to "64m", such as "256k", or a number of bytes. A longer body is not inspected (body-not-inspected, refused in ENFORCING where the baseline parsed bodies). Default "1m".',
  "runtime.watchedSecrets": "Names of environment variables (of the control plane) whose values every sandbox's sidecar watches for, raw and encoded, in requests and names; a match is secret-leak. Values under 8 characters are not watched.",
  "runtime.watchedSecrets.[]": "An environment variable name.",
  "runtime.isolation": 'How the server container is isolated from the host kernel: "runc" (namespaces, the default) or "gvisor" (runsc, a user-space kernel; recommended for untrusted servers). A policy\'s server.isolation overrides it. The sidecar always runs on runc.',
  "runtime.transport": 'How the gateway speaks MCP to a sandboxed server: "stdio" (its attached stdio, the default) or "http" (the server runs under Hangar\'s stdio-to-HTTP bridge, as in Kubernetes, reached through a Unix socket in the run\'s folder; needs node in the server image; not with gVisor). Applies to hangar serve; hangar run, replay and quarantine speak stdio.',
  "runtime.catchAll": "Route every TCP connection and UDP datagram the server sends, to any address and port, through the sidecar (a veth and nft rules set up by short-lived hangar/netns containers), so raw-IP attempts are decided and leave events. Default false.",
  "runtime.startCpuBoostMs": "Start-up CPU boost in ms: the sidecar runs without its CPU quota until it serves, the server for this long after it is let go (memory and pids limits hold throughout). 0: every quota from creation. Default 1000.",
  "runtime.upstreamResolvers": 'The resolvers the sidecar asks for declared names, as "address" or "address:port" (IPv4). Default: the engine\'s embedded resolver.',
  "runtime.upstreamResolvers.[]": 'A resolver: "address" or "address:port", IPv4.',
  servers: "The policy files of the servers to serve, one per server, relative to hangar.yaml. Each server's name comes from its policy.",
  "servers.[]": "A policy file, relative to hangar.yaml.",
  identity: "The identity of the stdio endpoint's caller (letters, digits and . _ @ + -). Default local-user.",
  audit: "The tamper-evident audit log.",
  "audit.path": "The audit log's SQLite file, relative to hangar.yaml; its signing keys and anchor sit beside it (hangar init --config puts them there). Default .hangar/audit.db.",
  rbac: "Who may call which tools. Absent: every identity may call everything (the gateway warns).",
  "rbac.roles": "Roles by name, each allowing and denying tools by glob.",
  "rbac.roles.*": "A role: allow and deny globs over <server>__<tool>.",
  "rbac.roles.*.allow": "Globs over <server>__<tool> this role may call, such as github__get_*.",
  "rbac.roles.*.allow.[]": "A glob over <server>__<tool>.",
  "rbac.roles.*.deny": "Globs over <server>__<tool> this role may not call; deny wins over allow.",
  "rbac.roles.*.deny.[]": "A glob over <server>__<tool>.",
  "rbac.bindings": 'Identities (or "*" for everyone) and the roles they hold.',
  "rbac.bindings.*": "The role names this identity holds.",
  "rbac.bindings.*.[]": "A role name defined under rbac.roles.",
  gateway: "The gateway's (hangar serve) timeouts, restarts and files.",
  "gateway.startTimeoutMs": "How long a server may take to answer initialize, in milliseconds.",
  "gateway.callTimeoutMs": "How long a tool call may take, in milliseconds.",
  "gateway.healthIntervalMs": "How often to ping a running server, in milliseconds; 0 disables health checks.",
  "gateway.pingTimeoutMs": "How long a health ping may take before the server counts as unhealthy, in milliseconds.",
  "gateway.idleTimeoutMs": "Stop a server idle this long, in milliseconds; 0 keeps it running.",
  "gateway.breaker": "The circuit breaker: after repeated failures, calls to a server fail fast for a while.",
  "gateway.breaker.failureThreshold": "Consecutive failures that open the breaker.",
  "gateway.breaker.coolDownMs": "How long the breaker stays open before a trial call, in milliseconds.",
  "gateway.restart": "Restarts of a server that exits or fails to start, with exponential backoff.",
  "gateway.restart.initialDelayMs": "The first restart's delay, in milliseconds.",
  "gateway.restart.maxDelayMs": "The longest delay between restarts, in milliseconds.",
  "gateway.restart.maxAttempts": "Restarts before the server is declared dead.",
  "gateway.manifests": "Where servers' tool manifests are cached, relative to hangar.yaml.",
  "gateway.status": "The status file hangar status reads, relative to hangar.yaml.",
  "gateway.tokens": "The bearer tokens file of the HTTP endpoint (hangar token), relative to hangar.yaml.",
  "gateway.stateDir": "The directory of the gateway's run state, relative to hangar.yaml.",
  "gateway.metrics": "The /metrics endpoint of the HTTP gateway.",
  "gateway.metrics.public": "Serve /metrics without a bearer token, for a scraper on a trusted network.",
  approvals: "Rules for approving servers (hangar approve).",
  "approvals.requireDistinctGranter": "Refuse a grant by the identity that requested the approval: a second person must grant it. Default false.",
  flows: "Compositions of tool calls refused within one client session of the gateway, across all servers, by the labels policies give tools (tools.labels).",
  "flows.[]": "One flow rule.",
  "flows.[].name": 'The flow\'s name, in refusals and the audit (lowercase letters, digits and "-").',
  "flows.[].description": "What the flow guards against, in a sentence.",
  "flows.[].mode": "enforcing refuses the call, observing records would-block. Default: the mode of the called tool's server.",
  "flows.[].deny": "The calls refused: one carrying any label of call, once the session's earlier calls carried every label of after.",
  "flows.[].deny.after": "Labels the session's earlier calls must all have carried (in any order, over any servers).",
  "flows.[].deny.after.[]": "A tool label: reads-private, reads-untrusted, writes-public, sends-external or executes.",
  "flows.[].deny.call": "Labels of the call being decided; any one of them completes the flow.",
  "flows.[].deny.call.[]": "A tool label: reads-private, reads-untrusted, writes-public, sends-external or executes.",
};

const SCENARIO_DESCRIPTIONS: Descriptions = {
  "": "A scenario: the tool calls hangar baseline record, replay and quarantine make, in order.",
  description: "What the scenario exercises, in a sentence (at most 500 characters).",
  calls: "The tool calls, in order. At least one.",
  "calls.[]": "One tool call.",
  "calls.[].tool": "The tool's name, as the server names it (not <server>__<tool>).",
  "calls.[].arguments": "The call's arguments, by name. Default none.",
  "calls.[].arguments.*": "An argument's value, of the type the tool's input schema asks for.",
  "calls.[].repeat": "How many times to make this call (1-1000). Default 1.",
};

type JsonSchema = Record<string, unknown>;

/** Sets each field's description from `descriptions`; returns the paths of fields that have none. */
function describe(schema: JsonSchema, path: string, descriptions: Descriptions, missing: string[]): void {
  const text = descriptions[path];
  if (text !== undefined) schema["description"] = text;
  else if (typeof schema["description"] !== "string") missing.push(path === "" ? "(root)" : path);
  const child = (suffix: string): string => (path === "" ? suffix : `${path}.${suffix}`);
  const properties = schema["properties"] as Record<string, JsonSchema> | undefined;
  for (const [key, value] of Object.entries(properties ?? {})) describe(value, child(key), descriptions, missing);
  const items = schema["items"];
  if (items !== null && typeof items === "object" && !Array.isArray(items)) describe(items as JsonSchema, child("[]"), descriptions, missing);
  const values = schema["additionalProperties"];
  if (values !== null && typeof values === "object") describe(values as JsonSchema, child("*"), descriptions, missing);
  for (const key of ["anyOf", "oneOf", "allOf"]) {
    for (const branch of (schema[key] as JsonSchema[] | undefined) ?? []) {
      // A branch describes the same field: it needs no text of its own, only its children do.
      const branchMissing: string[] = [];
      describe(branch, path, descriptions, branchMissing);
      missing.push(...branchMissing.filter((p) => p !== (path === "" ? "(root)" : path)));
    }
  }
}

export interface EditorSchema {
  readonly name: "hangar" | "scenario";
  /** Where the repository keeps it, relative to its root. */
  readonly file: string;
  readonly schema: JsonSchema;
  /** Fields without a description (a test keeps this empty). */
  readonly undescribed: readonly string[];
}

function build(name: EditorSchema["name"], file: string, title: string, source: JsonSchema, descriptions: Descriptions): EditorSchema {
  const schema: JsonSchema = { ...source, title };
  const undescribed: string[] = [];
  describe(schema, "", descriptions, undescribed);
  return { name, file, schema, undescribed };
}

export function editorSchemas(): readonly EditorSchema[] {
  return [
    build("hangar", "schemas/hangar.schema.json", "Hangar configuration (hangar.yaml)", hangarConfigJsonSchema(), HANGAR_DESCRIPTIONS),
    build("scenario", "schemas/scenario.schema.json", "Hangar scenario", scenarioJsonSchema(), SCENARIO_DESCRIPTIONS),
  ];
}

export function editorSchemaText(schema: EditorSchema): string {
  return `${JSON.stringify(schema.schema, null, 2)}\n`;
}
