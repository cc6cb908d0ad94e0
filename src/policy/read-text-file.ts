import { readFile, stat } from "node:fs/promises";
import { HangarError, type HangarErrorCode } from "../core/errors.js";
import type { PolicyIssue } from "./policy-issue.js";

export interface ReadTextOptions {
  /** How issues name the file (defaults to `path` as given). */
  readonly displayName?: string;
  readonly maxBytes: number;
  /** What the file should be, for messages: "policy file", "scenario file". */
  readonly noun: string;
  /** Wraps a failure that carries no errno code in a HangarError with this code; otherwise it is rethrown. */
  readonly unexpectedCode?: HangarErrorCode;
}

export type TextReadResult = { readonly ok: true; readonly text: string } | { readonly ok: false; readonly issues: readonly PolicyIssue[] };

const READ_ERRORS: Readonly<Record<string, { code: string; message: string }>> = {
  ENOENT: { code: "file_not_found", message: "no such file" },
  ENOTDIR: { code: "file_not_found", message: "no such file (a parent is not a folder)" },
  EACCES: { code: "file_unreadable", message: "permission denied" },
  EPERM: { code: "file_unreadable", message: "permission denied" },
};

/**
 * Reads a bounded UTF-8 text file. A missing, unreadable, oversized or non-UTF-8 file is
 * reported as an issue like any other problem; only a truly unexpected failure throws.
 */
export async function readTextFile(path: string, options: ReadTextOptions): Promise<TextReadResult> {
  const file = options.displayName ?? path;
  const { maxBytes, noun } = options;
  const fileIssue = (code: string, message: string): TextReadResult => {
    const issue: PolicyIssue = { file, line: 0, col: 0, path: [], message, severity: "error", code };
    return { ok: false, issues: [issue] };
  };

  let bytes: Buffer;
  try {
    const info = await stat(path);
    if (info.isDirectory()) return fileIssue("file_unreadable", `is a folder, not a ${noun}`);
    // A device or FIFO (/dev/zero, a pipe) has no size to check and may never end.
    if (!info.isFile()) return fileIssue("file_unreadable", "is not a regular file");
    if (info.size > maxBytes) return fileIssue("file_too_large", `is ${info.size} bytes; a ${noun} may be at most ${maxBytes}`);
    bytes = await readFile(path);
    // The file may have grown since stat.
    if (bytes.length > maxBytes) return fileIssue("file_too_large", `is ${bytes.length} bytes; a ${noun} may be at most ${maxBytes}`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "";
    if (code === "EISDIR") return fileIssue("file_unreadable", `is a folder, not a ${noun}`);
    const known = READ_ERRORS[code];
    if (known !== undefined) return fileIssue(known.code, known.message);
    if (code !== "") return fileIssue("file_unreadable", `cannot be read (${code})`);
    if (options.unexpectedCode === undefined) throw err;
    throw new HangarError(options.unexpectedCode, `unexpected failure reading ${file}`, { cause: err, data: { file } });
  }

  try {
    return { ok: true, text: new TextDecoder("utf-8", { fatal: true }).decode(bytes) };
  } catch {
    return fileIssue("file_not_utf8", "is not UTF-8 text");
  }
}
