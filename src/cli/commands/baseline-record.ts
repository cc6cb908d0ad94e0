import { serialiseBaseline } from "../../core/baseline/canonical.js";
import { writeBaselineFile } from "../../baseline/index.js";
import { observedBaseline } from "../../replay/observed-baseline.js";
import { runScenario } from "../../replay/scenario-session.js";
import { EXIT_FINDING, EXIT_OK, type Command } from "../command.js";
import { defineCommand, usageError } from "../define-command.js";
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

export function createBaselineRecordCommand(deps: ScenarioVerbDeps = {}): Command {
  return defineCommand({
    name: "record",
    summary: "Run a server through a scenario of tool calls and write what it did as a learning baseline",
    usage: "hangar baseline record <policy> --scenario <file> [--out <file>] [--egress capture|live] [--config hangar.yaml]",
    description:
      "Starts the server in its sandbox, calls its tools as the scenario says (one at a time), and records\n" +
      "every DNS lookup and connection the sidecar saw, attributed to the tool call in flight. The result is a\n" +
      "learning baseline: review it (hangar baseline show), then freeze it (hangar baseline freeze).\n" +
      "By default the run is in capture, as `hangar replay` runs: every name resolves to the sidecar, every\n" +
      "attempt is recorded, nothing leaves, and no credentials are needed. With --egress live the policy\n" +
      "applies as written, so the server talks to its real destinations (they must be allowed).",
    options: {
      scenario: { type: "string", short: "s", valueName: "<file>", description: "The scenario (YAML): the tool calls to make, in order." },
      out: { type: "string", short: "o", valueName: "<file>", description: "Write the baseline here (replaced atomically) instead of to stdout." },
      egress: { type: "string", valueName: "<mode>", description: "capture (default: nothing leaves) or live (the policy as written)." },
      ...COMMON_OPTIONS,
    },
    positionals: { min: 1, max: 1 },
    details:
      "Exit status: 0 when the baseline is written, 1 when the policy or scenario is invalid (or names a tool\n" +
      "the server does not offer), 2 on a usage or runtime error. Progress goes to stderr.",
    async run({ values, positionals }, io) {
      const policyFile = positionals[0]!;
      const callTimeoutMs = parseTimeout(values.timeout);
      if (values.scenario === undefined) throw usageError("--scenario <file> is required");
      const egress = parseEgress(values.egress);
      const policy = await loadPolicyOrReport(policyFile, io);
      const scenario = await loadScenarioOrReport(values.scenario, io);
      if (policy === undefined || scenario === undefined) return EXIT_FINDING;

      const report = reporter(io, policy.name, values.quiet === true);
      const services = await openServices(deps, values.config, io);
      report.say(`recording ${policy.name} through ${values.scenario} (egress ${egress})`);
      const result = await interruptible(io, report.say, (signal) =>
        runScenario(services, {
          policy,
          policyFile,
          ...(egress === "capture" ? { capture: true, secretSource: captureSecrets(policy, io.env) } : {}),
          // Learning never enforces a baseline: what the server does is what is recorded.
          baselineFile: false,
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
        return EXIT_FINDING;
      }
      const { run } = result;
      if (values.events !== undefined) await writeEventsFile(values.events, run.events);
      const { baseline } = observedBaseline(run, { rateTolerance: policy.baseline.rateTolerance });
      if (values.out !== undefined) await writeBaselineFile(values.out, baseline);
      else io.out(serialiseBaseline(baseline));

      const failed = run.calls.filter((c) => c.outcome === "protocol-error" || c.outcome === "timeout").length;
      if (failed > 0) report.say(`warning: ${failed} of ${run.calls.length} calls failed at the protocol level (see above); they are recorded as calls all the same`);
      const where = values.out !== undefined ? `written to ${values.out}` : "written to stdout";
      report.say(
        `baseline ${where}: ${run.calls.length} calls, ${run.events.length} events, ${baseline.destinations.length} destinations, ${baseline.dns.length} DNS lookups, ${baseline.tools.length} tools; ` +
          `status learning (freeze it with: hangar baseline freeze ${values.out ?? "<file>"})`,
      );
      return EXIT_OK;
    },
  });
}

export const baselineRecordCommand = createBaselineRecordCommand();
