import type { Isolation } from "../core/policy/policy-schema.js";
import type { ContainerEngine } from "./container-engine.js";
import { runtimeError } from "./runtime-error.js";

/**
 * Isolation backends for the server container. `gvisor` runs it under the engine's `runsc`
 * runtime (gVisor's user-space kernel); the sidecar always stays on the engine's default.
 */

/** The name scripts/ensure-docker.sh registers gVisor under in daemon.json `runtimes`. */
export const GVISOR_OCI_RUNTIME = "runsc";

/** Where an isolation choice came from, so a refusal can name the file and the key. */
export interface IsolationChoice {
  readonly isolation: Isolation;
  /** e.g. `server.isolation in policies/x.yaml` or `runtime.isolation in hangar.yaml`. */
  readonly source: string;
}

/** A policy's server.isolation wins over hangar.yaml's runtime.isolation. */
export function chooseIsolation(policy: { readonly isolation?: Isolation | undefined }, policyFile: string, runtimeDefault: Isolation): IsolationChoice {
  return policy.isolation !== undefined
    ? { isolation: policy.isolation, source: `server.isolation in ${policyFile}` }
    : { isolation: runtimeDefault, source: "runtime.isolation in hangar.yaml (default runc)" };
}

/** The OCI runtime name for the server container; undefined: the engine's default (runc). */
export function ociRuntimeFor(isolation: Isolation): string | undefined {
  return isolation === "gvisor" ? GVISOR_OCI_RUNTIME : undefined;
}

/**
 * Fails closed before anything is created: gVisor asked for and the engine cannot run it
 * would otherwise either fail late or, worse, be silently replaced by runc.
 */
export async function assertIsolationAvailable(engine: ContainerEngine, choice: IsolationChoice): Promise<void> {
  const wanted = ociRuntimeFor(choice.isolation);
  if (wanted === undefined) return;
  const available = await engine.ociRuntimes();
  if (available.includes(wanted)) return;
  throw runtimeError(
    "HANGAR_ISOLATION_UNAVAILABLE",
    `${choice.source}: "${choice.isolation}" needs the Docker engine's "${wanted}" runtime, and the engine has only ${available.map((r) => `"${r}"`).join(", ") || "none"}; ` +
      `install gVisor and register it (scripts/ensure-docker.sh does both as root), or set isolation: runc`,
    { data: { isolation: choice.isolation, source: choice.source, wanted, available } },
  );
}

/** gVisor's network stack does not see Docker's embedded resolver (127.0.0.11 is NAT in the host kernel), so the server asks the sidecar directly. */
export function resolvConfFor(nameserver: string): string {
  return `nameserver ${nameserver}\noptions ndots:0 attempts:2 timeout:2\n`;
}
