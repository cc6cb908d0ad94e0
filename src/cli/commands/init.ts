import { EXIT_OK } from "../command.js";
import { defineCommand } from "../define-command.js";
import { dirname } from "node:path";
import { createSigningKeys, DEFAULT_HANGAR_DIR } from "../../audit/index.js";
import { auditDbFrom, CONFIG_OPTION } from "./audit-options.js";

export const initCommand = defineCommand({
  name: "init",
  summary: "Create the Hangar directory and the audit log's signing key pair",
  usage: "hangar init [--dir <dir> | --config <file>] [--force] [--json]",
  description:
    "Creates the Hangar directory (mode 0700 when new) and an ed25519 key pair that signs the\n" +
    "audit log's checkpoints:\n" +
    "  <dir>/audit-signing.key   private key, mode 0600; never leaves this host\n" +
    "  <dir>/audit-signing.pub   public key; keep a copy elsewhere (git, your SIEM) to verify against\n" +
    "Existing keys are never replaced without --force: checkpoints signed by the old key\n" +
    "would then only verify against the old public key.\n" +
    "Without --dir the keys go beside hangar.yaml's audit.path (from --config, $HANGAR_CONFIG or\n" +
    "./hangar.yaml), which is where hangar serve signs and hangar audit verify looks.",
  options: {
    dir: { type: "string", valueName: "<dir>", description: `The Hangar directory (default: the directory of the configuration's audit.path, else ${DEFAULT_HANGAR_DIR}).` },
    config: CONFIG_OPTION,
    force: { type: "boolean", description: "Replace an existing key pair." },
    json: { type: "boolean", description: "Print { keyId, privateKey, publicKey, replaced } as JSON." },
  },
  positionals: { max: 0 },
  details: "Exit status: 0 on success, 2 when keys exist (without --force) or on a usage error.",
  async run({ values }, io) {
    const created = createSigningKeys(values.dir ?? dirname(await auditDbFrom({ config: values.config })), { force: values.force === true });
    if (values.json === true) {
      io.out(`${JSON.stringify({ keyId: created.keyId, privateKey: created.paths.privateKey, publicKey: created.paths.publicKey, replaced: created.replaced }, null, 2)}\n`);
      return EXIT_OK;
    }
    io.out(
      `${created.replaced ? "replaced" : "created"} the audit signing key pair (key id ${created.keyId}):\n` +
        `  ${created.paths.privateKey}  private, mode 0600\n` +
        `  ${created.paths.publicKey}  public\n`,
    );
    return EXIT_OK;
  },
});
