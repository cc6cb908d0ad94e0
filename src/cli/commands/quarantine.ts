import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Policy } from "../../core/policy/policy-schema.js";
import { formatIssues, parsePolicyText } from "../../policy/index.js";
import { formatQuarantineReport, reportFormatFor } from "../../quarantine/format-quarantine-report.js";
import { buildQuarantineReport } from "../../quarantine/quarantine-report.js";
import { quarantineReportSarif } from "../../quarantine/quarantine-sarif.js";
import { parseQuarantineTarget, QUARANTINE_CAPTURE_PORTS, quarantinePolicyText } from "../../quarantine/quarantine-target.js";
import { sampleArguments } from "../../quarantine/sample-arguments.js";
import { runScenario, type CallPlan } from "../../replay/scenario-session.js";
import { EXIT_FINDING, EXIT_OK, type CliIo, type Command } from "../command.js";
import { defineCommand, usageError } from "../define-command.js";
import { packageVersion } from "./gateway-options.js";
import {
  captureSecrets,
  COMMON_OPTIONS,
  loadPolicyOrReport,
  loadScenarioOrReport,
  interruptible,
  openServices,
  parseTimeout,
  reporter,
  scenarioPlan,
  writeEventsFile,
  type ScenarioVerbDeps,
} from "./scenario-verb.js";

export function createQuarantineCommand(deps: ScenarioVerbDeps = {}): Command {
  return defineCommand({
    name: "quarantine",
    summary: "Run an untrusted server with nothing allowed out, and report what each tool tried to reach",
    usage: "hangar quarantine <policy | npm:pkg@version | image:ref> [--scenario <file>] [--report <out.md|out.json|out.html>] [--sarif <file>] [--json] [--config hangar.yaml] [-- <server args>]",
    description:
      "Deny-all plus capture: every DNS name resolves to the sidecar and every attempt is recorded with its\n" +
      "TLS SNI or HTTP Host, method and path, but nothing leaves the sandbox. It answers \"what would this\n" +
      "server try to reach?\" without risk. The report lists, per tool, each request it tried: method, URL\n" +
      "without query values, and the body's field names (never a value).\n" +
      "With a scenario the server's tools are called as it says; without one, every tool is called once with\n" +
      `arguments generated from its input schema (required fields, and any URL field, pointed at a probe host).\n` +
      "The target is a policy file (its allow rules are ignored: capture wins), or a server named directly:\n" +
      "npm:<package>@<exact version> (staged from the registry on the host), or image:<ref> (a local image).\n" +
      "Arguments after -- are passed to a server named directly.",
    options: {
      scenario: { type: "string", short: "s", valueName: "<file>", description: "The tool calls to make (YAML); default: every tool once, with generated arguments." },
      report: { type: "string", short: "r", valueName: "<file>", description: "Write the report here; .md, .html or .json picks the format. Default: Markdown on stdout." },
      json: { type: "boolean", description: "Print the report on stdout as JSON instead of Markdown." },
      sarif: { type: "string", valueName: "<file>", description: "Also write SARIF 2.1.0, for code-scanning tabs: one result per destination tried (at the policy's allow entry)." },
      ...COMMON_OPTIONS,
    },
    positionals: { min: 1 },
    details:
      "Exit status: 0 when the report is written (whatever the server tried), 1 when the policy, target or\n" +
      "scenario is invalid, 2 on a usage or runtime error. Progress goes to stderr.",
    async run({ values, positionals }, io) {
      const [targetText, ...serverArgs] = positionals as [string, ...string[]];
      const callTimeoutMs = parseTimeout(values.timeout);
      if (values.json === true && values.report !== undefined) throw usageError("--json prints the report on stdout; for a JSON file use --report <out.json>");
      const format = values.report === undefined ? (values.json === true ? "json" : "md") : reportFormatFor(values.report);
      if (format === undefined) throw usageError(`--report ${JSON.stringify(values.report)}: the file must end in .md, .html or .json`);
      const parsed = parseQuarantineTarget(targetText);
      if (!parsed.ok) throw usageError(parsed.message);
      const { target } = parsed;
      if (target.kind === "policy" && serverArgs.length > 0) throw usageError("arguments after -- are only for npm: and image: targets; a policy says its own server.args");

      const scratch = target.kind === "policy" ? undefined : await mkdtemp(join(tmpdir(), "hangar-quarantine-"));
      try {
        const resolved = target.kind === "policy" ? await policyTarget(target.file, io) : await syntheticTarget(target, serverArgs, scratch!, io);
        if (resolved === undefined) return EXIT_FINDING;
        const { policy, policyFile } = resolved;
        const scenario = values.scenario !== undefined ? await loadScenarioOrReport(values.scenario, io) : undefined;
        if (values.scenario !== undefined && scenario === undefined) return EXIT_FINDING;

        const report = reporter(io, policy.name, values.quiet === true);
        const services = await openServices(deps, values.config, io);
        const ports = [...new Set([...QUARANTINE_CAPTURE_PORTS, ...policyPorts(policy)])].sort((a, b) => a - b);
        report.say(`quarantining ${targetText} as ${policy.name}: deny all, capture on ports ${ports.join(", ")}`);
        const result = await interruptible(io, report.say, (signal) =>
          runScenario(services, {
            policy,
            policyFile,
            capture: { ports },
            baselineFile: false,
            secretSource: captureSecrets(policy, io.env),
            plan: scenario !== undefined ? scenarioPlan(scenario) : generatedPlan,
            onProgress: report.say,
            onBuildProgress: report.build,
            onServerLog: report.serverLog,
            callTimeoutMs,
            signal,
          }),
        );
        if (!result.ok) {
          io.err(result.message);
          return EXIT_FINDING;
        }
        if (values.events !== undefined) await writeEventsFile(values.events, result.run.events);
        const findings = buildQuarantineReport(result.run, { target: targetText, capturePorts: ports, ...(values.scenario !== undefined ? { scenario: values.scenario } : {}) });
        if (values.sarif !== undefined) {
          const policySource = target.kind === "policy" ? { file: policyFile, text: await readFile(policyFile, "utf8"), policy } : undefined;
          await writeFile(values.sarif, quarantineReportSarif(findings, { ...(policySource !== undefined ? { policy: policySource } : {}), toolVersion: packageVersion() }));
        }
        const text = formatQuarantineReport(findings, format);
        if (values.report !== undefined) {
          await writeFile(values.report, text);
          const s = findings.summary;
          report.say(`report written to ${values.report}: ${s.toolsCalled} tools called, ${s.toolsWithEgress.length} tried to reach the network (${s.destinations.join(", ") || "nothing"})`);
        } else {
          io.out(text);
        }
        return EXIT_OK;
      } finally {
        if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
      }
    },
  });
}

/** Every listed tool, once, with arguments from its input schema. */
function generatedPlan(tools: readonly { name: string; inputSchema: unknown }[]): CallPlan {
  return { ok: true, calls: tools.map((t, index) => ({ tool: t.name, arguments: sampleArguments(t.inputSchema, { tool: t.name }), index, repetition: 0 })) };
}

/** Ports the policy declares: capture listens there too, so a server's own port is seen. */
function policyPorts(policy: Policy): number[] {
  const capture = policy.egress.capture;
  return [...policy.egress.allow.flatMap((a) => a.ports), ...(typeof capture === "object" ? capture.ports : [])];
}

async function policyTarget(file: string, io: CliIo): Promise<{ policy: Policy; policyFile: string } | undefined> {
  const policy = await loadPolicyOrReport(file, io);
  return policy === undefined ? undefined : { policy, policyFile: file };
}

/** Writes the deny-all capture policy for an npm: or image: target into `dir`, validated like any policy. */
async function syntheticTarget(
  target: Parameters<typeof quarantinePolicyText>[0],
  args: readonly string[],
  dir: string,
  io: CliIo,
): Promise<{ policy: Policy; policyFile: string } | undefined> {
  const text = quarantinePolicyText(target, args);
  const parsed = parsePolicyText(text, target.text);
  if (!parsed.ok) {
    io.err(formatIssues(parsed.issues.map((i) => ({ ...i, line: 0, col: 0 }))));
    return undefined;
  }
  const policyFile = join(dir, "policy.yaml");
  await writeFile(policyFile, text);
  return { policy: parsed.policy, policyFile };
}

export const quarantineCommand = createQuarantineCommand();
