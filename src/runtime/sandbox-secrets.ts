import type { Policy, SecretRule } from "../core/policy/policy-schema.js";
import { newSentinel, type SecretMaterial } from "../core/secrets/secret-watch.js";
import { runtimeError } from "../docker/runtime-error.js";

/**
 * How a policy's secrets reach one sandbox. An injected secret's value goes to the sidecar
 * alone (down its stdin); the server gets a per-run sentinel in its env instead. A plain
 * secret's value goes into the server's env, as before, and is watched by the sidecar. The
 * operator's `runtime.watchedSecrets` are watched too. Pure but for `random`.
 */
export interface SandboxSecrets {
  /** The server container's secret env: sentinels for injected secrets, values for plain ones. */
  readonly serverEnv: Record<string, string>;
  /** What the sidecar gets on stdin; empty when there is nothing to watch or inject. */
  readonly sidecar: SecretMaterial[];
}

export interface SandboxSecretsOptions {
  readonly random: (size: number) => Uint8Array;
  /** Env names whose values every sandbox watches for (runtime.watchedSecrets). */
  readonly watched?: readonly string[];
  /**
   * Capture (replay, quarantine): nothing leaves, so an injected secret without a value still
   * gets its sentinel and CI needs no real credential.
   */
  readonly capturing?: boolean;
}

export function sandboxSecrets(policy: Policy, source: Readonly<Record<string, string | undefined>>, options: SandboxSecretsOptions): SandboxSecrets {
  const rules: readonly SecretRule[] = policy.server.secretRules ?? policy.server.secrets.map((name) => ({ name }));
  const missing = rules.filter((r) => source[r.name] === undefined && !(options.capturing === true && r.inject !== undefined)).map((r) => r.name);
  if (missing.length > 0) {
    throw runtimeError("HANGAR_SECRET_MISSING", `policy ${policy.name} needs secret(s) ${missing.join(", ")} in the environment`, { data: { missing } });
  }
  const serverEnv: Record<string, string> = {};
  const sidecar: SecretMaterial[] = [];
  for (const rule of rules) {
    const value = source[rule.name];
    if (rule.inject !== undefined) {
      const sentinel = newSentinel(options.random);
      serverEnv[rule.name] = sentinel;
      sidecar.push({ name: rule.name, sentinel, inject: rule.inject, ...(value !== undefined ? { value } : {}) });
    } else {
      serverEnv[rule.name] = value!;
      sidecar.push({ name: rule.name, value: value!, ...(rule.host !== undefined ? { host: rule.host } : {}) });
    }
  }
  const declared = new Set(rules.map((r) => r.name));
  for (const name of options.watched ?? []) {
    const value = source[name];
    // An operator's watch list names what may be set; an unset one has nothing to watch.
    if (value !== undefined && !declared.has(name)) sidecar.push({ name, value });
  }
  return { serverEnv, sidecar };
}
