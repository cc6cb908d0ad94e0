import { dirname, isAbsolute, join, resolve } from "node:path";
import { HangarError } from "../../core/errors.js";
import { serverNameProblem } from "../../core/gateway/namespacing.js";
import type { FlowRule } from "../../core/gateway/flow-tracker.js";
import type { RbacSpec } from "../../core/gateway/rbac.js";
import type { Policy } from "../../core/policy/policy-schema.js";
import { formatIssues, knownKeysAt, loadPolicyFile, parseYamlMapping, readTextFile, schemaIssues, sortIssues, type IssuePath, type PolicyIssue, type YamlLocator } from "../../policy/index.js";
import type { RuntimeConfig } from "../../runtime/runtime-config.js";
import type { SupervisorSettings } from "../supervisor-settings.js";
import { HangarConfigSchema, hangarConfigJsonSchema, IDENTITY_PATTERN, RbacSchema, type HangarConfigData } from "./hangar-config-schema.js";

/**
 * Loads hangar.yaml and every policy it lists. All problems come back at once, each as
 * `file:line:col: path: message` (policy problems positioned in the policy file, the rest
 * in hangar.yaml), reusing the policy loader's YAML front end and issue format.
 */
export interface ConfiguredServer {
  readonly name: string;
  readonly policy: Policy;
  /** Absolute path of the policy file. */
  readonly policyFile: string;
}

export interface HangarConfig {
  readonly file: string;
  readonly dir: string;
  readonly servers: readonly ConfiguredServer[];
  readonly identity: string;
  readonly auditPath: string;
  readonly rbac?: RbacSpec;
  readonly settings: SupervisorSettings;
  readonly paths: { readonly manifests: string; readonly status: string; readonly tokens: string; readonly stateDir: string };
  /** `gateway.metrics`: whether /metrics needs a bearer token. */
  readonly metrics: { readonly public: boolean };
  /** The `runtime:` section in the runtime's own type, for the Docker launcher. */
  readonly runtime: RuntimeConfig;
  /** `flows:`, the compositions refused within one client session. */
  readonly flows: readonly FlowRule[];
}

export type HangarConfigLoad = { readonly ok: true; readonly config: HangarConfig; readonly warnings: readonly PolicyIssue[] } | { readonly ok: false; readonly issues: readonly PolicyIssue[] };

export const MAX_CONFIG_BYTES = 256 * 1024;

type JsonSchemaArg = Parameters<typeof knownKeysAt>[1];

/** Validates hangar.yaml text only (no policy files read). Pure: `file` labels issues. */
export function parseHangarConfigText(text: string, file: string): { ok: true; data: HangarConfigData; locator: YamlLocator; warnings: readonly PolicyIssue[] } | { ok: false; issues: readonly PolicyIssue[] } {
  const checked = checkHangarConfigText(text, file);
  if (!checked.ok) return checked;
  const { data, locator, issues } = checked;
  if (data === undefined || issues.some((i) => i.severity === "error")) return { ok: false, issues };
  return { ok: true, data, locator, warnings: issues };
}

/**
 * Every problem of hangar.yaml's text in one pass: schema issues and the cross-checks (roles,
 * the stdio identity) together, the cross-checks run on whatever part is well-formed. `data`
 * is present only when the schema accepts the whole file; `servers` is what the file lists as
 * policy files either way, so their problems can be reported in the same pass.
 */
function checkHangarConfigText(text: string, file: string): { ok: false; issues: readonly PolicyIssue[] } | { ok: true; data?: HangarConfigData; locator: YamlLocator; issues: PolicyIssue[]; servers: readonly { index: number; entry: string }[] } {
  const yaml = parseYamlMapping(text, file, { noun: "Hangar configuration", emptyHint: "it needs at least servers: [policy files]" });
  if (!yaml.ok) return yaml;
  const issues: PolicyIssue[] = [...yaml.warnings];
  const at = (path: IssuePath, message: string, code: string, severity: "error" | "warning" = "error"): void => {
    const { line, col } = yaml.locator.at(path);
    issues.push({ file, line, col, path, message, severity, code });
  };
  const parsed = HangarConfigSchema.safeParse(yaml.data);
  if (!parsed.success) {
    const schema = hangarConfigJsonSchema() as JsonSchemaArg;
    issues.push(...schemaIssues(parsed.error.issues, yaml.locator, file, (p) => knownKeysAt(p, schema)));
  }
  const raw = yaml.data as Record<string, unknown>;
  const rbac = parsed.success ? parsed.data.rbac : RbacSchema.safeParse(raw["rbac"]).data;
  // An invalid identity is already an error: no second issue about its roles.
  const rawIdentity = raw["identity"] ?? "local-user";
  const identity = parsed.success ? parsed.data.identity : typeof rawIdentity === "string" && IDENTITY_PATTERN.test(rawIdentity) ? rawIdentity : undefined;
  if (rbac !== undefined) {
    for (const [who, roles] of Object.entries(rbac.bindings)) {
      roles.forEach((role, i) => {
        if (!Object.hasOwn(rbac.roles, role)) at(["rbac", "bindings", who, i], `role ${JSON.stringify(role)} is not defined under rbac.roles`, "unknown_role");
      });
    }
    if (identity !== undefined && (rbac.bindings[identity] ?? []).length === 0 && (rbac.bindings["*"] ?? []).length === 0) {
      at(["identity"], `identity ${JSON.stringify(identity)} has no role under rbac.bindings, so the stdio endpoint may call nothing`, "identity_without_role", "warning");
    }
  }
  const flowNames = new Map<string, number>();
  (Array.isArray(raw["flows"]) ? (raw["flows"] as unknown[]) : []).forEach((f, i) => {
    const name = typeof f === "object" && f !== null ? (f as Record<string, unknown>)["name"] : undefined;
    if (typeof name !== "string") return;
    const first = flowNames.get(name);
    if (first !== undefined) at(["flows", i, "name"], `flow name ${JSON.stringify(name)} is already used by flows[${first}]`, "duplicate_flow");
    else flowNames.set(name, i);
  });
  const listed = Array.isArray(raw["servers"]) ? (raw["servers"] as unknown[]) : [];
  const servers = listed.flatMap((entry, index) => (typeof entry === "string" && entry !== "" ? [{ index, entry }] : []));
  return { ok: true, ...(parsed.success ? { data: parsed.data } : {}), locator: yaml.locator, issues: sortIssues(issues), servers };
}

/** Issues of hangar.yaml first, then each policy's in the order hangar.yaml lists them. */
function inFileOrder(configFile: string, issues: readonly PolicyIssue[]): PolicyIssue[] {
  const files = [configFile, ...new Set(issues.map((i) => i.file).filter((f) => f !== configFile))];
  return files.flatMap((f) => sortIssues(issues.filter((i) => i.file === f)));
}

/**
 * Loads hangar.yaml and every policy it lists, and reports every problem of all of them in one
 * pass (hangar config check, and serve before it starts): a schema error in hangar.yaml does not
 * hide a broken policy, nor the reverse.
 */
export async function loadHangarConfig(path: string): Promise<HangarConfigLoad> {
  const read = await readTextFile(path, { maxBytes: MAX_CONFIG_BYTES, noun: "Hangar configuration", unexpectedCode: "HANGAR_CONFIG_INVALID" });
  if (!read.ok) return read;
  const checked = checkHangarConfigText(read.text, path);
  if (!checked.ok) return checked;
  const { data, locator } = checked;
  const dir = dirname(resolve(path));
  const issues: PolicyIssue[] = [];
  const warnings: PolicyIssue[] = [];
  for (const issue of checked.issues) (issue.severity === "error" ? issues : warnings).push(issue);
  const at = (p: IssuePath, message: string, code: string): void => {
    const { line, col } = locator.at(p);
    issues.push({ file: path, line, col, path: p, message, severity: "error", code });
  };

  const servers: ConfiguredServer[] = [];
  const seen = new Map<string, { index: number; entry: string }>();
  const results = await Promise.all(
    checked.servers.map(async ({ index, entry }) => {
      const display = isAbsolute(entry) ? entry : join(dirname(path), entry);
      return { index, entry, abs: resolve(dir, entry), result: await loadPolicyFile(resolve(dir, entry), { displayName: display }) };
    }),
  );
  for (const { index, entry, abs, result } of results) {
    if (!result.ok) {
      for (const issue of result.issues) {
        // A file that cannot be read at all is a problem of this list entry.
        if (issue.line === 0) at(["servers", index], `${entry}: ${issue.message}`, issue.code);
        else (issue.severity === "error" ? issues : warnings).push(issue);
      }
      continue;
    }
    warnings.push(...result.warnings);
    const name = result.policy.name;
    const problem = serverNameProblem(name);
    if (problem !== undefined) at(["servers", index], `${entry}: ${problem}`, "invalid_server_name");
    const first = seen.get(name);
    if (first !== undefined) {
      at(["servers", index], `${entry}: server name ${JSON.stringify(name)} is already used by servers[${first.index}] (${first.entry}); names must be unique, since they namespace tools as ${name}__<tool>`, "duplicate_server");
      continue;
    }
    seen.set(name, { index, entry });
    servers.push({ name, policy: result.policy, policyFile: abs });
  }
  if (issues.length > 0 || data === undefined) return { ok: false, issues: inFileOrder(path, [...issues, ...warnings]) };
  warnings.push(...idleFlows(data.flows, servers, path, locator));

  const g = data.gateway;
  const rel = (p: string): string => resolve(dir, p);
  const config: HangarConfig = {
    file: resolve(path),
    dir,
    servers,
    identity: data.identity,
    auditPath: rel(data.audit.path),
    ...(data.rbac !== undefined ? { rbac: data.rbac } : {}),
    settings: {
      startTimeoutMs: g.startTimeoutMs,
      callTimeoutMs: g.callTimeoutMs,
      healthIntervalMs: g.healthIntervalMs,
      pingTimeoutMs: g.pingTimeoutMs,
      idleTimeoutMs: g.idleTimeoutMs,
      breaker: g.breaker,
      restart: g.restart,
    },
    paths: { manifests: rel(g.manifests), status: rel(g.status), tokens: rel(g.tokens), stateDir: rel(g.stateDir) },
    metrics: { public: g.metrics.public },
    flows: data.flows,
    runtime: {
      ...(data.version !== undefined ? { version: data.version } : {}),
      // Like every path in hangar.yaml, relative to the file (as loadRuntimeConfig does).
      runtime: { ...data.runtime, ...(data.runtime.upstreamCaFile !== undefined ? { upstreamCaFile: rel(data.runtime.upstreamCaFile) } : {}) },
    },
  };
  return { ok: true, config, warnings: inFileOrder(path, warnings) };
}

/** A flow whose labels no configured tool carries can never fire: most likely a label missing from a policy. */
function idleFlows(flows: readonly FlowRule[], servers: readonly ConfiguredServer[], file: string, locator: YamlLocator): PolicyIssue[] {
  const carried = new Set(servers.flatMap((s) => Object.values(s.policy.tools.labels ?? {}).flat()));
  return flows.flatMap((f, i) => {
    const missing = [...f.deny.after.filter((l) => !carried.has(l)), ...(f.deny.call.some((l) => carried.has(l)) ? [] : f.deny.call)];
    if (missing.length === 0) return [];
    const { line, col } = locator.at(["flows", i]);
    const message = `flow ${JSON.stringify(f.name)} can never fire: no configured server's tools.labels gives any tool ${[...new Set(missing)].join(", ")}`;
    return [{ file, line, col, path: ["flows", i], message, severity: "warning" as const, code: "flow_never_fires" }];
  });
}

/** loadHangarConfig for callers that want an exception: HANGAR_CONFIG_INVALID listing every issue. */
export async function loadHangarConfigOrThrow(path: string): Promise<{ config: HangarConfig; warnings: readonly PolicyIssue[] }> {
  const loaded = await loadHangarConfig(path);
  if (loaded.ok) return loaded;
  throw new HangarError("HANGAR_CONFIG_INVALID", `invalid configuration:\n${formatIssues(loaded.issues).trimEnd()}`, { data: { issues: loaded.issues } });
}

export interface HangarConfigPaths {
  readonly file: string;
  readonly identity: string;
  /** Absent: no RBAC section, every identity may call everything. */
  readonly rbac?: RbacSpec;
  readonly auditPath: string;
  readonly manifests: string;
  readonly status: string;
  readonly tokens: string;
  /** `approvals.requireDistinctGranter`: a requester may not grant their own request. */
  readonly requireDistinctGranter: boolean;
  /** gateway.stateDir: where serve's sandboxes keep their policy copies and their servers' logs. */
  readonly stateDir: string;
}

/**
 * Only the paths, identity and RBAC of hangar.yaml, without reading any policy: for commands
 * (status, approve, token) that must work while a policy file is broken.
 */
export async function loadHangarConfigPaths(path: string): Promise<HangarConfigPaths> {
  const read = await readTextFile(path, { maxBytes: MAX_CONFIG_BYTES, noun: "Hangar configuration", unexpectedCode: "HANGAR_CONFIG_INVALID" });
  const parsed = read.ok ? parseHangarConfigText(read.text, path) : read;
  if (!parsed.ok) throw new HangarError("HANGAR_CONFIG_INVALID", `invalid configuration:\n${formatIssues(parsed.issues).trimEnd()}`, { data: { issues: parsed.issues } });
  const dir = dirname(resolve(path));
  const g = parsed.data.gateway;
  return {
    file: resolve(path),
    identity: parsed.data.identity,
    ...(parsed.data.rbac !== undefined ? { rbac: parsed.data.rbac } : {}),
    auditPath: resolve(dir, parsed.data.audit.path),
    manifests: resolve(dir, g.manifests),
    status: resolve(dir, g.status),
    tokens: resolve(dir, g.tokens),
    requireDistinctGranter: parsed.data.approvals.requireDistinctGranter,
    stateDir: resolve(dir, g.stateDir),
  };
}
