import { readFile, writeFile } from "node:fs/promises";
import { EXIT_FINDING, EXIT_OK } from "../command.js";
import { defineCommand, usageError } from "../define-command.js";
import { editorSchemas, editorSchemaText } from "../editor-schemas.js";

export const configSchemaCommand = defineCommand({
  name: "schema",
  summary: "Print the JSON Schema of hangar.yaml or of scenario files (for editors and CI)",
  usage: "hangar config schema [--for hangar|scenario] [--out <file> | --check <file>]",
  description:
    "Prints the JSON Schema of hangar.yaml (or, with --for scenario, of scenario files), every field\n" +
    "described for hover text. Point your editor's YAML support at it:\n" +
    "  # yaml-language-server: $schema=./schemas/hangar.schema.json",
  options: {
    for: { type: "string", valueName: "hangar|scenario", description: "Which file format (default hangar)." },
    out: { type: "string", valueName: "<file>", description: "Write the schema to <file> instead of printing it." },
    check: { type: "string", valueName: "<file>", description: "Exit 1 if <file> differs from the current schema." },
  },
  positionals: { max: 0 },
  details: "Exit status: 0 on success, 1 when --check finds the file stale, 2 on a usage error.",
  async run({ values }, io) {
    const which = values.for ?? "hangar";
    const schema = editorSchemas().find((s) => s.name === which);
    if (schema === undefined) throw usageError(`--for ${JSON.stringify(which)}: expected hangar or scenario`);
    if (values.out !== undefined && values.check !== undefined) throw usageError("use either --out or --check, not both");
    const text = editorSchemaText(schema);
    if (values.check !== undefined) {
      const current = await readFile(values.check, "utf8").catch((err: NodeJS.ErrnoException) => {
        if (err.code === "ENOENT") return undefined;
        throw err;
      });
      if (current === text) return EXIT_OK;
      io.err(`${values.check}: ${current === undefined ? "missing" : "out of date"}; regenerate it with: hangar config schema --for ${which} --out ${values.check}\n`);
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
