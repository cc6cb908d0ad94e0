import { readFile, writeFile } from "node:fs/promises";
import { EXIT_FINDING, EXIT_OK } from "../command.js";
import { defineCommand, usageError } from "../define-command.js";
import { policySchemaText } from "../../policy/index.js";

export const policySchemaCommand = defineCommand({
  name: "schema",
  summary: "Print the policy file's JSON Schema (for editors and CI)",
  usage: "hangar policy schema [--out <file> | --check <file>]",
  description:
    "Prints the JSON Schema of the policy format. Point your editor's YAML support at it for\n" +
    "completion and checks as you type:  # yaml-language-server: $schema=./schema.json",
  options: {
    out: { type: "string", valueName: "<file>", description: "Write the schema to <file> instead of printing it." },
    check: { type: "string", valueName: "<file>", description: "Exit 1 if <file> differs from the current schema." },
  },
  positionals: { max: 0 },
  details: "Exit status: 0 on success, 1 when --check finds the file stale, 2 on a usage error.",
  async run({ values }, io) {
    const text = policySchemaText();
    if (values.out !== undefined && values.check !== undefined) throw usageError("use either --out or --check, not both");
    if (values.check !== undefined) {
      const current = await readFile(values.check, "utf8").catch((err: NodeJS.ErrnoException) => {
        if (err.code === "ENOENT") return undefined;
        throw err;
      });
      if (current === text) return EXIT_OK;
      io.err(`${values.check}: ${current === undefined ? "missing" : "out of date"}; regenerate it with: hangar policy schema --out ${values.check}\n`);
      return EXIT_FINDING;
    }
    if (values.out !== undefined) {
      await writeFile(values.out, text);
      io.err(`wrote ${values.out}\n`);
      return EXIT_OK;
    }
    io.out(text);
    return EXIT_OK;
  },
});
