import type { Attempt } from "../../core/decision.js";
import { checkRequestSecrets } from "../../core/secrets/request-secrets.js";
import { EMPTY_SECRET_WATCH } from "../../core/secrets/secret-watch.js";
import type { AttemptFacts } from "../proxy/egress-event.js";
import type { SidecarContext } from "../sidecar-context.js";

/**
 * The forwarder's one call into core/secrets for a request it sees: what to add to the
 * attempt (leaks, credential shapes) and the headers to send when a secret was written in.
 * Credential shapes are looked for on every request the sidecar sees (plain HTTP and
 * inspected TLS); secrets only when the sandbox has some.
 */
export interface ForwarderSecrets {
  readonly found: Pick<Attempt, "secretLeaks" | "credentials">;
  readonly rawHeaders?: string[];
}

const NONE: ForwarderSecrets = { found: {} };

export function requestSecrets(
  ctx: SidecarContext,
  facts: AttemptFacts,
  rawHeaders: readonly string[],
  inspected: boolean,
  target: string,
  body: { readonly bytes: Buffer } | undefined,
): ForwarderSecrets {
  const dc = ctx.decisionContext();
  const watch = dc.secrets;
  const r = checkRequestSecrets(watch ?? EMPTY_SECRET_WATCH, {
    host: facts.name,
    inspected,
    rawHeaders,
    target,
    ...(body !== undefined ? { body: body.bytes } : {}),
    credentials: dc.credentialScan !== false,
  });
  if (r.leaks.length === 0 && r.credentials.length === 0 && r.headers === undefined) return NONE;
  if (r.injected.length > 0) facts.injected = r.injected;
  return {
    found: { ...(r.leaks.length > 0 ? { secretLeaks: r.leaks } : {}), ...(r.credentials.length > 0 ? { credentials: r.credentials } : {}) },
    ...(r.headers !== undefined ? { rawHeaders: r.headers } : {}),
  };
}
