import { readFile, writeFile } from "node:fs/promises";
import { DEFAULT_FAIL_ON, DRIFT_SEVERITIES, driftReportJson, driftReportJunit, driftReportSarif, formatDriftReport, gateFailures, isDriftSeverity, loadBaselineFile } from "../../baseline/index.js";
import { asFrozen } from "../../core/baseline/baseline-schema.js";
import { DRIFT_SEVERITY, type DriftCode, type DriftSeverity } from "../../core/baseline/drift.js";
import { buildDriftReport } from "../../core/baseline/drift-report.js";
import { formatIssues } from "../../policy/index.js";
import { observedBaseline } from "../../replay/observed-baseline.js";
import { runScenario } from "../../replay/scenario-session.js";
import { EXIT_FINDING, EXIT_OK, EXIT_USAGE, type Command } from "../command.js";
import { defineCommand, usageError } from "../define-command.js";
import { packageVersion } from "./gateway-options.js";
import {
  captureSecrets,
  COMMON_OPTIONS,
  loadPolicyOrReport,
  loadScenarioOrReport,
  interruptible,
  openServices,
  parseEgress,
  parseTimeout,
  reporter,
  scenarioPlan,
  writeEventsFile,
  type ScenarioVerbDeps,
} from "./scenario-verb.js";

/** Replay's own exit codes: CI tells "it drifted" from "the replay could not run". */
export const REPLAY_EXIT = { match: EXIT_OK, drift: EXIT_FINDING, error: EXIT_USAGE } as const;

export function createReplayCommand(deps: ScenarioVerbDeps = {}): Command {
  return defineCommand({
    name: "replay",
    summary: "Replay a scenario against a server and fail on drift from its frozen baseline (CI)",
    usage: "hangar replay <policy> --scenario <file> --baseline <file> [--egress capture|live] [--fail-on low|medium|high] [--junit <file>] [--sarif <file>] [--json] [--config hangar.yaml]",
    description:
      "Starts the server in its sandbox, makes the scenario's tool calls one at a time, records what it did\n" +
      "(each connection and DNS lookup attributed to the tool call in flight), and compares that with the\n" +
      "frozen baseline: a new destination (even under a declared wildcard), port, DNS name or tool, egress\n" +
      "from a tool that had none, a connection or call rate above the baseline's tolerance, DNS tunnelling.\n" +
      "The default egress is capture: every name resolves to the sidecar and every attempt is recorded, but\n" +
      "nothing leaves, so CI needs no network and no credentials (missing secrets get placeholders).\n" +
      "With --egress live the policy applies as written, with the baseline enforced by the sidecar.",
    options: {
      scenario: { type: "string", short: "s", valueName: "<file>", description: "The scenario (YAML): the tool calls to make, in order." },
      baseline: { type: "string", short: "b", valueName: "<file>", description: "The frozen baseline to compare with (hangar baseline record, then freeze)." },
      egress: { type: "string", valueName: "<mode>", description: "capture (default: nothing leaves) or live (the policy as written, baseline enforced)." },
      "fail-on": { type: "string", valueName: "<severity>", description: "low, medium or high: the lowest drift severity that fails (exit 1); drifts below it are reported, exit 0. Default low: any drift fails." },
      junit: { type: "string", valueName: "<file>", description: "Also write the result as JUnit XML, for CI test tabs." },
      sarif: { type: "string", valueName: "<file>", description: "Also write the result as SARIF 2.1.0, for code-scanning tabs: one result per drift, at its baseline and policy lines." },
      json: { type: "boolean", description: "Print the drift report as JSON instead of text." },
      ...COMMON_OPTIONS,
    },
    positionals: { min: 1, max: 1 },
    details:
      "Exit status: 0 when the behaviour matches the baseline, 1 on drift at or above --fail-on (by default any\n" +
      "drift; each drift named, with the tool that caused it), 2 on an error (invalid policy, scenario or\n" +
      "baseline, a tool the server lacks, Docker). Drifts below --fail-on are reported (in the text, as passing\n" +
      "--junit cases, in --sarif at their level) and exit 0. Severities:\n" +
      severityList(),
    async run({ values, positionals }, io) {
      const policyFile = positionals[0]!;
      const callTimeoutMs = parseTimeout(values.timeout);
      if (values.scenario === undefined) throw usageError("--scenario <file> is required");
      if (values.baseline === undefined) throw usageError("--baseline <file> is required");
      const egress = parseEgress(values.egress);
      const failOn = parseFailOn(values["fail-on"]);
      const policy = await loadPolicyOrReport(policyFile, io);
      const scenario = await loadScenarioOrReport(values.scenario, io);
      const loaded = await loadBaselineFile(values.baseline);
      if (!loaded.ok) io.err(formatIssues(loaded.issues));
      if (policy === undefined || scenario === undefined || !loaded.ok) return REPLAY_EXIT.error;
      const frozen = asFrozen(loaded.baseline);
      if (frozen === undefined) {
        io.err(`hangar: ${values.baseline} is a learning baseline; replay compares with a frozen one (hangar baseline freeze ${values.baseline})\n`);
        return REPLAY_EXIT.error;
      }
      if (frozen.server !== policy.name) {
        io.err(`hangar: ${values.baseline} is the baseline of server ${frozen.server}, but ${policyFile} runs ${policy.name}\n`);
        return REPLAY_EXIT.error;
      }

      const report = reporter(io, policy.name, values.quiet === true);
      const services = await openServices(deps, values.config, io);
      report.say(`replaying ${values.scenario} against ${policy.name} (egress ${egress}; baseline ${values.baseline})`);
      const result = await interruptible(io, report.say, (signal) =>
        runScenario(services, {
          policy,
          policyFile,
          ...(egress === "capture" ? { capture: true, secretSource: captureSecrets(policy, io.env) } : {}),
          baselineFile: values.baseline,
          plan: scenarioPlan(scenario),
          onProgress: report.say,
          onBuildProgress: report.build,
          onServerLog: report.serverLog,
          callTimeoutMs,
          signal,
        }),
      );
      if (!result.ok) {
        io.err(result.message);
        return REPLAY_EXIT.error;
      }
      const { run } = result;
      if (values.events !== undefined) await writeEventsFile(values.events, run.events);
      const { baseline: observed } = observedBaseline(run, { rateTolerance: frozen.rateTolerance });
      const drift = buildDriftReport(frozen, observed, { baselineFile: values.baseline, run: `replay of ${values.scenario} (egress ${egress})` });
      io.out(values.json === true ? driftReportJson(drift) : formatDriftReport(drift, { failOn }));
      if (values.junit !== undefined) await writeFile(values.junit, driftReportJunit(drift, { failOn }));
      if (values.sarif !== undefined) {
        const [baselineText, policyText] = await Promise.all([readFile(values.baseline, "utf8"), readFile(policyFile, "utf8")]);
        const sarif = driftReportSarif(drift, { baseline: { file: values.baseline, text: baselineText }, policy: { file: policyFile, text: policyText, policy }, failOn, toolVersion: packageVersion() });
        await writeFile(values.sarif, sarif);
      }
      return gateFailures(drift, failOn).length > 0 ? REPLAY_EXIT.drift : REPLAY_EXIT.match;
    },
  });
}

/** "  high: new-destination, ..." per severity, from the core's table (so it never falls behind). */
function severityList(): string {
  return [...DRIFT_SEVERITIES]
    .reverse()
    .map((severity) => `  ${severity}: ${(Object.keys(DRIFT_SEVERITY) as DriftCode[]).filter((c) => DRIFT_SEVERITY[c] === severity).join(", ")}`)
    .join("\n");
}

/** --fail-on: the lowest drift severity that fails the run. */
export function parseFailOn(value: string | undefined): DriftSeverity {
  if (value === undefined) return DEFAULT_FAIL_ON;
  if (isDriftSeverity(value)) return value;
  throw usageError(`--fail-on ${JSON.stringify(value)} is not a severity; expected ${DRIFT_SEVERITIES.join(", ")}`);
}

export const replayCommand = createReplayCommand();
