import { describe, expect, it } from "vitest";
import type { Command } from "../../src/cli/command.js";
import { commands } from "../../src/cli/commands/index.js";
import { defineCommand, defineGroup } from "../../src/cli/define-command.js";
import { HangarError } from "../../src/core/errors.js";
import { hangar } from "./capture-io.js";

function everyCommandPath(list: readonly Command[], prefix: string[] = []): string[][] {
  return list.flatMap((c) => [[...prefix, c.name], ...everyCommandPath(c.subcommands ?? [], [...prefix, c.name])]);
}

describe("help", () => {
  it("hangar --help lists every verb and sub-verb", async () => {
    const run = await hangar(["--help"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("Usage: hangar <command> [options]");
    for (const path of everyCommandPath(commands)) expect(run.stdout).toMatch(new RegExp(`^  ${path.join(" ")} +\\S`, "m"));
  });

  it("every verb and sub-verb answers --help and -h on stdout with exit 0", async () => {
    const paths = everyCommandPath(commands);
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
  const boom = defineCommand({
    name: "boom",
    summary: "fails",
    usage: "hangar test boom",
    description: "Always fails.",
    options: {},
    async run() {
      throw new HangarError("HANGAR_CONFIG_INVALID", "the config is broken", { cause: new Error("root cause") });
    },
  });
  const extra = [defineGroup({ name: "test", summary: "test verbs", usage: "hangar test <command>", description: "For tests.", commands: [boom] })];

  it("print one line and exit 2, without a stack trace", async () => {
    const run = await hangar(["test", "boom"], { commands: extra });
    expect(run).toEqual({ code: 2, stdout: "", stderr: "hangar: the config is broken [HANGAR_CONFIG_INVALID] (set HANGAR_DEBUG=1 for details)\n" });
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
