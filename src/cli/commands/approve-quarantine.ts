import type { Policy } from "../../core/policy/policy-schema.js";
import type { UpstreamManifest } from "../../gateway/upstream-client.js";
import { QUARANTINE_CAPTURE_PORTS } from "../../quarantine/quarantine-target.js";
import { runScenario } from "../../replay/scenario-session.js";
import type { CliIo } from "../command.js";
import { captureSecrets, interruptible, openServices, reporter, type ScenarioVerbDeps } from "./scenario-verb.js";

/**
 * `hangar approve request --quarantine`: the server started once in quarantine (deny all,
 * capture: every name resolves to the sidecar, nothing leaves), its tools, prompts, resources
 * and resource templates listed (each list only when the server advertises it) and the
 * sandbox removed, so the reviewer sees (and the request pins) the manifest before anything
 * trusts it. No tool is called. Returns undefined after printing why when the run failed.
 */
export async function quarantineManifest(
  policy: Policy,
  policyFile: string,
  configFile: string,
  io: CliIo,
  deps: ScenarioVerbDeps = {},
): Promise<{ manifest: UpstreamManifest; attempts: number } | undefined> {
  const report = reporter(io, policy.name, false);
  const ports = [...new Set([...QUARANTINE_CAPTURE_PORTS, ...policy.egress.allow.flatMap((a) => a.ports)])].sort((a, b) => a - b);
  const services = await openServices(deps, configFile, io);
  report.say(`starting ${policy.name} in quarantine (deny all, capture on ports ${ports.join(", ")}) to read its manifest; no tool is called`);
  const result = await interruptible(io, report.say, (signal) =>
    runScenario(services, {
      policy,
      policyFile,
      capture: { ports },
      baselineFile: false,
      secretSource: captureSecrets(policy, io.env),
      plan: () => ({ ok: true, calls: [] }),
      listPromptsAndResources: true,
      onProgress: report.say,
      onBuildProgress: report.build,
      onServerLog: report.serverLog,
      settle: { quietMs: 250, maxMs: 2000 },
      signal,
    }),
  );
  if (!result.ok) {
    io.err(`hangar: ${policy.name} did not show its manifest in quarantine: ${result.message}\n`);
    return undefined;
  }
  const lists = result.run.lists;
  return {
    manifest: { tools: [...result.run.tools], prompts: [...(lists?.prompts ?? [])], resources: [...(lists?.resources ?? [])], resourceTemplates: [...(lists?.resourceTemplates ?? [])] },
    attempts: result.run.events.length,
  };
}
