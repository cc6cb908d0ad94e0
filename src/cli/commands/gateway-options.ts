import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { AuditStore } from "../../audit/audit-store.js";
import { auditPaths } from "../../audit/audit-paths.js";
import { loadSigner } from "../../audit/signing-keys.js";
import { hangarPackageRoot } from "../../images/package-root.js";
import type { OptionSpec } from "../define-command.js";

/** Options and helpers shared by the gateway verbs (serve, status, approve, token). */
export const DEFAULT_CONFIG = "hangar.yaml";

export const CONFIG_OPTION = { type: "string", valueName: "<file>", description: `The Hangar configuration (default ${DEFAULT_CONFIG}).` } as const satisfies OptionSpec;

export function packageVersion(): string {
  try {
    // Not relative to this file: in the bundled CLI it lives in a chunk of dist/cli.
    const pkg = JSON.parse(readFileSync(join(hangarPackageRoot(), "package.json"), "utf8")) as { version?: string };
    return pkg.version ?? "0.0.0";
  } catch {
    return "0.0.0";
  }
}

/** The audit log for one CLI step, signed with the local key when there is one (closing signs a checkpoint). */
export function openAuditForCli(path: string): AuditStore {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const paths = auditPaths(path);
  const signer = existsSync(paths.privateKey) ? loadSigner(paths.privateKey) : undefined;
  return AuditStore.open({ path, ...(signer !== undefined ? { signer, anchorPath: paths.anchor } : {}), timer: false });
}
