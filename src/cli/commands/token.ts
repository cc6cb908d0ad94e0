import { HangarError } from "../../core/errors.js";
import { Rbac } from "../../core/gateway/rbac.js";
import { IDENTITY_PATTERN } from "../../gateway/config/hangar-config-schema.js";
import { loadHangarConfigPaths, type HangarConfigPaths } from "../../gateway/config/load-hangar-config.js";
import { hashToken, newToken, readTokenFile, writeTokenFile } from "../../gateway/token-file.js";
import { table } from "../../gateway/format-status.js";
import { EXIT_FINDING, EXIT_OK } from "../command.js";
import { defineCommand, defineGroup, usageError } from "../define-command.js";
import { CONFIG_OPTION, DEFAULT_CONFIG } from "./gateway-options.js";

/**
 * Why a token for `identity` could call nothing: RBAC is on and binds it no role. Undefined
 * when it has one, or without RBAC. (Bindings to undefined roles never load.)
 */
function withoutRole(paths: HangarConfigPaths, identity: string): string | undefined {
  if (paths.rbac === undefined || new Rbac(paths.rbac).rolesOf(identity).length > 0) return undefined;
  return `identity ${JSON.stringify(identity)} has no role in ${paths.file}, so every call with its token would be refused`;
}

const createCommand = defineCommand({
  name: "create",
  summary: "Create a bearer token for an identity (shown once)",
  usage: "hangar token create --identity <id> [--description <text>] [--force] [--config <file>] [--json]",
  description:
    "Adds a token for the HTTP endpoint. Only its SHA-256 is stored (gateway.tokens, default .hangar/tokens.json, mode 0600); the token is printed once.\n" +
    "When hangar.yaml has an rbac section, the identity must have a role there (rbac.bindings), or --force.",
  options: {
    config: CONFIG_OPTION,
    identity: { type: "string", valueName: "<id>", description: "The identity the token acts as (required)." },
    description: { type: "string", valueName: "<text>", description: "A note, e.g. who holds it." },
    force: { type: "boolean", description: "Create the token even when the identity has no role (a warning is printed)." },
    json: { type: "boolean", description: "Print { id, identity, token } as JSON (the token is still shown only this once)." },
  },
  positionals: { max: 0 },
  details: "Exit status: 0 when the token was created, 1 when the identity has no role (without --force), 2 on a usage error.",
  async run({ values }, io) {
    if (values.identity === undefined) throw usageError("--identity <id> is required");
    if (!IDENTITY_PATTERN.test(values.identity)) throw usageError(`--identity ${JSON.stringify(values.identity)} is not a valid identity`);
    const paths = await loadHangarConfigPaths(values.config ?? DEFAULT_CONFIG);
    const roleless = withoutRole(paths, values.identity);
    if (roleless !== undefined && values.force !== true) {
      io.err(`hangar: ${roleless}; bind it a role under rbac.bindings, or pass --force to create the token anyway\n`);
      return EXIT_FINDING;
    }
    if (roleless !== undefined) io.err(`hangar: warning: ${roleless}; creating it anyway (--force)\n`);
    const file = await readTokenFile(paths.tokens);
    const { token, id } = newToken();
    const entry = { id, identity: values.identity, sha256: hashToken(token), createdAt: new Date().toISOString(), ...(values.description !== undefined ? { description: values.description } : {}) };
    await writeTokenFile(paths.tokens, { version: 1, tokens: [...file.tokens, entry] });
    io.err(`${id}: token for ${values.identity}; it is shown once, store it now:\n`);
    io.out(values.json === true ? `${JSON.stringify({ id, identity: values.identity, token }, null, 2)}\n` : `${token}\n`);
    return EXIT_OK;
  },
});

const listCommand = defineCommand({
  name: "list",
  summary: "List tokens (ids and identities, never the tokens)",
  usage: "hangar token list [--config <file>] [--json]",
  description: "Lists the token file's entries.",
  options: { config: CONFIG_OPTION, json: { type: "boolean", description: "Print the entries as JSON (hashes included)." } },
  positionals: { max: 0 },
  async run({ values }, io) {
    const paths = await loadHangarConfigPaths(values.config ?? DEFAULT_CONFIG);
    const file = await readTokenFile(paths.tokens);
    if (values.json === true) io.out(`${JSON.stringify(file, null, 2)}\n`);
    else io.out(file.tokens.length === 0 ? "no tokens\n" : table(["ID", "IDENTITY", "CREATED", "DESCRIPTION"], file.tokens.map((t) => [t.id, t.identity, t.createdAt, t.description ?? ""])));
    return EXIT_OK;
  },
});

const revokeCommand = defineCommand({
  name: "revoke",
  summary: "Remove a token; a running gateway refuses it within a second",
  usage: "hangar token revoke <id> [--config <file>] [--json]",
  description: "Removes the token's entry from the token file.",
  options: { config: CONFIG_OPTION, json: { type: "boolean", description: "Print { id, revoked } as JSON." }, },
  positionals: { min: 1, max: 1 },
  async run({ values, positionals }, io) {
    const paths = await loadHangarConfigPaths(values.config ?? DEFAULT_CONFIG);
    const file = await readTokenFile(paths.tokens);
    const id = positionals[0] as string;
    if (!file.tokens.some((t) => t.id === id)) throw new HangarError("HANGAR_USAGE", `no token ${JSON.stringify(id)} in ${paths.tokens}`);
    await writeTokenFile(paths.tokens, { version: 1, tokens: file.tokens.filter((t) => t.id !== id) });
    io.out(values.json === true ? `${JSON.stringify({ id, revoked: true }, null, 2)}\n` : `${id}: revoked\n`);
    return EXIT_OK;
  },
});

export const tokenCommand = defineGroup({
  name: "token",
  summary: "Create, list and revoke bearer tokens for the HTTP endpoint",
  usage: "hangar token <command> [options]",
  description: "Tokens map to identities; RBAC decides what each identity may call.",
  commands: [createCommand, listCommand, revokeCommand],
});
