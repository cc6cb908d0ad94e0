/**
 * One error base for all of Hangar. `code` is stable and documented; tooling and tests
 * match on it, never on the message. A policy *denial* is a verdict, not an error.
 */
export type HangarErrorCode =
  | "HANGAR_POLICY_INVALID"
  | "HANGAR_POLICY_UNREADABLE"
  | "HANGAR_CONFIG_INVALID"
  | "HANGAR_DNS_MALFORMED"
  | "HANGAR_DNS_UPSTREAM"
  | "HANGAR_PEEK_MALFORMED"
  | "HANGAR_PEEK_TOO_LARGE"
  | "HANGAR_PEEK_TIMEOUT"
  | "HANGAR_CLOSED"
  | "HANGAR_USAGE"
  // Docker, images and sandboxes
  | "HANGAR_DOCKER"
  | "HANGAR_IMAGE_BUILD"
  | "HANGAR_IMAGE_MISSING"
  | "HANGAR_NPM"
  | "HANGAR_INTEGRITY_MISMATCH"
  | "HANGAR_SECRET_MISSING"
  | "HANGAR_SIDECAR_NOT_READY"
  | "HANGAR_SANDBOX_CONFLICT"
  | "HANGAR_SUBNET_EXHAUSTED"
  /** The isolation asked for (gvisor) has no runtime in the engine: refused before anything starts. */
  | "HANGAR_ISOLATION_UNAVAILABLE"
  /** An entry for the audit log is invalid: unknown kind, bad timestamp, or data that is not plain JSON. */
  | "HANGAR_AUDIT_INVALID_ENTRY"
  /** The file is missing, not SQLite, not a Hangar audit log, or of an unknown format version. */
  | "HANGAR_AUDIT_UNREADABLE"
  /** A signing key is missing, unparsable, not ed25519, or its file is readable by others. */
  | "HANGAR_AUDIT_KEY_INVALID"
  /** `hangar init` would overwrite an existing key pair. */
  | "HANGAR_AUDIT_KEY_EXISTS"
  /** An anchor file (the last signed checkpoint kept outside the log) cannot be read or parsed. */
  | "HANGAR_AUDIT_ANCHOR_INVALID"
  /** RBAC or the server's policy (tools.allow/deny) refused a call; data names the missing permission. */
  | "HANGAR_GATEWAY_DENIED"
  /** The server's tools.rateLimit.perMinute is used up; data.retryAfterMs says when to retry. */
  | "HANGAR_GATEWAY_RATE_LIMITED"
  /** The tool's manifest changed since approval (drift), or the manifest scan flagged it and no grant names it (ENFORCING). */
  | "HANGAR_GATEWAY_WITHHELD"
  /** The call's arguments carry a credential shape or a watched secret (ENFORCING); data names the detectors and paths, never the value. */
  | "HANGAR_GATEWAY_ARGUMENT_REFUSED"
  /** The call would complete a flow hangar.yaml denies within one session (ENFORCING); data names the flow and the earlier calls. */
  | "HANGAR_GATEWAY_FLOW_REFUSED"
  /** The tool's result carries injection cues and the policy says tools.results: strict (ENFORCING); data names the cues and paths. */
  | "HANGAR_GATEWAY_RESULT_REFUSED"
  /** The server cannot serve: its breaker is open, it is dead, or it failed to start. */
  | "HANGAR_GATEWAY_UNAVAILABLE"
  /** The server has no granted approval, or what it runs changed since (ENFORCING). */
  | "HANGAR_GATEWAY_NOT_APPROVED"
  /** No configured server offers this tool, prompt or resource. */
  | "HANGAR_GATEWAY_UNKNOWN"
  /** A launcher could not start the server (bad command, missing secret, spawn failure). */
  | "HANGAR_GATEWAY_LAUNCH_FAILED"
  /** The server went away during a request (exit, closed pipe). */
  | "HANGAR_GATEWAY_UPSTREAM"
  /** The server did not answer in time. */
  | "HANGAR_GATEWAY_TIMEOUT"
  /** A lifecycle transition the state machine does not allow: a bug, never user input. */
  | "HANGAR_GATEWAY_ILLEGAL_TRANSITION"
  /** An approval step names an unknown approval or one already decided. */
  | "HANGAR_GATEWAY_APPROVAL_INVALID"
  /** The token file cannot be read or parsed. */
  | "HANGAR_GATEWAY_TOKENS_INVALID";

export class HangarError extends Error {
  readonly code: HangarErrorCode;
  readonly data: Readonly<Record<string, unknown>>;

  constructor(code: HangarErrorCode, message: string, options: { cause?: unknown; data?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "HangarError";
    this.code = code;
    this.data = options.data ?? {};
  }
}

export function isHangarError(err: unknown, code?: HangarErrorCode): err is HangarError {
  return err instanceof HangarError && (code === undefined || err.code === code);
}
