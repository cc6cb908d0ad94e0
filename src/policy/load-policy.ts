import { readFile, stat } from "node:fs/promises";
import { HangarError } from "../core/errors.js";
import { parsePolicyText } from "./parse-policy.js";
import type { PolicyIssue, PolicyLoadResult } from "./policy-issue.js";

/** A policy is a page of YAML; anything far larger is a mistake or an attack on the parser. */
export const MAX_POLICY_BYTES = 1024 * 1024;

export interface LoadPolicyOptions {
  /** How issues name the file (defaults to `path` as given). */
  readonly displayName?: string;
  readonly maxBytes?: number;
}

const READ_ERRORS: Readonly<Record<string, { code: string; message: string }>> = {
  ENOENT: { code: "file_not_found", message: "no such file" },
  ENOTDIR: { code: "file_not_found", message: "no such file (a parent is not a folder)" },
  EISDIR: { code: "file_unreadable", message: "is a folder, not a policy file" },
  EACCES: { code: "file_unreadable", message: "permission denied" },
  EPERM: { code: "file_unreadable", message: "permission denied" },
};

/**
 * Reads and validates a policy file. A missing, unreadable, oversized or malformed file
 * is reported as issues like any other problem; only a truly unexpected failure throws.
 */
export async function loadPolicyFile(path: string, options: LoadPolicyOptions = {}): Promise<PolicyLoadResult> {
  const file = options.displayName ?? path;
  const maxBytes = options.maxBytes ?? MAX_POLICY_BYTES;
  const fileIssue = (code: string, message: string): PolicyLoadResult => {
    const issue: PolicyIssue = { file, line: 0, col: 0, path: [], message, severity: "error", code };
    return { ok: false, issues: [issue] };
  };

  let bytes: Buffer;
  try {
    const info = await stat(path);
    if (info.isDirectory()) return fileIssue("file_unreadable", "is a folder, not a policy file");
    // A device or FIFO (/dev/zero, a pipe) has no size to check and may never end.
    if (!info.isFile()) return fileIssue("file_unreadable", "is not a regular file");
    if (info.size > maxBytes) return fileIssue("file_too_large", `is ${info.size} bytes; a policy file may be at most ${maxBytes}`);
    bytes = await readFile(path);
    // The file may have grown since stat.
    if (bytes.length > maxBytes) return fileIssue("file_too_large", `is ${bytes.length} bytes; a policy file may be at most ${maxBytes}`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "";
    const known = READ_ERRORS[code];
    if (known !== undefined) return fileIssue(known.code, known.message);
    if (code !== "") return fileIssue("file_unreadable", `cannot be read (${code})`);
    throw new HangarError("HANGAR_POLICY_UNREADABLE", `unexpected failure reading ${file}`, { cause: err, data: { file } });
  }

  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return fileIssue("file_not_utf8", "is not UTF-8 text");
  }
  return parsePolicyText(text, file);
}
