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
  /** An entry for the audit log is invalid: unknown kind, bad timestamp, or data that is not plain JSON. */
  | "HANGAR_AUDIT_INVALID_ENTRY"
  /** The file is missing, not SQLite, not a Hangar audit log, or of an unknown format version. */
  | "HANGAR_AUDIT_UNREADABLE"
  /** A signing key is missing, unparsable, not ed25519, or its file is readable by others. */
  | "HANGAR_AUDIT_KEY_INVALID"
  /** `hangar init` would overwrite an existing key pair. */
  | "HANGAR_AUDIT_KEY_EXISTS"
  /** An anchor file (the last signed checkpoint kept outside the log) cannot be read or parsed. */
  | "HANGAR_AUDIT_ANCHOR_INVALID";

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
