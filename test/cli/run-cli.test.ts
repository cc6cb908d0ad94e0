import { describe, expect, it } from "vitest";
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import type { Command } from "../../src/cli/command.js";
import { verbs } from "../../src/cli/commands/index.js";
import { defineCommand, defineGroup } from "../../src/cli/define-command.js";
import { lazyCommand } from "../../src/cli/lazy-command.js";
import { HangarError } from "../../src/core/errors.js";
import { hangar } from "./capture-io.js";

function everyCommandPath(list: readonly Command[], prefix: string[] = []): string[][] {
  return list.flatMap((c) => [[...prefix, c.name], ...everyCommandPath(c.subcommands ?? [], [...prefix, c.name])]);
}

/** Each verb's own code, as the verb list loads it when the verb runs. */
const loadedCommands = (): Promise<Command[]> => Promise.all(verbs.map((v) => v.load()));

interface Summary {
  readonly name: string;
  readonly summary: string;
  readonly subcommands?: readonly Summary[];
}
const summaries = (list: readonly Command[]): Summary[] =>
  list.map((c) => ({ name: c.name, summary: c.summary, ...(c.subcommands !== undefined ? { subcommands: summaries(c.subcommands) } : {}) }));

describe("the verb list", () => {
  it("states every verb's name, summary and sub-verbs as the verb's own code does", async () => {
    const stated = verbs.map((v): Summary => ({ name: v.name, summary: v.summary, ...(v.subcommands !== undefined ? { subcommands: v.subcommands.map(([name, summary]) => ({ name, summary })) } : {}) }));
    // On a mismatch, copy the entry from "Expected" into src/cli/commands/index.ts.
    expect(stated).toEqual(summaries(await loadedCommands()));
  });

  it("loads no verb's code for hangar --help, and only the chosen verb's to run one", async () => {
    const loaded: string[] = [];
    const counted = verbs.map((v) => lazyCommand({ ...v, load: () => (loaded.push(v.name), v.load()) }));
    expect((await hangar(["--help"], { commands: counted })).code).toBe(0);
    expect((await hangar(["polcy"], { commands: counted })).stderr).toMatch(/did you mean "policy"/);
    expect(loaded).toEqual([]);
    // policy lint loads its own code only (loadSubcommand), not the policy group's.
    expect(await hangar(["policy", "lint", "--help"], { commands: counted })).toMatchObject({ code: 0, stdout: expect.stringMatching(/^Usage: hangar policy lint /) });
    expect(loaded).toEqual([]);
    expect(await hangar(["policy", "explain", "--help"], { commands: counted })).toMatchObject({ code: 0, stdout: expect.stringMatching(/^Usage: hangar policy explain /) });
    expect(loaded).toEqual(["policy"]);
  });

  it("a sub-verb loaded on its own is the group's own sub-verb, and odd names still reach the group", async () => {
    const policy = verbs.find((v) => v.name === "policy")!;
    const own = await policy.loadSubcommand!["lint"]!();
    const group = await policy.load();
    expect(group.subcommands?.find((c) => c.name === "lint")).toBe(own);
    // Not an own sub-verb: the group answers (here: an unknown command, exit 2), never Object.prototype.
    expect(await hangar(["policy", "constructor"])).toMatchObject({ code: 2, stderr: expect.stringMatching(/unknown command/) });
  });
});

describe("help", () => {
  it("hangar --help lists every verb and sub-verb", async () => {
    const run = await hangar(["--help"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("Usage: hangar <command> [options]");
    const paths = everyCommandPath(await loadedCommands());
    expect(paths.length).toBeGreaterThan(30);
    for (const path of paths) expect(run.stdout).toMatch(new RegExp(`^  ${path.join(" ")} +\\S`, "m"));
  });

  it("every verb and sub-verb answers --help and -h on stdout with exit 0", async () => {
    const paths = everyCommandPath(await loadedCommands());
    expect(paths.map((p) => p.join(" "))).toEqual(expect.arrayContaining(["policy", "policy lint", "policy explain", "policy schema"]));
    for (const path of paths) {
      for (const flag of ["--help", "-h"]) {
        const run = await hangar([...path, flag]);
        expect(run.code, `${path.join(" ")} ${flag}`).toBe(0);
        expect(run.stdout).toMatch(new RegExp(`^Usage: hangar ${path.join(" ")}`));
        expect(run.stdout).toContain("-h, --help");
        expect(run.stderr).toBe("");
      }
    }
  });

  it("hangar with no verb prints help on stderr and exits 2", async () => {
    const run = await hangar([]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("Usage: hangar <command> [options]");
    expect(run.stdout).toBe("");
  });

  it("--version prints the version", async () => {
    expect(await hangar(["--version"])).toEqual({ code: 0, stdout: "0.0.0-test\n", stderr: "" });
  });
});

describe("usage errors exit 2 with a short message", () => {
  it("an unknown verb suggests the closest", async () => {
    const run = await hangar(["policy", "lnit"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe('hangar: unknown command "hangar policy lnit"; did you mean "lint"?\nUsage: hangar policy <command> [options]\nRun \'hangar policy --help\' for more.\n');
  });

  it("an unknown option suggests the closest", async () => {
    const run = await hangar(["policy", "lint", "--jsno", "x.yaml"]);
    expect(run.code).toBe(2);
    expect(run.stderr.split("\n")[0]).toBe("hangar: unknown option --jsno; did you mean --json?");
  });

  it("a missing option value", async () => {
    const run = await hangar(["policy", "schema", "--out"]);
    expect(run.code).toBe(2);
    expect(run.stderr.split("\n")[0]).toBe("hangar: option --out needs a value");
  });

  it("a usage error thrown from a command is reported with that command's usage", async () => {
    const run = await hangar(["policy", "schema", "--out", "a", "--check", "b"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe("hangar: use either --out or --check, not both\nUsage: hangar policy schema [--out <file> | --check <file>]\nRun 'hangar policy schema --help' for more.\n");
  });
});

describe("unexpected failures", () => {
  const boomSpec = {
    name: "boom",
    summary: "fails",
    usage: "hangar test boom",
    description: "Always fails.",
    options: {},
    async run(): Promise<number> {
      throw new HangarError("HANGAR_CONFIG_INVALID", "the config is broken", { cause: new Error("root cause") });
    },
  };
  const boom = defineCommand(boomSpec);
  const extra = [defineGroup({ name: "test", summary: "test verbs", usage: "hangar test <command>", description: "For tests.", commands: [boom] })];

  it("print one line and exit 2, without a stack trace", async () => {
    const run = await hangar(["test", "boom"], { commands: extra });
    expect(run).toEqual({ code: 2, stdout: "", stderr: "hangar: the config is broken [HANGAR_CONFIG_INVALID] (set HANGAR_DEBUG=1 for details)\n" });
  });

  it("print an MCP error from an SDK-based server with its prefix once", async () => {
    const mcp = defineCommand({ ...boomSpec, name: "mcp", usage: "hangar test mcp", run: async () => Promise.reject(new McpError(-32602, "MCP error -32602: bad params")) });
    const group = [defineGroup({ name: "test", summary: "test verbs", usage: "hangar test <command>", description: "For tests.", commands: [mcp] })];
    const run = await hangar(["test", "mcp"], { commands: group });
    expect(run).toEqual({ code: 2, stdout: "", stderr: "hangar: MCP error -32602: bad params (set HANGAR_DEBUG=1 for details)\n" });
  });

  it("print the stack and its causes with HANGAR_DEBUG=1", async () => {
    const run = await hangar(["test", "boom"], { commands: extra, env: { HANGAR_DEBUG: "1" } });
    expect(run.code).toBe(2);
    const lines = run.stderr.split("\n");
    expect(lines[0]).toBe("hangar: the config is broken [HANGAR_CONFIG_INVALID]");
    expect(run.stderr).toContain("HangarError: the config is broken\n    at ");
    expect(run.stderr).toContain("caused by:\nError: root cause");
  });
});
