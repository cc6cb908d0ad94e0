import { EXIT_OK } from "../command.js";
import { defineCommand } from "../define-command.js";
import { createSigningKeys, DEFAULT_HANGAR_DIR } from "../../audit/index.js";

export const initCommand = defineCommand({
  name: "init",
  summary: "Create the Hangar directory and the audit log's signing key pair",
  usage: "hangar init [--dir <dir>] [--force]",
  description:
    "Creates the Hangar directory (mode 0700 when new) and an ed25519 key pair that signs the\n" +
    "audit log's checkpoints:\n" +
    "  <dir>/audit-signing.key   private key, mode 0600; never leaves this host\n" +
    "  <dir>/audit-signing.pub   public key; keep a copy elsewhere (git, your SIEM) to verify against\n" +
    "Existing keys are never replaced without --force: checkpoints signed by the old key\n" +
    "would then only verify against the old public key.",
  options: {
    dir: { type: "string", valueName: "<dir>", description: `The Hangar directory (default ${DEFAULT_HANGAR_DIR}).` },
    force: { type: "boolean", description: "Replace an existing key pair." },
  },
  positionals: { max: 0 },
  details: "Exit status: 0 on success, 2 when keys exist (without --force) or on a usage error.",
  async run({ values }, io) {
    const created = createSigningKeys(values.dir ?? DEFAULT_HANGAR_DIR, { force: values.force === true });
    io.out(
      `${created.replaced ? "replaced" : "created"} the audit signing key pair (key id ${created.keyId}):\n` +
        `  ${created.paths.privateKey}  private, mode 0600\n` +
        `  ${created.paths.publicKey}  public\n`,
    );
    return EXIT_OK;
  },
});
