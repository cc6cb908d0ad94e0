import { readFile } from "node:fs/promises";
import type { Readable } from "node:stream";
import { HangarError } from "../../../core/errors.js";
import type { SidecarConfig } from "../../sidecar-config.js";
import { LeafMinter, type CaMaterial } from "./sandbox-ca.js";
import { upstreamTrust, type TlsInspection } from "./tls-terminator.js";

/** The largest stdin line accepted for the CA (a P-256 key and certificate are about 1.5 KB). */
const MAX_LINE = 64 * 1024;

/** Builds the sidecar's TLS inspection from its config: the sandbox CA and the upstream trust. */
export async function loadInspection(tls: NonNullable<SidecarConfig["tls"]>, stdin: Readable | { readonly line: string }): Promise<TlsInspection> {
  const ca = tls.ca === "stdin" ? caFromLine("line" in stdin ? stdin.line : await readLine(stdin)) : { certPem: await readPem(tls.ca.certFile), keyPem: await readPem(tls.ca.keyFile) };
  const extra = tls.upstreamCaFile === undefined ? undefined : await readPem(tls.upstreamCaFile);
  return { minter: new LeafMinter(ca), upstreamCa: upstreamTrust(extra) };
}

async function readPem(file: string): Promise<string> {
  try {
    const text = await readFile(file, "utf8");
    if (!text.includes("-----BEGIN ")) throw new Error("no PEM block in it");
    return text;
  } catch (err) {
    throw new HangarError("HANGAR_CONFIG_INVALID", `tls: cannot use ${file}: ${(err as Error).message}`, { data: { file } });
  }
}

function caFromLine(line: string): CaMaterial {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    throw new HangarError("HANGAR_CONFIG_INVALID", "tls.ca is \"stdin\" but the first line on stdin is not JSON");
  }
  const { caCertPem, caKeyPem } = (parsed ?? {}) as { caCertPem?: unknown; caKeyPem?: unknown };
  if (typeof caCertPem !== "string" || typeof caKeyPem !== "string") {
    throw new HangarError("HANGAR_CONFIG_INVALID", 'tls.ca is "stdin" but the line on stdin has no "caCertPem" and "caKeyPem" strings');
  }
  return { certPem: caCertPem, keyPem: caKeyPem };
}

/** One line from `stream`, bounded; the stream is left paused and its listeners removed. */
export function readLine(stream: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    const done = (err?: Error): void => {
      stream.off("data", onData);
      stream.off("end", onEnd);
      stream.off("error", done);
      stream.pause();
      if (err) reject(err);
      else resolve(text);
    };
    const onData = (chunk: Buffer): void => {
      text += chunk.toString("utf8");
      const nl = text.indexOf("\n");
      if (nl !== -1) {
        text = text.slice(0, nl);
        done();
      } else if (text.length > MAX_LINE) {
        done(new HangarError("HANGAR_CONFIG_INVALID", `tls.ca is "stdin" but no line ended within ${MAX_LINE} bytes`));
      }
    };
    const onEnd = (): void => done(new HangarError("HANGAR_CONFIG_INVALID", 'tls.ca is "stdin" but stdin closed before a line arrived'));
    stream.on("data", onData);
    stream.once("end", onEnd);
    stream.once("error", done);
  });
}
