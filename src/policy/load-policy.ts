import { parsePolicyText } from "./parse-policy.js";
import type { PolicyLoadResult } from "./policy-issue.js";
import { readTextFile } from "./read-text-file.js";

/** A policy is a page of YAML; anything far larger is a mistake or an attack on the parser. */
export const MAX_POLICY_BYTES = 1024 * 1024;

export interface LoadPolicyOptions {
  /** How issues name the file (defaults to `path` as given). */
  readonly displayName?: string;
  readonly maxBytes?: number;
}

/**
 * Reads and validates a policy file. A missing, unreadable, oversized or malformed file
 * is reported as issues like any other problem; only a truly unexpected failure throws.
 */
export async function loadPolicyFile(path: string, options: LoadPolicyOptions = {}): Promise<PolicyLoadResult> {
  const file = options.displayName ?? path;
  const read = await readTextFile(path, { displayName: file, maxBytes: options.maxBytes ?? MAX_POLICY_BYTES, noun: "policy file", unexpectedCode: "HANGAR_POLICY_UNREADABLE" });
  if (!read.ok) return read;
  return parsePolicyText(read.text, file);
}
